"""A real softphone (baresip 1.0, headless) registers as operator 1002, stays registered
through a refresh, and its binding goes away on its own once the phone is killed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    Switch,
    free_tcp_port,
    free_udp_port,
    need,
    start_switch,
    stop_process,
    write_config,
)

pytestmark = pytest.mark.e2e

MIN_EXPIRES = 10
REGINT = 20
BARESIP_LIFETIME = 120  # baresip -t: it quits on its own after this, whatever happens
MODULES = ("g711.so", "ausine.so", "aufile.so", "aubridge.so")


def short_expiry(data: dict[str, Any]) -> None:
    data["sip"]["min_expires"] = MIN_EXPIRES


def granted_expiry(config: dict[str, Any]) -> float:
    """What the registrar grants for `regint` (RFC 3261 §10.3: between the bounds)."""
    sip = config["sip"]
    return float(min(max(REGINT, sip["min_expires"]), sip["max_expires"]))


def baresip_folder(tmp: Path, switch: Switch) -> Path:
    folder = tmp / "baresip"
    folder.mkdir()
    sip_port = free_udp_port()
    lines = [
        "poll_method     epoll",
        f"sip_listen      127.0.0.1:{sip_port}",
        "audio_source    ausine,440",
        "ausrc_srate     48000",
        "ausrc_channels  2",
        "audio_player    aubridge,nil",
        "audio_alert     aubridge,nil",
        "module_path     /usr/lib/baresip/modules",
        *(f"module          {m}" for m in MODULES),
        "module_tmp      uuid.so",
        "module_tmp      account.so",
        "module_app      menu.so",
        "module_app      ctrl_tcp.so",
        f"ctrl_tcp_listen 127.0.0.1:{free_tcp_port()}",
    ]
    (folder / "config").write_text("\n".join(lines) + "\n")
    account = (
        f"<sip:1002@127.0.0.1:{switch.sip_port}>;auth_pass=demo1002;answermode=auto;"
        f"regint={REGINT};audio_codecs=PCMU,PCMA\n"
    )
    (folder / "accounts").write_text(account)
    return folder


def registrations(switch: Switch) -> int:
    status, body = switch.http_get("/healthz")
    assert status == 200
    return int(json.loads(body)["registrations"])


def wait_for(check: Callable[[], bool], seconds: float, what: str, switch: Switch) -> float:
    """Poll `check` every 0.2 s for at most `seconds`; returns the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s\n{switch.log()[-3000:]}")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Switch, dict[str, Any], Path]]:
    need("baresip")
    config = write_config(tmp_path, short_expiry)
    switch = start_switch(tmp_path, config)
    yield switch, yaml.safe_load(config.read_text()), tmp_path
    stop_process(switch.process)
    assert "Traceback" not in switch.log()


def test_baresip_registers_refreshes_and_expires_when_killed(
    setup: tuple[Switch, dict[str, Any], Path],
) -> None:
    switch, config, tmp = setup
    folder = baresip_folder(tmp, switch)
    log = (tmp / "baresip.log").open("wb")
    phone = subprocess.Popen(
        [need("baresip"), "-f", str(folder), "-t", str(BARESIP_LIFETIME)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: registrations(switch) == 1, 15, "baresip registered", switch)
        assert re.search(r"registration 1002 registered", switch.log())
        expiry = granted_expiry(config)
        # baresip refreshes before the binding runs out: within one expiry period.
        wait_for(
            lambda: "registration 1002 refreshed" in switch.log(),
            expiry + 5,
            "a refresh",
            switch,
        )
        assert registrations(switch) == 1
        assert "registration 1002 expired" not in switch.log()
        phone.send_signal(signal.SIGKILL)  # no chance to unregister
        phone.wait(timeout=10)
        # The last refresh was at most `expiry` seconds ago: the binding ends by then,
        # or earlier if the OPTIONS pings fail first; 3 s of slack for timer and polling.
        took = wait_for(lambda: registrations(switch) == 0, expiry + 3, "binding removed", switch)
        assert took <= expiry + 3
        assert re.search(r"registration 1002 (expired|unreachable)", switch.log())
    finally:
        stop_process(phone, signal.SIGKILL)
        log.close()
