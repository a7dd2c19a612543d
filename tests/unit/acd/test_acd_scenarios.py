"""The scenarios of issue 5, in virtual time: scripted inputs, exact instants."""

from __future__ import annotations

import pytest
from acd_unit_helpers import Harness, Phones, make_config

from acd.config import OverflowKind
from acd.errors import DuplicateCallError, UnknownQueueError
from acd.events import (
    CallAbandoned,
    CallAnswered,
    CallbackFailed,
    CallbackRequested,
    CallOffered,
    CallOverflowed,
    CancelOffer,
    OfferCall,
    OfferFailed,
    OfferFailure,
    Output,
    Overflow,
    OverflowReason,
    PlaceCallback,
)
from acd.operator import OperatorState
from acd.queue import CallState


def offers(h: Harness, items: list[Output] | None = None) -> list[tuple[str, str]]:
    return [(o.call_id, o.operator) for o in h.of(OfferCall, items)]


def test_ten_callers_on_three_operators_are_answered_in_order_of_arrival() -> None:
    h = Harness(make_config(wrapup=5))
    h.ready_all()
    phones = Phones(h, answer_after=2, talk=40)
    for i in range(10):
        phones.at(float(i), "arrive", f"c{i}")
    phones.run(until=1000)
    answered = h.of(CallAnswered)
    assert [a.call_id for a in answered] == [f"c{i}" for i in range(10)]
    assert [a.at for a in answered][:3] == [2.0, 3.0, 4.0]
    # Each operator serves again only after talk (40) + wrap-up (5): c3 waits for op1.
    assert answered[3].operator == "op1" and answered[3].at == 2 + 40 + 5 + 2
    assert h.of(CallAbandoned) == [] and h.engine.call_ids() == []
    busy = [h.engine.operator_state(op) for op in h.engine.operator_ids()]
    assert busy == [OperatorState.AVAILABLE] * 3


def test_caller_hanging_up_while_queued_is_abandoned_and_never_offered() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.engine.enqueue("c2", "q", now=2)
    h.engine.caller_hung_up("c2", now=20)
    h.engine.call_ended("c1", now=30)
    h.drain()
    [abandoned] = h.of(CallAbandoned)
    assert (abandoned.call_id, abandoned.while_ringing, abandoned.at) == ("c2", False, 20)
    assert ("c2", "op1") not in offers(h)
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE


def test_caller_hanging_up_while_an_operator_rings_cancels_that_leg() -> None:
    h = Harness(make_config(operators=2))
    h.ready_all(["op1"])
    h.now = 5
    h.ready_all(["op2"])  # op2 idle since 5, op1 since 0: op1 is longest idle
    h.engine.enqueue("c1", "q", now=6)
    h.engine.caller_hung_up("c1", now=8)
    items = h.drain()
    assert offers(h, items) == [("c1", "op1")]
    assert h.of(CancelOffer, items) == [
        CancelOffer(call_id="c1", operator="op1", reason=OfferFailure.CALLER_GONE)
    ]
    assert h.of(CallAbandoned, items)[0].while_ringing
    # Not paused, and still first in line: an unanswered offer is not their fault.
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE
    h.engine.enqueue("c2", "q", now=9)
    assert offers(h, h.drain()) == [("c2", "op1")]


def test_operator_not_answering_is_paused_and_the_next_operator_gets_the_call() -> None:
    h = Harness(make_config(operators=2, ring_timeout=12))
    h.ready_all(["op1"])
    h.now = 1
    h.ready_all(["op2"])
    h.engine.enqueue("c1", "q", now=3)
    assert offers(h, h.drain()) == [("c1", "op1")]
    assert h.engine.get_timer() == 15
    assert h.advance(14.999) == []
    items = h.advance(15)
    assert h.of(CancelOffer, items) == [
        CancelOffer(call_id="c1", operator="op1", reason=OfferFailure.NO_ANSWER)
    ]
    assert offers(h, items) == [("c1", "op2")]
    snap = h.engine.operator_snapshot("op1", now=15)
    assert (snap.state, snap.reason) == (OperatorState.PAUSED, "no answer")


@pytest.mark.parametrize(
    ("reason", "delay"),
    [(OfferFailure.BUSY, 10.0), (OfferFailure.DECLINE, 5.0), (OfferFailure.UNREACHABLE, 30.0)],
)
def test_refusal_moves_on_without_pausing_and_skips_the_operator_for_a_while(
    reason: OfferFailure, delay: float
) -> None:
    h = Harness(make_config(operators=2))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    assert offers(h, h.drain()) == [("c1", "op1")]
    h.engine.offer_rejected("c1", "op1", reason=reason, now=1)
    items = h.drain()
    assert not h.of(CancelOffer, items)  # the phone already said no
    assert h.of(OfferFailed, items)[0].reason is reason
    assert offers(h, items) == [("c1", "op2")]
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE
    h.engine.offer_answered("c1", "op2", now=1.5)
    h.engine.enqueue("c2", "q", now=2)
    assert offers(h, h.drain()) == []
    h.advance(1 + delay - 0.001)
    assert offers(h, h.drain()) == []
    assert offers(h, h.advance(1 + delay)) == [("c2", "op1")]


def test_ring_all_first_answer_wins_and_a_late_answer_is_released() -> None:
    h = Harness(make_config(operators=3, strategy="ring-all"))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    assert sorted(offers(h, h.drain())) == [("c1", "op1"), ("c1", "op2"), ("c1", "op3")]
    h.engine.offer_answered("c1", "op2", now=2)
    items = h.drain()
    cancelled = {(c.operator, c.reason) for c in h.of(CancelOffer, items)}
    assert cancelled == {
        ("op1", OfferFailure.ANSWERED_ELSEWHERE),
        ("op3", OfferFailure.ANSWERED_ELSEWHERE),
    }
    assert [a.operator for a in h.of(CallAnswered, items)] == ["op2"]
    # The next call rings op1 and op3 again; op3's 200 OK for c1 then arrives late.
    h.engine.enqueue("c2", "q", now=3)
    h.drain()
    h.engine.offer_answered("c1", "op3", now=3.1)
    late = h.drain()
    assert late == [
        CancelOffer(call_id="c1", operator="op3", reason=OfferFailure.ANSWERED_ELSEWHERE)
    ]
    assert h.engine.offered_to("c2") == {"op1", "op3"}
    assert h.engine.operator_state("op3") is OperatorState.OFFERED


def test_phone_disappearing_mid_offer_re_offers_the_call() -> None:
    h = Harness(make_config(operators=2))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    assert offers(h, h.drain()) == [("c1", "op1")]
    h.engine.operator_unregistered("op1", now=4)
    items = h.drain()
    assert h.of(CancelOffer, items)[0].reason is OfferFailure.UNREGISTERED
    assert offers(h, items) == [("c1", "op2")]
    # With nobody else the call waits, and goes to op1 once the phone is back.
    h.engine.offer_rejected("c1", "op2", reason="busy", now=5)
    assert h.engine.call_state("c1") is CallState.WAITING
    h.engine.operator_registered("op1", now=9)
    assert offers(h, h.drain())[-1] == ("c1", "op1")


def test_callback_keeps_the_original_place_and_entry_time() -> None:
    h = Harness(make_config(operators=1, callback_digit="1"))
    h.ready_all()
    h.engine.enqueue("c0", "q", caller="100", now=0)
    h.engine.offer_answered("c0", "op1", now=1)
    for i, t in ((1, 2.0), (2, 3.0), (3, 4.0)):
        h.engine.enqueue(f"c{i}", "q", caller=f"10{i}", now=t)
    h.engine.request_callback("c1", now=10)
    h.engine.caller_hung_up("c1", now=11)  # expected after asking: not an abandon
    h.engine.call_ended("c0", now=60)
    items = h.drain()
    assert h.of(CallbackRequested, items)[0].number == "101"
    assert not h.of(CallAbandoned, items)
    assert [o.callback_number for o in h.of(OfferCall, items)] == [None, "101"]
    h.engine.offer_answered("c1", "op1", now=62)
    items = h.drain()
    assert h.of(PlaceCallback, items) == [PlaceCallback(call_id="c1", number="101", operator="op1")]
    assert not h.of(CallAnswered, items)  # not answered until the citizen picks up
    h.engine.callback_answered("c1", now=70)
    [answer] = h.of(CallAnswered, h.drain())
    assert (answer.call_id, answer.entered_at, answer.callback) == ("c1", 2.0, True)


def test_failed_callback_retries_in_place_then_gives_up() -> None:
    h = Harness(make_config(operators=1, callback_digit="1", callback_retry_delay=100))
    h.ready_all()
    h.engine.enqueue("c1", "q", caller="101", now=0)
    h.engine.request_callback("c1", now=1)
    h.engine.offer_answered("c1", "op1", now=2)
    h.engine.callback_failed("c1", now=30)
    h.engine.enqueue("c2", "q", caller="102", now=31)
    items = h.drain()
    assert h.of(CallbackFailed, items)[0].final is False
    assert offers(h, items)[-1] == ("c2", "op1")  # the retry waits its delay
    assert h.engine.queued_calls("q") == ["c1", "c2"]  # ...but keeps its place
    h.engine.offer_answered("c2", "op1", now=32)
    h.engine.call_ended("c2", now=40)
    assert offers(h, h.drain()) == []
    assert offers(h, h.advance(130)) == [("c1", "op1")]
    h.engine.offer_answered("c1", "op1", now=131)
    h.engine.callback_failed("c1", now=150)
    assert h.of(CallbackFailed, h.drain())[-1].final is True
    assert h.engine.call_ids() == []
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE


def test_a_restored_callback_keeps_its_place_attempts_and_retry() -> None:
    """After a restart: a queue of 1 that turns new callers away when nobody is logged
    in still takes the restored callback (a promise), at its entry time, silently; its
    one attempt left and its retry at 50 s hold."""
    h = Harness(
        make_config(
            operators=1, callback_digit="1", callback_attempts=2, max_len=1,
            on_no_operator={"action": "message-and-hangup"},
        )
    )  # fmt: skip
    h.engine.restore_callback(
        "c1", "q", number="101", entered_at=-300.0, attempts=1, retry_at=50.0, now=0
    )
    assert h.drain() == [] and h.engine.queued_calls("q") == ["c1"]
    assert h.engine.callback_retry_at("c1") == 50.0
    with pytest.raises(DuplicateCallError):
        h.engine.restore_callback("c1", "q", number="101", entered_at=0.0, now=0)
    with pytest.raises(UnknownQueueError):
        h.engine.restore_callback("c9", "nope", number="1", entered_at=0.0, now=0)
    h.now = 10
    h.ready_all()
    h.engine.enqueue("c2", "q", caller="102", now=11)  # the queue holds one: full
    assert offers(h, h.drain()) == []  # the callback's retry is not due yet
    assert offers(h, h.advance(50)) == [("c1", "op1")]
    h.engine.offer_answered("c1", "op1", now=51)
    h.engine.callback_failed("c1", now=60)
    assert h.of(CallbackFailed, h.drain())[-1].final is True  # 2 of 2
    assert h.engine.call_ids() == []


def test_wrap_up_ends_on_time_or_earlier_on_request() -> None:
    h = Harness(make_config(operators=1, wrapup=20))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.engine.call_ended("c1", now=50)
    assert h.engine.operator_state("op1") is OperatorState.WRAP_UP
    assert h.engine.get_timer() == 70
    h.advance(70)
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE
    h.engine.enqueue("c2", "q", now=80)
    h.engine.offer_answered("c2", "op1", now=81)
    h.engine.call_ended("c2", now=90)
    h.engine.enqueue("c3", "q", now=91)
    assert offers(h, h.drain())[-1] == ("c2", "op1")
    h.engine.operator_wrapup_done("op1", now=95)
    assert offers(h, h.drain()) == [("c3", "op1")]
    times = h.engine.operator_snapshot("op1", now=95).time_in_states
    assert times[OperatorState.WRAP_UP] == 20 + 5
    assert times[OperatorState.ON_CALL] == 49 + 9


def test_max_wait_overflows_to_voicemail_at_the_exact_instant() -> None:
    cfg = make_config(max_wait=60, on_overflow={"action": "voicemail", "target": "mb-info"})
    h = Harness(cfg)
    h.engine.enqueue("c1", "q", now=7)
    h.drain()
    assert h.advance(66.99) == []
    items = h.advance(67)
    assert h.of(Overflow, items) == [
        Overflow(call_id="c1", action=OverflowKind.VOICEMAIL, target="mb-info")
    ]
    [fact] = h.of(CallOverflowed, items)
    assert (fact.reason, fact.at) == (OverflowReason.MAX_WAIT, 67)
    assert h.engine.call_ids() == []


def test_max_wait_while_ringing_waits_for_the_offer_to_end() -> None:
    h = Harness(make_config(operators=1, max_wait=10, pause_on_no_answer=False))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.advance(10)
    assert h.engine.call_state("c1") is CallState.OFFERED
    items = h.advance(15)
    assert h.of(CallOverflowed, items)[0].at == 15
    assert not h.of(CallOffered, items)


def test_operator_hanging_up_before_the_citizen_answers_is_a_failed_callback() -> None:
    h = Harness(make_config(operators=1, callback_digit="1", callback_attempts=1))
    h.ready_all()
    h.engine.enqueue("c1", "q", caller="101", now=0)
    h.engine.request_callback("c1", now=1)
    h.engine.offer_answered("c1", "op1", now=2)
    h.engine.call_ended("c1", now=20)
    items = h.drain()
    assert [(f.call_id, f.final) for f in h.of(CallbackFailed, items)] == [("c1", True)]
    assert not h.of(CallAnswered, items)
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE


def test_answer_crossing_the_ring_timeout_is_released() -> None:
    h = Harness(make_config(operators=2))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.drain()
    h.advance(15)  # op1 timed out, c1 now rings op2
    h.engine.offer_answered("c1", "op1", now=15.05)  # op1's 200 OK crossed our CANCEL
    assert h.drain() == [CancelOffer(call_id="c1", operator="op1", reason=OfferFailure.WITHDRAWN)]
    assert h.engine.offered_to("c1") == {"op2"}
    h.engine.offer_answered("c1", "op2", now=16)
    assert [a.operator for a in h.of(CallAnswered, h.drain())] == ["op2"]
