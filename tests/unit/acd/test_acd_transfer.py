"""Blind transfers from one operator to another through the ACD (acd.transfer), in
virtual time: the target is reserved like an offer, then takes the call or is released."""

from __future__ import annotations

from typing import Any

import pytest
from acd_unit_helpers import Harness, make_config

from acd.errors import (
    InvalidInputError,
    InvalidOperatorActionError,
    UnknownCallError,
    UnknownOperatorError,
)
from acd.events import (
    CallAnswered,
    CallDispositionSet,
    CallEnded,
    CallTransferred,
    CancelTransfer,
    Disposition,
    OfferCall,
    OfferFailure,
    OperatorStateChanged,
)
from acd.operator import OperatorState

S = OperatorState


def talking(**queue: Any) -> Harness:
    """op1 answered call c1 at 10 s; op2 and op3 are available (in this order)."""
    h = Harness(make_config(wrapup=5, **queue))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=1.0)
    (offer,) = h.of(OfferCall, h.drain())
    assert offer.operator == "op1"
    h.engine.offer_answered("c1", "op1", now=10.0)
    h.drain()
    h.now = 10.0
    return h


def transferring(**queue: Any) -> Harness:
    """As `talking`, and at 20 s op1 transfers c1 to op2."""
    h = talking(**queue)
    h.engine.transfer_to_operator("c1", "op2", now=20.0)
    h.now = 20.0
    return h


def states(h: Harness) -> dict[str, OperatorState]:
    return {op: h.engine.operator_state(op) for op in h.engine.operator_ids()}


def test_the_target_is_reserved_and_offered_nothing_else_meanwhile() -> None:
    h = transferring()
    changes = h.of(OperatorStateChanged, h.drain())
    assert [(c.operator, c.old, c.new, c.at) for c in changes] == [
        ("op2", S.AVAILABLE, S.OFFERED, 20.0)
    ]
    assert h.engine.operator_snapshot("op2", now=20.0).call_id == "c1"
    assert h.engine.transfer_target("c1") == "op2"
    # A new caller goes to op3, never to the reserved op2...
    h.engine.enqueue("c2", "q", now=21.0)
    assert [(o.call_id, o.operator) for o in h.of(OfferCall, h.drain())] == [("c2", "op3")]
    # ...and once op3 is busy the next one waits, op2 still being reserved.
    h.engine.enqueue("c3", "q", now=22.0)
    assert h.of(OfferCall, h.drain()) == []
    assert h.engine.queue_snapshot("q", now=22.0).waiting == 1
    assert states(h) == {"op1": S.ON_CALL, "op2": S.OFFERED, "op3": S.OFFERED}


def test_the_target_answers_and_owns_the_call() -> None:
    h = transferring()
    h.drain()
    h.engine.transfer_answered("c1", "op2", now=25.0)
    out = h.drain()
    assert states(h) == {"op1": S.WRAP_UP, "op2": S.ON_CALL, "op3": S.AVAILABLE}
    assert h.engine.operator_snapshot("op2", now=25.0).call_id == "c1"
    assert h.engine.operator_snapshot("op1", now=25.0).call_id is None
    assert h.of(CallTransferred, out) == [
        CallTransferred(call_id="c1", operator="op1", target="op2", at=25.0)
    ]
    # Still one call, answered once; not ended yet.
    assert h.of(CallAnswered, out) == [] and h.of(CallEnded, out) == []
    assert h.engine.transfer_target("c1") is None
    # op1's wrap-up ends as after any call; op2 is not offered anything meanwhile.
    h.engine.enqueue("c2", "q", now=26.0)
    assert [o.operator for o in h.of(OfferCall, h.drain())] == ["op3"]
    h.advance(30.0)
    assert h.engine.operator_state("op1") is S.AVAILABLE


def test_after_the_transfer_the_targets_hang_up_wrap_up_and_disposition_apply() -> None:
    h = transferring()
    h.engine.transfer_answered("c1", "op2", now=25.0)
    h.drain()
    h.engine.call_ended("c1", now=40.0)
    (ended,) = h.of(CallEnded, h.drain())
    assert ended == CallEnded(call_id="c1", queue="q", operator="op2", at=40.0)
    assert h.engine.operator_state("op2") is S.WRAP_UP
    assert h.engine.set_operator_disposition("op2", Disposition.RESOLVED, now=41.0) == "c1"
    (disposition,) = h.of(CallDispositionSet, h.drain())
    assert (disposition.operator, disposition.disposition) == ("op2", Disposition.RESOLVED)
    assert h.engine.disposition("c1") is Disposition.RESOLVED
    h.advance(44.9)
    assert h.engine.operator_state("op2") is S.WRAP_UP
    h.advance(45.0)  # wrap-up: 5 s after the end
    assert h.engine.operator_state("op2") is S.AVAILABLE
    assert h.engine.operator_snapshot("op2", now=45.0).calls_answered == 1


def test_no_answer_applies_the_queues_ring_no_answer_policy() -> None:
    h = transferring()
    h.engine.transfer_failed("c1", "op2", reason=OfferFailure.NO_ANSWER, now=40.0)
    h.drain()
    snap = h.engine.operator_snapshot("op2", now=40.0)
    assert (snap.state, snap.reason, snap.call_id) == (S.PAUSED, "no answer", None)
    assert h.engine.operator_state("op1") is S.ON_CALL  # the caller is back with op1
    assert h.engine.transfer_target("c1") is None
    assert h.of(CancelTransfer) == []  # routing itself said it failed


def test_no_answer_without_autopause_skips_the_target_for_no_answer_delay() -> None:
    h = transferring(pause_on_no_answer=False, no_answer_delay=7)
    h.engine.transfer_failed("c1", "op2", reason="no-answer", now=40.0)
    h.engine.operator_ready("op3", now=40.0)
    h.engine.offer_answered("c1", "op3", now=40.0)  # a stray answer: refused, no change
    h.drain()
    h.engine.enqueue("c2", "q", now=41.0)
    h.engine.enqueue("c3", "q", now=41.0)
    assert [o.operator for o in h.of(OfferCall, h.drain())] == ["op3"]
    assert h.engine.operator_state("op2") is S.AVAILABLE
    offers = h.of(OfferCall, h.advance(47.0))
    assert [(o.call_id, o.operator) for o in offers] == [("c3", "op2")]


@pytest.mark.parametrize(
    ("reason", "delay"),
    [("busy", 10.0), ("decline", 5.0), ("unreachable", 30.0), ("caller-gone", 0.0)],
)
def test_a_refusal_releases_the_target_with_the_queues_delay(reason: str, delay: float) -> None:
    h = transferring()
    h.engine.transfer_failed("c1", "op2", reason=reason, now=40.0)
    h.drain()
    assert h.engine.operator_state("op2") is S.AVAILABLE
    h.engine.operator_pause("op3", now=40.0)
    h.engine.enqueue("c2", "q", now=40.0)
    early = [o.operator for o in h.of(OfferCall, h.drain())]
    assert early == ([] if delay else ["op2"])
    if delay:
        assert h.of(OfferCall, h.advance(40.0 + delay - 0.01)) == []
        assert [o.operator for o in h.of(OfferCall, h.advance(40.0 + delay))] == ["op2"]


def test_the_caller_hanging_up_while_the_target_rings_releases_both() -> None:
    h = transferring()
    h.drain()
    h.engine.caller_hung_up("c1", now=30.0)
    out = h.drain()
    assert h.of(CancelTransfer, out) == [
        CancelTransfer(call_id="c1", operator="op2", reason=OfferFailure.CALLER_GONE)
    ]
    assert h.of(CallEnded, out) == [CallEnded(call_id="c1", queue="q", operator="op1", at=30.0)]
    assert states(h) == {"op1": S.WRAP_UP, "op2": S.AVAILABLE, "op3": S.AVAILABLE}
    assert h.engine.call_ids() == []


def test_the_transferring_operator_leaving_goes_to_wrap_up_and_the_transfer_rings_on() -> None:
    h = transferring()
    h.engine.transferring_operator_left("c1", now=25.0)
    assert h.of(CallEnded, h.drain()) == []
    assert states(h) == {"op1": S.WRAP_UP, "op2": S.OFFERED, "op3": S.AVAILABLE}
    h.engine.transfer_answered("c1", "op2", now=28.0)
    out = h.drain()
    assert h.of(CallTransferred, out)[0].operator == "op1"
    assert h.engine.operator_state("op2") is S.ON_CALL
    h.engine.call_ended("c1", now=50.0)
    h.drain()
    assert [e.operator for e in h.of(CallEnded)] == ["op2"]  # one end, by the owner


def test_the_transferring_operator_gone_and_the_transfer_failing_ends_the_call_here() -> None:
    h = transferring()
    h.engine.transferring_operator_left("c1", now=25.0)
    h.engine.transfer_failed("c1", "op2", reason="busy", now=30.0)
    out = h.drain()
    assert h.of(CallEnded, out) == [CallEnded(call_id="c1", queue="q", operator="op1", at=30.0)]
    assert h.engine.call_ids() == []
    # Routing queues the caller again under the same call id, keeping its entry time.
    h.engine.enqueue("c1", "q", entered_at=1.0, now=31.0)
    assert [o.operator for o in h.of(OfferCall, h.drain())] == ["op3"]


def test_without_a_transfer_the_operator_leaving_ends_the_call() -> None:
    h = talking()
    h.engine.transferring_operator_left("c1", now=15.0)
    assert [e.operator for e in h.of(CallEnded, h.drain())] == ["op1"]
    assert h.engine.operator_state("op1") is S.WRAP_UP


@pytest.mark.parametrize("control", ["pause", "logout", "unregistered"])
def test_the_target_pausing_or_leaving_while_ringing_cancels_the_transfer(control: str) -> None:
    h = transferring()
    h.drain()
    getattr(h.engine, f"operator_{control}")("op2", now=22.0)
    out = h.drain()
    reason = OfferFailure.UNREGISTERED if control == "unregistered" else OfferFailure.OPERATOR_LEFT
    cancel = CancelTransfer(call_id="c1", operator="op2", reason=reason)
    assert h.of(CancelTransfer, out) == [cancel]
    expected = {"pause": S.PAUSED, "logout": S.LOGGED_OUT, "unregistered": S.AVAILABLE}
    assert h.engine.operator_state("op2") is expected[control]
    assert h.engine.operator_state("op1") is S.ON_CALL
    # Its phone's answer crossing the cancel is turned away.
    h.engine.transfer_answered("c1", "op2", now=23.0)
    out = h.drain()
    assert h.of(CancelTransfer, out)[0].reason is OfferFailure.WITHDRAWN
    assert h.engine.operator_state("op1") is S.ON_CALL
    assert h.engine.operator_snapshot("op2", now=23.0).call_id is None


def test_late_inputs_for_a_transfer_that_no_longer_rings_change_nothing() -> None:
    h = transferring()
    h.engine.transfer_failed("c1", "op2", reason="busy", now=21.0)
    h.engine.transfer_failed("c1", "op2", reason="busy", now=22.0)
    h.engine.transfer_failed("gone", "op2", reason="busy", now=22.0)
    h.drain()
    before = states(h)
    h.engine.transfer_answered("c1", "op2", now=23.0)
    h.engine.transfer_answered("gone", "op3", now=23.0)
    out = h.drain()
    assert [(c.call_id, c.reason) for c in h.of(CancelTransfer, out)] == [
        ("c1", OfferFailure.WITHDRAWN),
        ("gone", OfferFailure.CALLER_GONE),
    ]
    assert h.of(OperatorStateChanged, out) == [] and states(h) == before


def test_a_transfer_to_an_operator_who_cannot_take_it_is_refused_unchanged() -> None:
    h = talking()
    h.engine.enqueue("c2", "q", now=11.0)  # rings op2
    h.engine.operator_pause("op3", now=11.0)
    h.drain()
    for target in ("op2", "op3"):
        with pytest.raises(InvalidOperatorActionError) as refused:
            h.engine.transfer_to_operator("c1", target, now=12.0)
        assert refused.value.state == h.engine.operator_state(target).value
    h.engine.operator_ready("op3", now=12.0)
    h.engine.operator_unregistered("op3", now=12.0)
    with pytest.raises(InvalidOperatorActionError, match="unregistered"):
        h.engine.transfer_to_operator("c1", "op3", now=12.0)
    h.drain()
    with pytest.raises(InvalidInputError):
        h.engine.transfer_to_operator("c1", "op1", now=12.0)  # to oneself
    with pytest.raises(UnknownOperatorError):
        h.engine.transfer_to_operator("c1", "op9", now=12.0)
    with pytest.raises(UnknownCallError):
        h.engine.transfer_to_operator("c2", "op3", now=12.0)  # not answered yet
    with pytest.raises(UnknownCallError):
        h.engine.transfer_to_operator("nope", "op3", now=12.0)
    with pytest.raises(InvalidInputError):
        h.engine.transfer_failed("c1", "op2", reason="whatever", now=12.0)
    assert h.drain() == [] and h.engine.transfer_target("c1") is None


def test_a_second_transfer_while_one_rings_is_refused() -> None:
    h = transferring()
    with pytest.raises(InvalidInputError, match="already being transferred"):
        h.engine.transfer_to_operator("c1", "op3", now=21.0)
    assert h.engine.operator_state("op3") is S.AVAILABLE


def test_a_callback_not_yet_connected_cannot_be_transferred() -> None:
    h = Harness(make_config(callback_digit="1"))
    h.ready_all(["op1"])
    h.engine.enqueue("c1", "q", caller="0461", now=0.0)
    h.engine.request_callback("c1", now=1.0)
    h.engine.offer_answered("c1", "op1", now=2.0)  # PlaceCallback: dialing the citizen
    h.ready_all(["op2"])
    with pytest.raises(UnknownCallError, match="nobody on the line"):
        h.engine.transfer_to_operator("c1", "op2", now=3.0)
    h.engine.callback_answered("c1", now=4.0)
    h.engine.transfer_to_operator("c1", "op2", now=5.0)
    assert h.engine.operator_state("op2") is S.OFFERED
