"""End to end: SIPp operators' phones (REGISTER with digest, then answering, busy or
ringing) and SIPp callers from the trunk against `centralino serve`, checked on the
switch's event log.

Each test starts its own switch on a copy of the configuration with one always-open
service and a short ring timeout (acd_helpers.write_config), and ends every process it
started by PID.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from acd_helpers import (
    Processes,
    Sipp,
    active_calls,
    events,
    of_kind,
    operator_states,
    processes,
    registrations,
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


def serve(tmp: Path, **config: object) -> Switch:
    return start_switch(tmp, write_config(tmp, **config))  # type: ignore[arg-type]


def settled(switch: Switch, kind: str, count: int, timeout: float = 20.0) -> None:
    """Wait until the event log holds `count` events of `kind` (committed every 0.5 s)."""
    try:
        wait_for(f"{count} {kind}", lambda: len(of_kind(events(switch), kind)) >= count, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose(switch)}") from None


def diagnose(switch: Switch, sipp: Sipp | None = None) -> str:
    """What a failing test needs to say: the event log, the switch's and SIPp's ends."""
    lines = [f"{e.seq} {e.kind} {e.call_id} {e.operator} {e.data}" for e in events(switch)]
    tail = switch.log()[-3000:]
    return (
        "\n".join(lines)
        + f"\n--- switch log ---\n{tail}"
        + (f"\n--- {sipp.name} ---\n{sipp.output()[-2000:]}" if sipp else "")
    )


def test_ten_callers_on_three_operators_are_answered_in_order_of_arrival(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=5.0)
    try:
        phones = [
            procs.phone(switch, op, ring_ms=300, talk_ms=1500, life_ms=60000)
            for op in ("1001", "1002", "1003")
        ]
        wait_registered(switch, 3)
        callers = procs.callers(switch, "caller-wait.xml", 10, rate=3.0)
        assert callers.wait(60) == 0, diagnose(switch, callers)
        settled(switch, "ended", 10)
        log = events(switch)
        queued = [e.call_id for e in of_kind(log, "queued")]
        answered = [e.call_id for e in of_kind(log, "answered")]
        assert len(set(queued)) == 10
        assert answered == queued
        offered = [e.call_id for e in of_kind(log, "offered")]
        assert offered == queued  # first in, first offered: nobody overtakes
        assert not of_kind(log, "abandoned")
        served = {e.operator for e in of_kind(log, "answered")}
        assert served == {"1001", "1002", "1003"}
        assert wait_for("no calls", lambda: active_calls(switch) == 0, 5)
        for phone in phones:
            assert phone.process.poll() is None  # still registered, not crashed
        for op in ("1001", "1002", "1003"):
            assert phone_problems(procs, op) == []
    finally:
        stop_process(switch.process)


def test_caller_hanging_up_while_talking_hangs_up_the_operator(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=5.0)
    try:
        procs.phone(switch, "1001", ring_ms=300, hangup="caller", life_ms=30000)
        wait_registered(switch, 1)
        caller = procs.callers(switch, "caller-abandon.xml", 1, wait_ms="3000")
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "ended", 1)
        log = events(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1001"], diagnose(switch)
        assert of_kind(log, "ended")[0].data == {"by": "caller"}
        trace = wait_for("the BYE at the phone", lambda: bye_at(procs, "1001"), 5)
        assert "BYE sip:1001@" in trace
        assert phone_problems(procs, "1001") == []
        assert wait_for("no calls", lambda: active_calls(switch) == 0, 5)
    finally:
        stop_process(switch.process)


def test_caller_hanging_up_while_queued_is_abandoned(tmp_path: Path, procs: Processes) -> None:
    switch = serve(tmp_path)
    try:
        caller = procs.callers(switch, "caller-abandon.xml", 1, wait_ms="3000")
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "abandoned", 1)
        (abandoned,) = of_kind(events(switch), "abandoned")
        assert abandoned.data["while_ringing"] == "false"
        assert not of_kind(events(switch), "offered")
        assert wait_for("no calls", lambda: active_calls(switch) == 0, 5)
    finally:
        stop_process(switch.process)


def test_caller_hanging_up_while_an_operator_rings_cancels_the_offer(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=30.0)
    try:
        procs.phone(switch, "1001", kind="noanswer", life_ms=30000)
        wait_registered(switch, 1)
        caller = procs.callers(switch, "caller-abandon.xml", 1, wait_ms="3000")
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "abandoned", 1)
        log = events(switch)
        (abandoned,) = of_kind(log, "abandoned")
        assert abandoned.data["while_ringing"] == "true"
        assert [e.operator for e in of_kind(log, "ringing")] == ["1001"]
        trace = wait_for("the CANCEL at the phone", lambda: phone_trace(procs, "1001"), 5)
        assert "CANCEL sip:" in trace and "487 Request Terminated" in trace
        # The operator was not to blame: free again, not paused.
        assert operator_states(log, "1001")[-1] == ("available", "")
        assert phone_problems(procs, "1001") == []
    finally:
        stop_process(switch.process)


def test_operator_not_answering_is_paused_and_the_next_one_gets_the_call(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=2.0)
    try:
        procs.phone(switch, "1001", kind="noanswer", life_ms=40000)
        wait_registered(switch, 1)
        time.sleep(0.3)  # 1001 is the longest idle: offered first
        procs.phone(switch, "1002", ring_ms=300, talk_ms=1000, life_ms=40000)
        wait_registered(switch, 2)
        caller = procs.callers(switch, "caller-wait.xml", 1)
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "answered", 1)
        log = events(switch)
        assert [e.operator for e in of_kind(log, "offered")] == ["1001", "1002"], diagnose(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1002"], diagnose(switch)
        assert ("paused", "no answer") in operator_states(log, "1001")
        assert "CANCEL sip:" in phone_trace(procs, "1001")
        assert phone_problems(procs, "1001") == phone_problems(procs, "1002") == []
    finally:
        stop_process(switch.process)


def test_busy_operator_is_skipped_and_the_next_one_gets_the_call(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=5.0)
    try:
        procs.phone(switch, "1001", kind="busy", life_ms=40000)
        wait_registered(switch, 1)
        time.sleep(0.3)
        procs.phone(switch, "1002", ring_ms=300, talk_ms=1000, life_ms=40000)
        wait_registered(switch, 2)
        caller = procs.callers(switch, "caller-wait.xml", 1)
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "answered", 1)
        log = events(switch)
        assert [e.operator for e in of_kind(log, "offered")] == ["1001", "1002"], diagnose(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1002"], diagnose(switch)
        # Busy is not a fault: 1001 is skipped for a while, never paused.
        assert all(state != "paused" for state, _ in operator_states(log, "1001"))
        assert phone_problems(procs, "1001") == phone_problems(procs, "1002") == []
    finally:
        stop_process(switch.process)


def test_two_operators_racing_for_one_call(tmp_path: Path, procs: Processes) -> None:
    switch = serve(tmp_path, ring_timeout=5.0, strategy="ring-all")
    try:
        for op in ("1001", "1002"):
            procs.phone(switch, op, ring_ms=500, talk_ms=1500, life_ms=40000)
        wait_registered(switch, 2)
        caller = procs.callers(switch, "caller-wait.xml", 1)
        assert caller.wait(30) == 0, diagnose(switch, caller)
        settled(switch, "ended", 1)
        log = events(switch)
        assert sorted(e.operator or "" for e in of_kind(log, "offered")) == ["1001", "1002"]
        (answered,) = of_kind(log, "answered")
        loser = "1002" if answered.operator == "1001" else "1001"
        # The loser's answer crossed our CANCEL: it was ACKed and hung up, not left open.
        trace = wait_for("the loser's BYE", lambda: bye_at(procs, loser), 10)
        assert "BYE sip:" in trace
        assert phone_problems(procs, "1001") == phone_problems(procs, "1002") == []
        assert wait_for("no calls", lambda: active_calls(switch) == 0, 5)
    finally:
        stop_process(switch.process)


def test_phone_disappearing_mid_offer_the_call_is_offered_again(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=3.0)
    try:
        gone = procs.phone(switch, "1001", kind="noanswer", life_ms=40000)
        wait_registered(switch, 1)
        time.sleep(0.3)
        procs.phone(switch, "1002", ring_ms=300, talk_ms=1000, life_ms=40000)
        wait_registered(switch, 2)
        caller = procs.callers(switch, "caller-wait.xml", 1)
        settled(switch, "ringing", 1)
        stop_process(gone.process, signal.SIGKILL)
        assert caller.wait(40) == 0, diagnose(switch, caller)
        settled(switch, "answered", 1)
        log = events(switch)
        assert [e.operator for e in of_kind(log, "offered")] == ["1001", "1002"], diagnose(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1002"], diagnose(switch)
        assert not of_kind(log, "abandoned")
    finally:
        stop_process(switch.process)


def test_phone_unregistering_mid_offer_the_call_is_offered_again_at_once(
    tmp_path: Path, procs: Processes
) -> None:
    switch = serve(tmp_path, ring_timeout=30.0)
    try:
        # 1001 rings without answering, unregisters 4 s after registering and exits
        # (SIPp ends its ringing call as it goes).
        procs.phone(switch, "1001", kind="noanswer", life_ms=4000)
        wait_registered(switch, 1)
        time.sleep(0.3)
        procs.phone(switch, "1002", ring_ms=300, talk_ms=1000, life_ms=40000)
        wait_registered(switch, 2)
        started = time.monotonic()
        caller = procs.callers(switch, "caller-wait.xml", 1)
        assert caller.wait(30) == 0, diagnose(switch, caller)
        # Re-offered when the binding went, long before the 30 s ring timeout.
        assert time.monotonic() - started < 15
        log = events(switch)
        assert [e.operator for e in of_kind(log, "offered")] == ["1001", "1002"], diagnose(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1002"], diagnose(switch)
        assert all(state != "paused" for state, _ in operator_states(log, "1001"))
    finally:
        stop_process(switch.process)


def test_phones_answer_the_registrars_keepalives(tmp_path: Path, procs: Processes) -> None:
    switch = serve(tmp_path, ping_interval=1.0)
    try:
        procs.phone(switch, "1001", kind="answer", life_ms=20000)
        procs.phone(switch, "1002", kind="noanswer", life_ms=20000)
        wait_registered(switch, 2)
        wait_for("pings", lambda: phone_trace(procs, "1002").count("OPTIONS sip:") >= 3, 10)
        assert phone_trace(procs, "1001").count("OPTIONS sip:") >= 3
        assert registrations(switch) == 2  # every ping answered: nobody dropped
        assert phone_problems(procs, "1001") == phone_problems(procs, "1002") == []
    finally:
        stop_process(switch.process)


def phone_trace(procs: Processes, operator: str) -> str:
    """What the phone's SIPp saw and sent (its -trace_msg file)."""
    folder = procs.tmp / f"phone-{operator}"
    return "".join(p.read_text(errors="replace") for p in folder.glob("*_messages.log"))


def phone_problems(procs: Processes, operator: str) -> list[str]:
    """What the phone's SIPp logged as wrong (its -trace_err file): an aborted call or
    an unexpected message means the switch sent what a phone does not expect."""
    folder = procs.tmp / f"phone-{operator}"
    text = "".join(p.read_text(errors="replace") for p in folder.glob("*_errors.log"))
    return [word for word in ("Aborted", "nexpected", "Discarding") if word in text]


def bye_at(procs: Processes, operator: str) -> str:
    trace = phone_trace(procs, operator)
    return trace if "BYE sip:" in trace else ""
