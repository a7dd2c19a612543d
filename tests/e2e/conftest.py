"""End-to-end fixtures: the real switch started as a user starts it, real peers.

Every wait is bounded and every process started here is ended by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "sipp-scenarios"
CENTRALINO = Path(sys.executable).with_name("centralino")


def free_udp_port(host: str = "127.0.0.1", family: int = socket.AF_INET) -> int:
    """An even UDP port free on loopback (and its +1), for SIP or media."""
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no free UDP port")


def sipp_media_port(host: str = "127.0.0.1") -> int:
    """A base for SIPp's `-mp`: SIPp binds the port and the three above it (audio RTP
    and RTCP, video RTP and RTCP), so all four must be free, not only the first (a
    switch's SIP port two above made SIPp exit with "Address already in use")."""
    for _ in range(100):
        base = free_udp_port(host)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + 4):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((host, port))
            except OSError:
                continue
        return base
    raise RuntimeError("no four free UDP ports in a row")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Switch:
    """A running `centralino serve`."""

    process: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    data_dir: Path
    log_path: Path
    sip_host: str = "127.0.0.1"

    @property
    def sip(self) -> str:
        """HOST:PORT of the SIP socket, as SIPp and `--sip` take it."""
        return f"{hostport(self.sip_host)}:{self.sip_port}"

    @property
    def sip_addr(self) -> tuple[str, int]:
        return (self.sip_host, self.sip_port)

    def http_get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def hostport(host: str) -> str:
    """An IPv6 address in brackets (RFC 3261 §19.1.1 hostport), anything else as is."""
    return f"[{host}]" if ":" in host else host


def start_switch(
    tmp: Path, config: Path | None = None, *extra: str, sip_host: str = "127.0.0.1"
) -> Switch:
    """`centralino serve` on free ports (SIP on `sip_host`), healthy within 20 s."""
    family = socket.AF_INET6 if ":" in sip_host else socket.AF_INET
    sip_port, http_port = free_udp_port(sip_host, family), free_tcp_port()
    log_path = tmp / "centralino.log"
    args = [str(CENTRALINO), "serve", "--sip", f"{hostport(sip_host)}:{sip_port}"]
    args += ["--http", f"127.0.0.1:{http_port}", "--data", str(tmp / "var")]
    if config is not None:
        args += ["--config", str(config)]
    args += list(extra)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    switch = Switch(proc, sip_port, http_port, tmp / "var", log_path, sip_host)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"centralino exited {proc.returncode}:\n{switch.log()}")
        try:
            if switch.http_get("/healthz")[0] == 200:
                return switch
        except OSError:
            pass
        time.sleep(0.1)
    stop_process(proc)
    raise RuntimeError(f"centralino did not become healthy:\n{switch.log()}")


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15
) -> int:
    """End a process by PID, bounded: `sig`, then SIGKILL after `timeout` seconds (more
    than serve's default --drain-seconds of 10, so a call left up is drained, not killed)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return int(proc.returncode)


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[Switch]:
    sw = start_switch(tmp_path)
    yield sw
    stop_process(sw.process)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed: scripts/setup.sh installs it")
        pytest.skip(f"{tool} not installed")
    return path


def run_sipp(
    scenario: str, target: str, *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run SIPp with a bounded number of calls and time; returns the finished process."""
    sipp = need("sipp")
    media_port = sipp_media_port()
    cmd = [sipp, target, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1"]
    cmd += ["-p", str(free_udp_port()), "-mp", str(media_port), "-nostdin"]
    cmd += ["-timeout", f"{int(timeout)}s", "-timeout_error", "-buff_size", "4194304"]
    cmd += list(args)
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return subprocess.CompletedProcess(cmd, int(proc.returncode), out, b"")


# -- a raw SIP/UDP peer ------------------------------------------------------------------

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Exception in callback")
# The top Via's sent-by, through any linear white space (RFC 3261 §25.1, §20.42).
_TOP_VIA_SENT_BY = re.compile(
    rb"^(?:via|v)\s*:\s*SIP\s*/\s*[^\s/]+\s*/\s*[A-Za-z]+\s*[^;,\s]+",
    re.IGNORECASE | re.MULTILINE,
)
_counter = itertools.count(1)


def with_rport(data: bytes) -> bytes:
    """Add `;rport` (RFC 3581) to the top Via so that the answer comes back to the
    sending socket, not to the sent-by port of a host in the message; nothing else
    of the message changes. Messages with no recognisable Via are left alone."""
    sent_by = _TOP_VIA_SENT_BY.search(data)
    if sent_by is None or b"rport" in data[sent_by.end() :].split(b"\r\n", 1)[0]:
        return data
    return data[: sent_by.end()] + b";rport" + data[sent_by.end() :]


@dataclass
class SipResponse:
    """A response as read off the wire (enough of it for assertions)."""

    raw: bytes
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: bytes) -> SipResponse | None:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
            return None
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in head[1:] if ":" in line]
        reason = parts[2] if len(parts) > 2 else ""
        return cls(raw, int(parts[1]), reason, [(k, v) for k, v in headers])

    def header(self, name: str) -> str | None:
        """The first value of a header (long names only: the switch writes those)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")


class SipPeer:
    """A UDP socket speaking raw SIP to the switch, from a chosen loopback address."""

    def __init__(self, target: tuple[str, int], source: str = "127.0.0.1") -> None:
        self.target = target
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.host, self.port = source, int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout: float) -> list[SipResponse]:
        """Every response arriving within `timeout` seconds of quiet."""
        got: list[SipResponse] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            response = SipResponse.parse(data)
            if response is not None:
                got.append(response)
        return got

    def request(
        self,
        method: str,
        uri: str,
        *extra: str,
        body: str = "",
        call_id: str | None = None,
        cseq_method: str | None = None,
    ) -> tuple[str, bytes]:
        """A well-formed request from this peer; returns (Call-ID, bytes)."""
        n = next(_counter)
        call_id = call_id or f"e2e-{os.getpid()}-{n}@{self.host}"
        me = f"{hostport(self.host)}:{self.port}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-e2e-{os.getpid()}-{n};rport",
            "Max-Forwards: 70",
            f"From: <sip:tester@{me}>;tag=e2e{n}",
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"CSeq: {n} {cseq_method or method}",
            f"Contact: <sip:tester@{me}>",
            *extra,
            f"Content-Length: {len(body.encode())}",
            "",
            body,
        ]
        return call_id, "\r\n".join(lines).encode()

    def options(self, timeout: float = 2.0) -> SipResponse | None:
        """Send one OPTIONS and return its final response (None if none came)."""
        uri = f"sip:{hostport(self.target[0])}:{self.target[1]}"
        call_id, data = self.request("OPTIONS", uri, "Accept: application/sdp")
        self.send(data)
        return self.final_for(call_id, timeout)

    def final_for(self, call_id: str, timeout: float) -> SipResponse | None:
        """The first final response carrying `call_id`, waiting at most `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for response in self.receive(min(left, 0.2)):
                if response.call_id == call_id and response.status >= 200:
                    return response
        return None

    def exchange(self, data: bytes, settle: float = 0.1) -> tuple[list[SipResponse], bool]:
        """Send `data`, then an OPTIONS as a barrier: the switch handles datagrams in
        order, so once the OPTIONS is answered every answer to `data` has been sent.
        Returns the other responses and whether the OPTIONS got its 200."""
        self.send(data)
        uri = f"sip:{hostport(self.target[0])}:{self.target[1]}"
        call_id, ping = self.request("OPTIONS", uri)
        self.send(ping)
        got: list[SipResponse] = []
        pinged = False
        deadline = time.monotonic() + 3.0
        while not pinged and time.monotonic() < deadline:
            for response in self.receive(0.2):
                if response.call_id == call_id:
                    pinged = pinged or response.status == 200
                else:
                    got.append(response)
        got += [r for r in self.receive(settle) if r.call_id != call_id]
        return got, pinged


# -- configuration copies -----------------------------------------------------------------

BUNDLED_CONFIG = ROOT / "config" / "trentino.yaml"


def write_config(
    tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None, name: str = "test.yaml"
) -> Path:
    """A copy of the bundled configuration in `tmp`, changed by `edit`. The prompt
    folder is made absolute: it is relative to the file's folder otherwise."""
    data = yaml.safe_load(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    data["prompts_dir"] = str(BUNDLED_CONFIG.parent / data.get("prompts_dir", "prompts"))
    if edit is not None:
        edit(data)
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def need_ipv6() -> None:
    """Skip when the machine has no IPv6 loopback (some containers disable it)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")


# -- digest REGISTER from a raw peer (RFC 3261 §10.2, RFC 7616 §3.4 with MD5) --------------

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def digest_params(challenge: str) -> dict[str, str]:
    """The parameters of a `Digest ...` challenge."""
    return {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(challenge)}


def digest_authorization(
    challenge: str, *, user: str, password: str, method: str, uri: str, nc: int = 1
) -> str:
    """An Authorization value answering an MD5 qop=auth challenge."""
    p = digest_params(challenge)

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2, cnonce = md5(f"{user}:{p['realm']}:{password}"), md5(f"{method}:{uri}"), "e2e0c"
    response = md5(f"{ha1}:{p['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}",'
        f' response="{response}", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce="{cnonce}"'
    )


@dataclass
class Registration:
    """One REGISTER dialogue of a raw peer: same Call-ID, growing CSeq (§10.2.4)."""

    peer: SipPeer
    aor_user: str
    call_id: str = ""
    cseq: int = 0
    last_auth: str = ""

    def send(
        self, *headers: str, contact: str | None = None, auth: str | None = None
    ) -> SipResponse | None:
        """One REGISTER; returns its final response."""
        self.cseq += 1
        host = f"{hostport(self.peer.target[0])}:{self.peer.target[1]}"
        me = f"{hostport(self.peer.host)}:{self.peer.port}"
        self.call_id = self.call_id or f"reg-{os.getpid()}-{next(_counter)}@e2e"
        lines = [
            f"REGISTER sip:{host} SIP/2.0",
            f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-reg-{os.getpid()}-{next(_counter)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.aor_user}@{host}>;tag=r{os.getpid()}",
            f"To: <sip:{self.aor_user}@{host}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: {contact or f'<sip:{self.aor_user}@{me}>'}",
            *headers,
            *([f"Authorization: {auth}"] if auth else []),
            "Content-Length: 0",
            "",
            "",
        ]
        self.peer.send("\r\n".join(lines).encode())
        return self.peer.final_for(self.call_id, timeout=3.0)

    def authenticated(
        self, *headers: str, user: str, password: str, contact: str | None = None
    ) -> SipResponse | None:
        """REGISTER, then again with credentials for the 401's challenge."""
        first = self.send(*headers, contact=contact)
        if first is None or first.status != 401:
            return first
        uri = f"sip:{hostport(self.peer.target[0])}:{self.peer.target[1]}"
        auth = digest_authorization(
            first.header("WWW-Authenticate") or "",
            user=user,
            password=password,
            method="REGISTER",
            uri=uri,
        )
        self.last_auth = auth
        return self.send(*headers, contact=contact, auth=auth)
