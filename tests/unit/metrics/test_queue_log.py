"""The Asterisk queue_log export."""

from __future__ import annotations

from datetime import timedelta

from _metrics_helpers import Script, rome

from metrics.events import EventKind
from metrics.queue_log import export

T = rome(2026, 11, 24, 9, 0)  # 08:00 UTC: 1767225600 (2026-01-01) + 327 days + 8 h
E = 1795507200


def at(s: Script, kind: EventKind, call: str | None, sec: float, **kw: object) -> None:
    s.add(kind, call, T + timedelta(seconds=sec), **kw)


def lines(s: Script) -> list[str]:
    return list(export(s.events))


def test_answered_call_with_a_ring_no_answer() -> None:
    s = Script()
    at(s, EventKind.ARRIVED, "c1", 0, service="td")
    at(s, EventKind.QUEUED, "c1", 5, queue="td", data={"caller": "0461123456"})
    at(s, EventKind.OFFERED, "c1", 6, queue="td", operator="op1")
    at(s, EventKind.OFFERED, "c1", 21.5, queue="td", operator="op2")
    at(s, EventKind.ANSWERED, "c1", 25, queue="td", operator="op2", data={"leg": "leg-9"})
    at(s, EventKind.ENDED, "c1", 205, operator="op2", data={"by": "operator"})
    assert lines(s) == [
        f"{E + 5}|c1|td|NONE|ENTERQUEUE||0461123456",
        f"{E + 21}|c1|td|op1|RINGNOANSWER|15500",
        f"{E + 25}|c1|td|op2|CONNECT|20|leg-9|4",
        f"{E + 205}|c1|td|op2|COMPLETEAGENT|20|180|1",
    ]


def test_abandon_positions_and_overflow() -> None:
    s = Script()
    for n, call in enumerate(["a", "b", "c"]):
        at(s, EventKind.QUEUED, call, n, queue="q")
    at(s, EventKind.ABANDONED, "b", 30)
    at(s, EventKind.OVERFLOWED, "c", 62, queue="q")
    at(s, EventKind.ENDED, "c", 90)
    at(s, EventKind.ENDED, "a", 100)  # hang-up without an explicit abandoned event
    assert lines(s)[3:] == [
        f"{E + 30}|b|q|NONE|ABANDON|2|2|29",
        f"{E + 62}|c|q|NONE|EXITWITHTIMEOUT|2|3|60",
        f"{E + 100}|a|q|NONE|ABANDON|1|1|100",
    ]


def test_transfer_then_hangup_writes_only_transfer() -> None:
    s = Script()
    at(s, EventKind.QUEUED, "t", 0, queue="q")
    at(s, EventKind.ANSWERED, "t", 8, queue="q", operator="op1")
    at(s, EventKind.TRANSFERRED, "t", 68, operator="op1", data={"to": "referent", "target": "2001"})
    at(s, EventKind.ENDED, "t", 300)
    assert lines(s)[1:] == [
        f"{E + 8}|t|q|op1|CONNECT|8|op1|0",
        f"{E + 68}|t|q|op1|TRANSFER|2001|centralino|8|60|1",
    ]


def test_operator_membership_and_pauses() -> None:
    s = Script()
    at(
        s,
        EventKind.OPERATOR_STATE,
        None,
        0,
        operator="op1",
        queue="td",
        data={"state": "available"},
    )
    at(
        s,
        EventKind.OPERATOR_STATE,
        None,
        10,
        operator="op1",
        data={"state": "paused", "reason": "lunch|break"},
    )
    at(s, EventKind.OPERATOR_STATE, None, 20, operator="op1", data={"state": "available"})
    at(s, EventKind.OPERATOR_STATE, None, 30, operator="op1", data={"state": "logged_out"})
    assert lines(s) == [
        f"{E}|NONE|td|op1|ADDMEMBER|",
        f"{E + 10}|NONE|NONE|op1|PAUSE|lunch_break",
        f"{E + 20}|NONE|NONE|op1|UNPAUSE|",
        f"{E + 30}|NONE|NONE|op1|REMOVEMEMBER|",
    ]


def test_default_caller_hangup_and_ignored_events() -> None:
    s = Script()
    at(s, EventKind.ANSWERED, "ghost", 0, operator="op1")  # never queued: nothing to write
    at(s, EventKind.QUEUED, "x", 0, queue="q")
    at(s, EventKind.QUEUED, "x", 1, queue="q")  # duplicate entry ignored
    at(s, EventKind.ANSWERED, "x", 3, operator="op1")
    at(s, EventKind.ENDED, "x", 63)
    assert lines(s) == [
        f"{E}|x|q|NONE|ENTERQUEUE||",
        f"{E + 3}|x|q|op1|CONNECT|3|op1|0",
        f"{E + 63}|x|q|op1|COMPLETECALLER|3|60|1",
    ]


def test_an_offer_that_rings_out_is_said_when_the_operator_is_free_again() -> None:
    """op1 rings 15 s and is paused "no answer" (the ACD's ring timeout): RINGNOANSWER
    at the pause with 15 s, not at the next offer. A callback attempt op2 answered but
    the citizen did not: RINGNOANSWER when op2 is available again, no CONNECT."""
    s = Script()
    at(s, EventKind.QUEUED, "c1", 0, queue="td")
    at(s, EventKind.OFFERED, "c1", 1, queue="td", operator="op1")
    paused = {"state": "paused", "reason": "no answer"}
    at(s, EventKind.OPERATOR_STATE, None, 16, queue="td", operator="op1", data=paused)
    at(s, EventKind.OFFERED, "c1", 40, queue="td", operator="op2")
    at(s, EventKind.OPERATOR_STATE, None, 41, queue="td", operator="op2", data={"state": "on_call"})
    at(
        s,
        EventKind.OPERATOR_STATE,
        None,
        71,
        queue="td",
        operator="op2",
        data={"state": "available"},
    )
    got = [line for line in lines(s) if "RINGNOANSWER" in line or "CONNECT" in line]
    assert got == [
        f"{E + 16}|c1|td|op1|RINGNOANSWER|15000",
        f"{E + 71}|c1|td|op2|RINGNOANSWER|31000",
    ]


def test_an_answered_call_is_no_ring_no_answer_when_its_operator_is_free_again() -> None:
    s = Script()
    at(s, EventKind.QUEUED, "c1", 0, queue="td")
    at(s, EventKind.OFFERED, "c1", 1, queue="td", operator="op1")
    at(s, EventKind.OPERATOR_STATE, None, 3, queue="td", operator="op1", data={"state": "on_call"})
    at(s, EventKind.ANSWERED, "c1", 3, queue="td", operator="op1")
    at(s, EventKind.ENDED, "c1", 60, operator="op1", data={"by": "caller"})
    at(
        s,
        EventKind.OPERATOR_STATE,
        None,
        70,
        queue="td",
        operator="op1",
        data={"state": "available"},
    )
    events = [line.split("|")[4] for line in lines(s) if "MEMBER" not in line]
    assert events == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]
