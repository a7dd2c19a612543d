"""Engine details: ordering, overflow, announcements, strategies, operators' controls,
resolution, and errors."""

from __future__ import annotations

import pytest
from acd_unit_helpers import Harness, make_config

from acd.config import OverflowKind, parse_acd_config
from acd.errors import (
    CallbackUnavailableError,
    DuplicateCallError,
    InvalidInputError,
    InvalidOperatorActionError,
    UnknownCallError,
    UnknownOperatorError,
    UnknownQueueError,
)
from acd.events import (
    CallAnswered,
    CallDispositionSet,
    CallOverflowed,
    CallQueued,
    CallTransferred,
    CancelOffer,
    Disposition,
    OfferCall,
    OfferFailure,
    OperatorStateChanged,
    Overflow,
    OverflowReason,
    PlayAnnouncement,
)
from acd.feature_codes import parse_feature_code
from acd.operator import OperatorState


def offered(h: Harness) -> list[tuple[str, str]]:
    return [(o.call_id, o.operator) for o in h.of(OfferCall, h.drain())]


def answer_and_end(h: Harness, call_id: str, op: str, *, at: float, talk: float) -> None:
    h.engine.offer_answered(call_id, op, now=at)
    h.engine.call_ended(call_id, now=at + talk)
    h.drain()


# ------------------------------------------------------------------------ ordering


def test_priority_first_then_queue_entry_time() -> None:
    h = Harness(make_config(operators=1))
    h.engine.enqueue("late-low", "q", entered_at=5, now=10)
    h.engine.enqueue("early-low", "q", entered_at=1, now=11)
    h.engine.enqueue("urgent", "q", priority=2, entered_at=9, now=12)
    assert h.engine.queued_calls("q") == ["urgent", "early-low", "late-low"]
    assert [q.position for q in h.of(CallQueued, h.drain())] == [1, 1, 1]
    h.ready_all()
    assert [(o.call_id, o.operator) for o in h.of(OfferCall)] == [("urgent", "op1")]


def test_calls_of_several_queues_compete_by_priority_and_entry_time() -> None:
    cfg = parse_acd_config(
        {
            "queues": [{"name": "a", "skill": "a"}, {"name": "b", "skill": "b"}],
            "operators": [{"id": "op1", "skills": {"a": 1, "b": 1}}],
        }
    )
    h = Harness(cfg)
    h.engine.enqueue("b1", "b", now=1)
    h.engine.enqueue("a1", "a", now=2)
    h.engine.enqueue("b2", "b", priority=1, now=3)
    h.ready_all()
    assert h.of(OfferCall, h.log)[0].call_id == "b2"


# ------------------------------------------------------------------------ overflow


def test_overflow_to_another_queue_keeps_the_entry_time() -> None:
    cfg = parse_acd_config(
        {
            "queues": [
                {
                    "name": "first",
                    "skill": "a",
                    "max_wait": 30,
                    "on_overflow": {"action": "queue", "target": "second"},
                },
                {"name": "second", "skill": "b"},
            ],
            "operators": [{"id": "op1", "skills": {"b": 1}}],
        }
    )
    h = Harness(cfg)
    h.engine.enqueue("c1", "first", entered_at=2, now=4)
    h.advance(34)
    assert h.of(Overflow) == []  # routing has nothing to do: the engine moved it
    [moved] = h.of(CallOverflowed)
    assert (moved.queue, moved.action, moved.target, moved.at) == ("first", "queue", "second", 34)
    assert h.engine.call_queue("c1") == "second"
    h.ready_all()
    h.engine.offer_answered("c1", "op1", now=40)
    [answered] = h.of(CallAnswered, h.drain())
    assert answered.entered_at == 2


def test_full_queue_overflows_the_new_call_at_once() -> None:
    h = Harness(make_config(max_len=2, on_overflow={"action": "message-and-hangup"}))
    for i in range(3):
        h.engine.enqueue(f"c{i}", "q", now=i)
    items = h.drain()
    assert [q.call_id for q in h.of(CallQueued, items)] == ["c0", "c1"]
    assert h.of(Overflow, items) == [
        Overflow(call_id="c2", action=OverflowKind.MESSAGE_AND_HANGUP, target=None)
    ]
    assert h.of(CallOverflowed, items)[0].reason is OverflowReason.QUEUE_FULL


def test_no_operator_logged_in_sends_callers_away_but_keeps_callbacks() -> None:
    h = Harness(
        make_config(
            operators=1,
            callback_digit="1",
            on_no_operator={"action": "voicemail", "target": "mb"},
        )
    )
    h.engine.enqueue("early", "q", now=0)
    assert h.of(CallOverflowed, h.drain())[0].reason is OverflowReason.NO_OPERATOR
    h.ready_all()
    h.engine.enqueue("c1", "q", caller="1", now=1)
    h.engine.enqueue("c2", "q", caller="2", now=2)
    h.engine.enqueue("c3", "q", caller="3", now=3)
    h.engine.request_callback("c3", now=4)
    h.engine.operator_logout("op1", now=5)  # c1 was ringing on op1
    items = h.drain()
    gone = [o.call_id for o in h.of(CallOverflowed, items)]
    assert gone == ["c1", "c2"]
    assert h.engine.call_ids() == ["c3"]
    h.engine.operator_login("op1", now=6)
    assert offered(h) == [("c3", "op1")]


# ------------------------------------------------------------------ announcements


def test_position_and_expected_wait_announcements() -> None:
    h = Harness(make_config(operators=2, announce_interval=30, callback_digit="9", wrapup=20))
    h.ready_all()
    for i in range(4):
        h.engine.enqueue(f"c{i}", "q", now=float(i))
    h.engine.offer_answered("c0", "op1", now=1)
    h.engine.offer_answered("c1", "op2", now=2)
    h.drain()
    items = h.advance(32)
    [a2] = h.of(PlayAnnouncement, items)
    # position 1 (c0, c1 left the queue), default talk 180 + wrap-up 20, 2 serving
    assert a2 == PlayAnnouncement(call_id="c2", position=1, expected_wait=100.0, callback_digit="9")
    h.engine.call_ended("c0", now=32.5)  # talked 31.5 s: the mean is now that
    items = h.advance(33)
    [a3] = h.of(PlayAnnouncement, items)
    assert (a3.call_id, a3.position) == ("c3", 2)
    assert a3.expected_wait == pytest.approx(2 * (31.5 + 20) / 2)
    items = h.advance(63)
    assert [a.call_id for a in h.of(PlayAnnouncement, items)] == ["c3"]  # c2 rings op1


def test_no_expected_wait_when_nobody_serves() -> None:
    h = Harness(make_config(operators=1, announce_interval=10))
    h.engine.enqueue("c1", "q", now=0)
    [a] = h.of(PlayAnnouncement, h.advance(10))
    assert (a.position, a.expected_wait) == (1, None)


# ---------------------------------------------------------------------- strategies


def test_longest_idle_counts_from_the_end_of_work() -> None:
    h = Harness(make_config(operators=2))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    answer_and_end(h, "c1", "op1", at=1, talk=10)  # op1 free again at 11, op2 since 0
    h.engine.enqueue("c2", "q", now=12)
    assert offered(h) == [("c2", "op2")]


def test_least_calls_rings_the_operator_with_fewest_answers() -> None:
    h = Harness(make_config(operators=2, strategy="least-calls"))
    h.ready_all(["op1"])
    for i, t in enumerate((1.0, 11.0)):
        h.engine.enqueue(f"c{i}", "q", now=t)
        assert offered(h) == [(f"c{i}", "op1")]
        answer_and_end(h, f"c{i}", "op1", at=t + 1, talk=5)
    h.now = 100
    h.ready_all(["op2"])  # idle for less time than op1, but answered no call yet
    h.engine.enqueue("c2", "q", now=101)
    assert offered(h) == [("c2", "op2")]


def test_skill_level_rings_the_best_level_first() -> None:
    ops = [
        {"id": "junior", "skills": {"info": 2}},
        {"id": "senior", "skills": {"info": 9}},
        {"id": "other", "skills": {"tax": 10}},
    ]
    h = Harness(make_config(operators=ops, strategy="skill-level"))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=1)
    h.engine.enqueue("c2", "q", now=2)
    assert offered(h) == [("c1", "senior"), ("c2", "junior")]


def test_ring_all_does_not_pause_on_no_answer() -> None:
    h = Harness(make_config(operators=2, strategy="ring-all", ring_timeout=10))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.drain()
    items = h.advance(14.9)
    assert not [s for s in h.of(OperatorStateChanged, items) if s.new is OperatorState.PAUSED]
    assert not h.of(OfferCall, items)  # a retry pause of `no_answer_delay` (5 s)...
    items = h.advance(15)
    assert {o.operator for o in h.of(OfferCall, items)} == {"op1", "op2"}  # ...then again


# ------------------------------------------------------------------ operators' controls


def test_pause_on_a_call_is_deferred_until_after_wrap_up() -> None:
    h = Harness(make_config(operators=1, wrapup=10))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.engine.operator_pause("op1", "lunch", now=5)
    assert h.engine.operator_state("op1") is OperatorState.ON_CALL
    assert h.engine.operator_snapshot("op1", now=5).pending == "pause"
    h.engine.call_ended("c1", now=20)
    assert h.engine.operator_state("op1") is OperatorState.WRAP_UP
    h.advance(30)
    snap = h.engine.operator_snapshot("op1", now=30)
    assert (snap.state, snap.reason) == (OperatorState.PAUSED, "lunch")


def test_ready_cancels_a_deferred_logout() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.engine.operator_logout("op1", now=2)
    h.engine.operator_ready("op1", now=3)
    h.engine.call_ended("c1", now=4)
    assert h.engine.operator_state("op1") is OperatorState.AVAILABLE


def test_pausing_while_rung_cancels_the_offer_and_the_call_moves_on() -> None:
    h = Harness(make_config(operators=2))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.drain()
    h.engine.operator_pause("op1", now=3)
    items = h.drain()
    assert h.of(CancelOffer, items)[0].reason is OfferFailure.OPERATOR_LEFT
    assert [(o.call_id, o.operator) for o in h.of(OfferCall, items)] == [("c1", "op2")]


@pytest.mark.parametrize(
    ("control", "state"),
    [("operator_ready", "logged_out"), ("operator_pause", "logged_out")],
)
def test_illegal_controls_raise_a_clear_error(control: str, state: str) -> None:
    h = Harness(make_config(operators=1))
    with pytest.raises(InvalidOperatorActionError, match=state) as info:
        getattr(h.engine, control)("op1", now=1)
    assert info.value.state == state


def test_wrapup_done_while_on_a_call_is_refused_and_changes_nothing() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.drain()
    with pytest.raises(InvalidOperatorActionError):
        h.engine.operator_wrapup_done("op1", now=2)
    assert h.drain() == []


def test_repeated_controls_are_harmless() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.operator_login("op1", now=1)
    h.engine.operator_ready("op1", now=1)
    assert h.drain() == []


def test_feature_codes_drive_the_engine() -> None:
    cfg = make_config(operators=1).model_copy(update={"pause_reasons": {"1": "break"}})
    h = Harness(cfg)
    h.engine.operator_registered("op1", now=0)
    for dialed, state, reason in [
        ("*41", OperatorState.AVAILABLE, None),
        ("*42*1", OperatorState.PAUSED, "break"),
        ("*427", OperatorState.PAUSED, "code 7"),
        ("*43", OperatorState.AVAILABLE, None),
        ("*40", OperatorState.LOGGED_OUT, None),
    ]:
        command = parse_feature_code(dialed)
        assert command is not None
        h.engine.apply_feature("op1", command, now=1)
        snap = h.engine.operator_snapshot("op1", now=1)
        assert (snap.state, snap.reason) == (state, reason), dialed


# ---------------------------------------------------------------------- resolution


def answered_call(h: Harness) -> None:
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.engine.offer_answered("c1", "op1", now=1)
    h.drain()


def test_disposition_is_unknown_until_set() -> None:
    h = Harness(make_config(operators=1))
    answered_call(h)
    assert h.engine.disposition("c1") is Disposition.UNKNOWN
    h.engine.call_ended("c1", now=9)
    command = parse_feature_code("*45")
    assert command is not None
    h.engine.apply_feature("op1", command, now=10)
    assert h.engine.disposition("c1") is Disposition.RESOLVED
    [fact] = h.of(CallDispositionSet, h.drain())
    assert (fact.call_id, fact.explicit, fact.at) == ("c1", True, 10)


def test_transfer_to_referent_counts_as_escalated_unless_the_operator_says_otherwise() -> None:
    h = Harness(make_config(operators=1))
    answered_call(h)
    h.engine.transferred_to_referent("c1", "+390461000000", now=5)
    items = h.drain()
    assert h.of(CallTransferred, items)[0].target == "+390461000000"
    assert h.of(CallDispositionSet, items)[0].explicit is False
    assert h.engine.disposition("c1") is Disposition.ESCALATED
    h.engine.set_disposition("c1", "resolved", now=6)
    h.engine.transferred_to_referent("c1", "+390461000001", now=7)
    assert h.engine.disposition("c1") is Disposition.RESOLVED


def test_disposition_errors_are_clear() -> None:
    h = Harness(make_config(operators=1))
    with pytest.raises(UnknownCallError):
        h.engine.set_operator_disposition("op1", Disposition.RESOLVED, now=1)
    answered_call(h)
    with pytest.raises(InvalidInputError):
        h.engine.set_disposition("c1", "solved", now=2)
    with pytest.raises(UnknownCallError):
        h.engine.set_disposition("nope", Disposition.RESOLVED, now=2)


# -------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors_before_changing_anything() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=0)
    h.drain()
    with pytest.raises(UnknownQueueError):
        h.engine.enqueue("c2", "nope", now=1)
    with pytest.raises(DuplicateCallError):
        h.engine.enqueue("c1", "q", now=1)
    with pytest.raises(UnknownOperatorError):
        h.engine.offer_answered("c1", "ghost", now=1)
    with pytest.raises(InvalidInputError):
        h.engine.offer_rejected("c1", "op1", reason="no-answer", now=1)
    with pytest.raises(CallbackUnavailableError):
        h.engine.request_callback("c1", now=1)  # the queue has no callback digit
    assert h.drain() == []
    assert h.engine.offered_to("c1") == {"op1"}


def test_late_inputs_for_finished_calls_are_absorbed() -> None:
    h = Harness(make_config(operators=1))
    h.ready_all()
    h.engine.caller_hung_up("gone", now=1)
    h.engine.call_ended("gone", now=1)
    h.engine.offer_ringing("gone", "op1", now=1)
    h.engine.offer_rejected("gone", "op1", reason="busy", now=1)
    assert h.drain() == []
    h.engine.offer_answered("gone", "op1", now=1)
    assert h.drain() == [
        CancelOffer(call_id="gone", operator="op1", reason=OfferFailure.CALLER_GONE)
    ]


def test_time_in_each_state_adds_up_to_the_elapsed_time() -> None:
    h = Harness(make_config(operators=1, wrapup=7))
    h.ready_all()
    h.engine.enqueue("c1", "q", now=3)
    h.engine.offer_answered("c1", "op1", now=5)
    h.engine.call_ended("c1", now=65)
    h.advance(72)
    h.engine.operator_pause("op1", now=80)
    times = h.engine.operator_snapshot("op1", now=100).time_in_states
    assert times[OperatorState.AVAILABLE] == 3 + 8
    assert times[OperatorState.OFFERED] == 2
    assert times[OperatorState.ON_CALL] == 60
    assert times[OperatorState.WRAP_UP] == 7
    assert times[OperatorState.PAUSED] == 20
    assert sum(times.values()) == 100
