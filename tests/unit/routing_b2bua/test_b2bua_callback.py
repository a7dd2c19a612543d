"""Callback keeping the caller's place, in virtual time: the digit, the confirmation, the
hang-up, the operator first, the citizen dialed through the trunk, bridged or retried."""

from __future__ import annotations

import logging

import pytest
from b2bua_harness import (
    PHONE,
    TRUNK,
    Harness,
    answer_request,
    in_dialog,
    make_harness,
    register,
)
from callback_peers import (
    ANSWER_SDP,
    CALL_ID,
    CALLER,
    NUMBER,
    QUEUE,
    ask_callback,
    call_events,
    callback_harness,
    citizen_bye,
    kinds_of,
    kpi,
    operator_answers,
    operator_bye,
    press,
    queue_log,
    queued_caller,
    requests,
    talking,
)

from acd import events as ac
from metrics.events import EventKind
from metrics.kpi import CallCounted
from metrics.tally import Outcome
from routing import callback, callback_dial
from routing.media_plane import PlaybackFinished
from sip.message import Request, Response


def test_the_digit_hangs_up_keeping_the_place_and_the_number() -> None:
    h, seen = callback_harness()
    ask_callback(h)
    assert EventKind.ENDED not in h.kinds()  # the call goes on, nobody on the line
    assert h.events[-1][1]["data"] == {"callback": "requested"}
    assert ("close", CALLER) in h.media.calls
    requested = [o for o in seen if isinstance(o, ac.CallbackRequested)]
    assert [(r.call_id, r.number, r.at) for r in requested] == [("call-1@pbx", NUMBER, 22.0)]
    acd = h.core.b2bua.acd
    assert acd.queued_calls(QUEUE) == ["call-1@pbx"]
    assert h.core.active_calls() == 0  # nobody on the line while the call waits


def test_another_digit_or_a_queue_without_callback_does_nothing() -> None:
    h, _ = callback_harness()
    queued_caller(h)
    plays = len(h.media.plays())
    assert press(h, "7") == []
    assert len(h.media.plays()) == plays
    h2 = make_harness()  # the bundled queues offer no callback
    queued_caller(h2)
    plays = len(h2.media.plays())
    press(h2, "5")
    assert len(h2.media.plays()) == plays
    assert h2.core.active_calls() == 1


def test_operator_first_then_the_citizen_through_the_trunk_keeping_tm() -> None:
    h, seen = callback_harness()
    _, queued_at = ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    assert offer.headers.get("x-centralino-callback") == NUMBER
    assert "Mario Rossi" in (offer.headers.get("p-asserted-identity") or "")
    (dial,) = requests(out, "INVITE")
    assert [addr for m, addr in h.sent if m is dial] == [TRUNK]
    assert dial.uri == f"sip:{NUMBER}@{TRUNK[0]}:{TRUNK[1]}"
    assert dial.to.uri.user == NUMBER and dial.from_.uri.user == "800228040"
    assert ("bridge", ("call-1@pbx/callback", "call-1@pbx/1001")) not in h.media.calls
    h.now = 105.0
    h.deliver(answer_request(dial, 180, to_tag="cit"), TRUNK)
    out = h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    assert [a.call_id for a in requests(out, "ACK")] == [dial.call_id]
    assert ("bridge", ("call-1@pbx/callback", "call-1@pbx/1001")) in h.media.calls
    (answered,) = [o for o in seen if isinstance(o, ac.CallAnswered)]
    assert answered.callback and answered.operator == "1001" and answered.at == 105.0
    assert answered.entered_at == queued_at  # Tm counts from the first queue entry
    # The citizen hangs up: the operator is hung up and the call ends in the engine.
    bye = (
        f"BYE sip:centralino@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {TRUNK[0]}:{TRUNK[1]};branch=z9hG4bK-cbye\r\nMax-Forwards: 70\r\n"
        f"From: {dial.headers.get('to')};tag=cit\r\nTo: {dial.headers.get('from')}\r\n"
        f"Call-ID: {dial.call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    h.now = 200.0
    out = h.deliver(bye, TRUNK)
    assert [b.call_id for b in requests(out, "BYE")] == [offer.call_id]
    assert any(isinstance(o, ac.CallEnded) and o.call_id == "call-1@pbx" for o in seen)
    assert h.core.active_calls() == 0
    assert callback.desk(h.core.b2bua).waiting == {}


def test_a_refused_callback_frees_the_operator_and_is_retried_then_given_up() -> None:
    h, seen = callback_harness(attempts=2)
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    out = h.deliver(answer_request(dial, 486, to_tag="cit"), TRUNK)
    assert [b.call_id for b in requests(out, "BYE")] == [offer.call_id]
    (failed,) = [o for o in seen if isinstance(o, ac.CallbackFailed)]
    assert (failed.attempt, failed.final) == (1, False)
    assert h.core.active_calls() == 0
    # After the retry delay the same operator is offered the call again.
    h.advance(59.0)
    assert len([m for m, a in h.sent if isinstance(m, Request) and m.method == "INVITE"]) == 2
    out = h.advance(2.0)
    again = requests(out, "INVITE")[0]  # then Timer A's retransmissions (§17.1.1.2)
    assert {m.call_id for m in requests(out, "INVITE")} == {again.call_id}
    assert again.headers.get("x-centralino-callback") == NUMBER
    out = h.deliver(answer_request(again, 200, to_tag="op2", body=ANSWER_SDP), PHONE)
    (dial2,) = requests(out, "INVITE")
    assert dial2.call_id != dial.call_id
    h.deliver(answer_request(dial2, 480, to_tag="cit2"), TRUNK)
    finals = [o for o in seen if isinstance(o, ac.CallbackFailed)]
    assert [(f.attempt, f.final) for f in finals] == [(1, False), (2, True)]
    assert h.core.b2bua.acd.queued_calls(QUEUE) == []
    assert callback.desk(h.core.b2bua).waiting == {}
    assert h.media.open == set()


def test_a_citizen_who_never_answers_is_cancelled_at_the_ring_timeout() -> None:
    h, seen = callback_harness()
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    assert dial.headers.get("expires") == "45"
    h.deliver(answer_request(dial, 180, to_tag="cit"), TRUNK)
    b2bua = h.core.b2bua
    assert callback_dial.get_timer(b2bua) == 100.0 + callback.RING_TIMEOUT
    h.now = 100.0 + callback.RING_TIMEOUT
    h.core.handle_timer(now=h.now)
    out = h.flush()
    assert [c.call_id for c in requests(out, "CANCEL")] == [dial.call_id]
    # (The caller's own BYE is still retransmitted: the harness never answered it.)
    assert [b.call_id for b in requests(out, "BYE") if b.call_id != "call-1@pbx"] == [offer.call_id]
    assert any(isinstance(o, ac.CallbackFailed) for o in seen)
    assert callback_dial.get_timer(b2bua) is None


def test_a_caller_who_hangs_up_during_the_confirmation_is_called_back() -> None:
    h, seen = callback_harness()
    ok = queued_caller(h)
    press(h, "5")
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert [m.status for m in out if isinstance(m, Response)] == [200]
    assert [o.number for o in seen if isinstance(o, ac.CallbackRequested)] == [NUMBER]
    assert not any(isinstance(o, ac.CallAbandoned) for o in seen)
    assert EventKind.ENDED not in kinds_of(h)
    assert call_events(h)[-1].data == {"callback": "requested"}
    register(h)
    offers = [m for m, _ in h.sent if isinstance(m, Request) and m.method == "INVITE"]
    assert offers[-1].headers.get("x-centralino-callback") == NUMBER


def test_an_operator_who_hangs_up_before_the_citizen_answers_fails_the_attempt() -> None:
    h, seen = callback_harness(attempts=2)
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.deliver(answer_request(dial, 180, to_tag="cit"), TRUNK)
    out = h.deliver(operator_bye(offer), PHONE)
    assert [c.call_id for c in requests(out, "CANCEL")] == [dial.call_id]
    (failed,) = [o for o in seen if isinstance(o, ac.CallbackFailed)]
    assert (failed.attempt, failed.final) == (1, False)
    assert not any(isinstance(o, ac.CallEnded) for o in seen)
    # The place is kept: after the retry delay the operator is offered it again.
    out = h.advance(61.0)
    assert requests(out, "INVITE")[0].headers.get("x-centralino-callback") == NUMBER


def test_an_operator_answering_during_the_confirmation_talks_to_the_caller() -> None:
    h, seen = callback_harness()
    register(h)
    h.core.b2bua.acd.operator_pause("1001", now=h.now)
    h.flush()
    queued_caller(h)
    press(h, "5")
    h.core.b2bua.acd.operator_ready("1001", now=h.now)
    h.core.handle_timer(now=h.now)  # the engine's offer goes out on the next pump
    out = h.flush()
    (offer,) = requests(out, "INVITE")
    assert offer.headers.get("x-centralino-callback") is None
    h.deliver(answer_request(offer, 200, to_tag="op1", body=ANSWER_SDP), PHONE)
    assert ("bridge", (CALLER, "call-1@pbx/1001")) in h.media.calls
    # The bridge stopped the confirmation, which never reports its end: no callback is
    # pending for the call any more (music on hold after a transfer stays music).
    assert callback.desk(h.core.b2bua).confirming == set()
    out = h.media_event(PlaybackFinished(at=h.now, leg=CALLER, play_id=-2))
    assert requests(out, "BYE") == []
    assert not any(isinstance(o, ac.CallbackRequested) for o in seen)
    assert h.core.active_calls() == 1


def test_a_caller_leaving_during_the_confirmation_while_an_operator_rings() -> None:
    """The ringing offer is withdrawn and the callback offered at once, on a record of its
    own: the caller's ending must not take the new offer down with it."""
    h, seen = callback_harness()
    register(h)
    h.core.b2bua.acd.operator_pause("1001", now=h.now)
    ok = queued_caller(h)
    press(h, "5")
    h.core.b2bua.acd.operator_ready("1001", now=h.now)
    h.core.handle_timer(now=h.now)
    (first,) = requests(h.flush(), "INVITE")
    h.deliver(answer_request(first, 180, to_tag="op1"), PHONE)
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert [c.call_id for c in requests(out, "CANCEL")] == [first.call_id]
    (second,) = requests(out, "INVITE")
    assert second.headers.get("x-centralino-callback") == NUMBER
    h.deliver(answer_request(second, 200, to_tag="op2", body=ANSWER_SDP), PHONE)
    assert [o.number for o in seen if isinstance(o, ac.PlaceCallback)] == [NUMBER]


def test_a_retry_offered_at_once_is_not_lost_with_the_failed_attempt() -> None:
    h, seen = callback_harness(attempts=3, retry=0)
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    assert len(requests(out, "INVITE")) == 1
    out = h.deliver(operator_bye(offer), PHONE)
    out += h.advance(0.0)  # the engine's retry timer falls due at this very instant
    again = requests(out, "INVITE")[0]
    assert again.headers.get("x-centralino-callback") == NUMBER
    assert again.call_id not in {c.call_id for c in requests(out, "CANCEL")}
    h.deliver(answer_request(again, 200, to_tag="op3", body=ANSWER_SDP), PHONE)
    assert len([o for o in seen if isinstance(o, ac.PlaceCallback)]) == 2


# -- the event log of a callback (docs/events.md, docs/kpi.md) ---------------------------


def counted(h: Harness) -> list[CallCounted]:
    engine = kpi(h)
    outputs = iter(engine.next_event, None)
    return [o for o in outputs if isinstance(o, CallCounted)]


def test_a_callback_conversation_ends_once_and_counts_as_answered_from_its_queue_entry() -> None:
    h, _ = callback_harness()
    ask_callback(h)
    # The caller's hang-up is no end: the call keeps its place, and says it is a callback.
    assert EventKind.ENDED not in kinds_of(h)
    queued = [e for e in call_events(h) if e.kind is EventKind.QUEUED]
    assert [e.data.get("callback") for e in queued] == [None, "requested"]
    assert queued[-1].mono == 22.0 and queued[-1].queue == QUEUE
    assert counted(h) == []  # not abandoned: nothing is final yet
    h.now = 100.0
    _, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.now = 105.0
    h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    h.now = 200.0
    h.deliver(citizen_bye(dial), TRUNK)
    kinds = kinds_of(h)
    assert kinds.count(EventKind.ENDED) == 1 and kinds[-1] is EventKind.ENDED
    (answered,) = [e for e in call_events(h) if e.kind is EventKind.ANSWERED]
    assert (answered.mono, answered.operator, answered.data) == (
        105.0,
        "1001",
        {"callback": "true"},
    )
    (call,) = counted(h)
    # Tm runs from the first queue entry to the citizen's answer (the caller's wait for an
    # operator, hung up or not); P counts it as answered (Ni), never as abandoned.
    assert (call.outcome, call.wait) == (Outcome.ANSWERED, 105.0 - queued[0].mono)
    assert queue_log(h) == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]


def test_the_ended_event_says_who_hung_up_the_callback_conversation() -> None:
    for hanging_up, by, verb in (
        ("citizen", "caller", "COMPLETECALLER"),
        ("operator", "operator", "COMPLETEAGENT"),
    ):
        h, _ = callback_harness()
        offer, dial = talking(h)
        h.now = 200.0
        if hanging_up == "citizen":
            out = h.deliver(citizen_bye(dial), TRUNK)
            assert [b.call_id for b in requests(out, "BYE")] == [offer.call_id]
        else:
            out = h.deliver(operator_bye(offer), PHONE)
            assert [b.call_id for b in requests(out, "BYE")] == [dial.call_id]
        (ended,) = [e for e in call_events(h) if e.kind is EventKind.ENDED]
        assert ended.data == {"by": by}, hanging_up
        assert ended.operator == "1001"  # the operator of the conversation, whoever hung up
        assert queue_log(h)[-1] == verb
        assert h.core.active_calls() == 0 and h.media.open == set()


def test_an_attempt_that_fails_is_no_end_and_the_last_one_ends_the_call_unanswered() -> None:
    h, _ = callback_harness(attempts=2)
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.deliver(answer_request(dial, 180, to_tag="cit"), TRUNK)
    h.deliver(operator_bye(offer), PHONE)  # the operator gives up before the citizen answers
    assert EventKind.ENDED not in kinds_of(h)
    assert counted(h) == []
    out = h.advance(61.0)
    again = requests(out, "INVITE")[0]
    out = h.deliver(answer_request(again, 200, to_tag="op2", body=ANSWER_SDP), PHONE)
    (dial2,) = requests(out, "INVITE")
    h.now = 170.0
    h.deliver(answer_request(dial2, 486, to_tag="cit2"), TRUNK)
    kinds = kinds_of(h)
    assert kinds.count(EventKind.ENDED) == 1 and kinds[-2:] == [
        EventKind.OVERFLOWED,
        EventKind.ENDED,
    ]
    overflowed, ended = [e for e in call_events(h) if e.call_id == CALL_ID][-2:]
    assert overflowed.data == {"reason": "callback-failed", "action": "callback"}
    assert ended.data == {"by": "switch", "reason": "callback failed"}
    assert ended.mono == 170.0 and ended.queue == QUEUE
    # Neither answered nor abandoned: the caller did not give up waiting.
    assert [c.outcome for c in counted(h)] == [Outcome.OVERFLOWED]
    assert "ABANDON" not in queue_log(h)


# -- shutdown: waiting callbacks are not calls in progress; unsaved, they are lost ----------


def test_shutdown_drops_waiting_callbacks_with_a_count_and_ends_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, _ = callback_harness()
    ask_callback(h)
    assert h.core.active_calls() == 0  # the drain does not wait for a promise it cannot keep
    with caplog.at_level(logging.WARNING, logger="routing.callback"):
        assert callback.drop_at_shutdown(h.core.b2bua, now=30.0) == 1
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"shutdown: 1 pending callbacks of queue {QUEUE} are dropped"
    assert NUMBER not in record.getMessage()
    kinds = kinds_of(h)
    assert kinds.count(EventKind.ENDED) == 1 and kinds[-2:] == [
        EventKind.OVERFLOWED,
        EventKind.ENDED,
    ]
    assert call_events(h)[-1].data == {"by": "switch", "reason": "shutdown"}
    assert [c.outcome for c in counted(h)] == [Outcome.OVERFLOWED]
    assert callback.drop_at_shutdown(h.core.b2bua, now=31.0) == 0


def test_shutdown_hangs_up_callbacks_in_progress_and_drops_those_between_attempts() -> None:
    # A conversation is a call like any other: hung up, one `ended`.
    h, _ = callback_harness()
    talking(h)
    assert h.core.active_calls() == 1
    h.core.hang_up_all(reason="shutdown", now=200.0)
    assert callback.drop_at_shutdown(h.core.b2bua, now=200.0) == 0
    assert [e.data for e in call_events(h) if e.kind is EventKind.ENDED] == [
        {"by": "switch", "reason": "shutdown"}
    ]
    # A citizen still ringing: the attempt fails and the call, back in its queue, is dropped.
    h, _ = callback_harness(attempts=2)
    ask_callback(h)
    h.now = 100.0
    operator_answers(h)
    h.core.hang_up_all(reason="shutdown", now=101.0)
    assert EventKind.ENDED not in kinds_of(h)
    assert callback.drop_at_shutdown(h.core.b2bua, now=101.0) == 1
    assert kinds_of(h).count(EventKind.ENDED) == 1
