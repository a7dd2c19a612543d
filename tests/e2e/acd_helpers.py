"""Helpers for the ACD end-to-end tests: a switch configuration made for them, SIPp
operator phones and callers as background processes, and the switch's event log.

Every wait is bounded, and every process started here is ended by PID (`stop_process`).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from conftest import (
    ROOT,
    SCENARIOS,
    Switch,
    free_tcp_port,
    free_udp_port,
    need,
    sipp_media_port,
    stop_process,
)

NUMBER = "800999001"
SERVICE = "acd-test"
QUEUE = "acd"
PASSWORDS = {op: f"demo{op}" for op in ("1001", "1002", "1003", "1004")}
T = TypeVar("T")


def write_config(
    tmp: Path,
    *,
    ring_timeout: float = 5.0,
    strategy: str = "longest-idle",
    wrapup: float = 0.0,
    queue_extra: dict[str, Any] | None = None,
    ping_interval: float = 300.0,
) -> Path:
    """A copy of config/trentino.yaml with one service always open whose IVR plays a
    beep (0.5 s) and sends callers to one queue served by operators 1001-1004, and the given ring
    timeout, strategy and wrap-up (the bundled services close at 17:00 in Rome)."""
    base = yaml.safe_load((ROOT / "config" / "trentino.yaml").read_text(encoding="utf-8"))
    for op in base["operators"]:
        op["skills"] = {QUEUE: 1}
    base["prompts_dir"] = str(ROOT / "config" / "prompts")
    base["sip"]["options_ping_interval"] = ping_interval
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    base["services"] = {
        SERVICE: {
            "name": "ACD test",
            "numbers": [NUMBER],
            "calendar": {
                "hours": [{"days": every_day, "from": "00:00", "to": "23:59:59"}],
                "public_holidays": False,
            },
            "languages": {"default": "it", "available": ["it"], "switch": {}},
            "entry": "welcome",
            "ivr": {
                "welcome": {"type": "play", "prompts": ["beep"], "welcome": True, "next": "queue"},
                "queue": {"type": "queue", "queue": QUEUE, "skill": QUEUE},
            },
        }
    }
    queue = {
        "name": QUEUE,
        "skill": QUEUE,
        "strategy": strategy,
        "ring_timeout": ring_timeout,
        "wrapup": wrapup,
        **(queue_extra or {}),
    }
    base["queues"] = [queue]
    path = tmp / "centralino.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Sipp:
    """A SIPp process running in the background."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def wait(self, timeout: float) -> int:
        """Its exit code, waiting at most `timeout` seconds (then it is ended)."""
        try:
            return int(self.process.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            raise AssertionError(f"{self.name} still running after {timeout} s") from None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:{sip}
audio_source ausine,440
ausrc_srate 48000
ausrc_channels 2
audio_player aubridge,nil
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module aubridge.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl}
"""


@dataclass
class Baresip(Sipp):
    """baresip, headless (docs TOOLS.md), with its ctrl_tcp port for commands."""

    ctrl: int = 0

    def command(self, command: str, params: str = "") -> str:
        """Send one netstring JSON command and return the raw answer (bounded, 5 s)."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl), timeout=5) as conn:
            conn.sendall(str(len(body)).encode() + b":" + body + b",")
            return conn.recv(65536).decode(errors="replace")


@dataclass
class Processes:
    """Every SIPp a test started, ended by PID when the test ends."""

    tmp: Path
    started: list[Sipp] = field(default_factory=list)

    def sipp(self, name: str, target: str, *args: str, timeout: float = 90) -> Sipp:
        cmd = [need("sipp"), target, "-i", "127.0.0.1", "-p", str(free_udp_port())]
        cmd += ["-mp", str(sipp_media_port()), "-nostdin", "-timeout", f"{int(timeout)}s"]
        cmd += ["-timeout_error", "-buff_size", "4194304", "-trace_err", *args]
        folder = self.tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "sipp.out"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
        sipp = Sipp(name, proc, log_path)
        self.started.append(sipp)
        return sipp

    def phone(
        self,
        switch: Switch,
        operator: str,
        *,
        kind: str = "answer",
        ring_ms: int = 500,
        talk_ms: int = 1000,
        hangup: str = "operator",
        life_ms: int = 60000,
    ) -> Sipp:
        """An operator's phone: registers with digest, then answers as `kind` says
        (operator-answer.xml, operator-busy.xml, operator-noanswer.xml)."""
        args = ["-sf", str(SCENARIOS / "operator.xml")]
        args += ["-oocsf", str(SCENARIOS / f"operator-{kind}.xml"), "-m", "1"]
        args += ["-s", operator, "-au", operator, "-ap", PASSWORDS[operator], "-trace_msg"]
        keys = {"life_ms": life_ms, "ring_ms": ring_ms, "talk_ms": talk_ms, "hangup": hangup}
        for key, value in keys.items():
            args += ["-key", key, str(value)]
        return self.sipp(f"phone-{operator}", switch.sip, *args, timeout=life_ms / 1000 + 30)

    def baresip(self, switch: Switch, operator: str) -> Baresip:
        """A real softphone (baresip) registered as `operator`, driven over ctrl_tcp."""
        folder = self.tmp / f"baresip-{operator}"
        folder.mkdir(parents=True, exist_ok=True)
        ctrl = free_tcp_port()
        config = BARESIP_CONFIG.format(sip=free_udp_port(), ctrl=ctrl)
        (folder / "config").write_text(config, encoding="utf-8")
        account = f"<sip:{operator}@{switch.sip}>;auth_pass={PASSWORDS[operator]}"
        account += ";answermode=auto;regint=60;audio_codecs=PCMU,PCMA\n"
        (folder / "accounts").write_text(account, encoding="utf-8")
        log_path = folder / "baresip.out"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [need("baresip"), "-f", str(folder), "-t", "120"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        phone = Baresip(f"baresip-{operator}", proc, log_path, ctrl)
        self.started.append(phone)
        return phone

    def callers(
        self, switch: Switch, scenario: str, count: int, *, rate: float = 1.0, **keys: str
    ) -> Sipp:
        """`count` trunk callers at `rate` calls per second."""
        args = ["-sf", str(SCENARIOS / scenario), "-s", NUMBER, "-m", str(count)]
        args += ["-r", str(int(rate * 1000)), "-rp", "1000000", "-l", str(count)]
        for key, value in keys.items():
            args += ["-key", key, value]
        return self.sipp(f"callers-{len(self.started)}", switch.sip, *args)

    def stop_all(self) -> None:
        for sipp in self.started:
            stop_process(sipp.process)


@contextmanager
def processes(tmp: Path) -> Iterator[Processes]:
    """SIPp processes for one test, all ended by PID at the end."""
    procs = Processes(tmp)
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `probe` every 0.1 s until it returns something truthy, for `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def registrations(switch: Switch) -> int:
    status, body = switch.http_get("/healthz")
    return int(json.loads(body)["registrations"]) if status == 200 else -1


def wait_registered(switch: Switch, count: int, timeout: float = 15.0) -> None:
    wait_for(f"{count} registrations", lambda: registrations(switch) >= count, timeout)


def active_calls(switch: Switch) -> int:
    status, body = switch.http_get("/healthz")
    return int(json.loads(body)["calls"]) if status == 200 else -1


@dataclass(frozen=True)
class Event:
    """One row of the switch's event log."""

    seq: int
    kind: str
    call_id: str | None
    operator: str | None
    data: dict[str, str]


def events(switch: Switch) -> list[Event]:
    """The event log as committed so far (the switch commits every 0.5 s)."""
    path = switch.data_dir / "events.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT seq, kind, call_id, operator, data FROM call_event ORDER BY seq"
        ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]


def of_kind(log: list[Event], kind: str) -> list[Event]:
    return [e for e in log if e.kind == kind]


def operator_states(log: list[Event], operator: str) -> list[tuple[str, str]]:
    """(state, reason) of every state change of `operator`, in order."""
    changes = [e for e in of_kind(log, "operator_state") if e.operator == operator]
    return [(e.data.get("state", ""), e.data.get("reason", "")) for e in changes]
