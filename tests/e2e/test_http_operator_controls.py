"""End to end: operators' controls over the HTTP API of the real switch take effect at
once on SIP. A paused operator's phone (SIPp, digest REGISTER) gets no call; the API's
`ready` makes the switch INVITE it immediately, with no other input to wake it up; the
operator's disposition of the answered call reaches the event log.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acd_helpers import (
    Processes,
    events,
    of_kind,
    processes,
    wait_for,
    wait_registered,
    write_config,
)
from conftest import Switch, need, start_switch, stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    need("sipp")
    with processes(tmp_path) as p:
        yield p


def call(switch: Switch, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


def queue(switch: Switch) -> dict[str, Any]:
    status, body = call(switch, "GET", "/api/queues")
    assert status == 200
    return dict(body[0])


def test_ready_over_the_api_rings_the_operator_at_once(tmp_path: Path, procs: Processes) -> None:
    switch = start_switch(tmp_path, write_config(tmp_path, ring_timeout=5.0))
    try:
        procs.phone(switch, "1001", ring_ms=200, talk_ms=1000, life_ms=40000)
        wait_registered(switch, 1)
        wait_for(
            "1001 logged in",
            lambda: call(switch, "GET", "/api/operators/1001")[1]["state"] == "available",
            5,
        )
        status, body = call(switch, "POST", "/api/operators/1001/pause", {"reason": "riunione"})
        assert (status, body["state"], body["reason"]) == (200, "paused", "riunione")
        caller = procs.callers(switch, "caller-wait.xml", 1)
        wait_for("a waiting call", lambda: queue(switch)["waiting"] == 1, 10)
        time.sleep(1.0)  # the paused operator is not offered the call
        assert call(switch, "GET", "/api/operators/1001")[1]["state"] == "paused"
        started = time.monotonic()
        status, body = call(switch, "POST", "/api/operators/1001/ready")
        assert (status, body["state"]) == (200, "offered")
        wait_for(
            "the answer",
            lambda: call(switch, "GET", "/api/operators/1001")[1]["state"] == "on_call",
            3,
        )
        assert time.monotonic() - started < 2.0  # 200 ms of ringing, then the answer
        assert caller.wait(30) == 0, caller.output()[-3000:]
        answered = wait_for("answered", lambda: of_kind(events(switch), "answered"), 5)
        call_id = answered[0].call_id
        status, body = call(
            switch, "POST", f"/api/calls/{call_id}/disposition", {"disposition": "resolved"}
        )
        assert (status, body) == (200, {"call_id": call_id, "disposition": "resolved"})
        assert call(switch, "POST", "/api/operators/9999/ready")[0] == 404
    finally:
        stop_process(switch.process)
