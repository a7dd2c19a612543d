"""End-to-end fixtures: the real switch started as a user starts it, real peers.

Every wait is bounded and every process started here is ended by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "sipp-scenarios"
CENTRALINO = Path(sys.executable).with_name("centralino")


def free_udp_port() -> int:
    """An even UDP port free on loopback (and its +1), for SIP or media."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no free UDP port")


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

    @property
    def sip(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def http_get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_switch(tmp: Path, config: Path | None = None, *extra: str) -> Switch:
    sip_port, http_port = free_udp_port(), free_tcp_port()
    log_path = tmp / "centralino.log"
    args = [str(CENTRALINO), "serve", "--sip", f"127.0.0.1:{sip_port}"]
    args += ["--http", f"127.0.0.1:{http_port}", "--data", str(tmp / "var")]
    if config is not None:
        args += ["--config", str(config)]
    args += list(extra)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    switch = Switch(proc, sip_port, http_port, tmp / "var", log_path)
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


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """End a process by PID, bounded: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
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
    media_port = free_udp_port()
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
