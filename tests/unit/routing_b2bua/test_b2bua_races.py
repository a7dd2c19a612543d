"""Call control in virtual time: the races of a real network between callers, the
switch and operators' phones (RFC 3261 §9.1 CANCEL, §13.2.2.4 2xx and ACK, §15 BYE)."""

from __future__ import annotations

from b2bua_harness import ROOT, TRUNK, Harness, in_dialog, invite, make_harness, register
from phones import (
    PHONES,
    answer,
    answer_sdp,
    finals,
    offer_to,
    ok_to,
    phone_bye,
    queue_call,
    requests,
    respond,
    sent_requests,
)

from acd.operator import OperatorState
from metrics.events import EventKind
from server.config import load_settings


def two_operators() -> Harness:
    """1001 registers first (longest idle, offered first), 1002 a second later."""
    h = make_harness()
    register(h, "1001", "demo1001", phone=PHONES["1001"])
    h.advance(1.0)
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    h.advance(1.0)
    return h


def state(h: Harness, operator: str) -> OperatorState:
    return h.core.b2bua.acd.operator_state(operator)


def data_of(h: Harness, kind: EventKind) -> list[dict[str, object]]:
    return [fields for k, fields in h.events if k is kind]


def test_answer_crossing_our_cancel_is_acked_then_hung_up() -> None:
    h = two_operators()
    ok = queue_call(h)
    offer = offer_to(h, "1001")
    respond(h, offer, 180, tag="a1", operator="1001")
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    (cancel,) = requests(out, "CANCEL")
    assert cancel.call_id == offer.call_id
    assert data_of(h, EventKind.ABANDONED)[0]["data"] == {"while_ringing": "true"}
    # The phone had already answered: its 200 arrives after our CANCEL left.
    out = respond(h, offer, 200, tag="a1", operator="1001", body=answer_sdp())
    (ack,) = requests(out, "ACK")
    (bye,) = requests(out, "BYE")
    assert ack.call_id == bye.call_id == offer.call_id
    assert bye.to.tag == "a1"
    assert h.media.open == set()
    # Its 200 to our BYE ends the dialog: nothing of the call is left behind.
    ok_to(h, bye, source=PHONES["1001"])
    assert len(h.core.b2bua.dialogs) == 0
    assert h.core.active_calls() == 0
    assert state(h, "1001") is OperatorState.AVAILABLE


def test_cancel_waits_for_a_provisional_response_then_goes() -> None:
    h = two_operators()
    ok = queue_call(h)
    offer = offer_to(h, "1001")
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert requests(out, "CANCEL") == []  # §9.1: not before a provisional response
    out = respond(h, offer, 180, tag="a1", operator="1001")
    (cancel,) = requests(out, "CANCEL")
    assert cancel.top_via.branch == offer.top_via.branch
    out = respond(h, offer, 487, tag="a1", operator="1001")
    assert [m.method for m in requests(out, "ACK")] == ["ACK"]  # the layer ACKs a 487
    assert requests(out, "BYE") == []


def test_two_hundred_retransmissions_get_the_same_ack_again() -> None:
    h = two_operators()
    queue_call(h)
    out = answer(h, "1001", tag="a1")
    (first,) = requests(out, "ACK")
    offer = offer_to(h, "1001")
    again = respond(h, offer, 200, tag="a1", operator="1001", body=answer_sdp())
    (second,) = requests(again, "ACK")
    assert second.to_bytes() == first.to_bytes()
    assert requests(again, "BYE") == []
    bridges = [args for op, args in h.media.calls if op == "bridge"]
    assert len(bridges) == 1


def test_operator_hanging_up_hangs_up_the_caller() -> None:
    h = two_operators()
    ok = queue_call(h)
    answer(h, "1001", tag="a1")
    offer = offer_to(h, "1001")
    out = h.deliver(phone_bye(h, offer, tag="a1", operator="1001"), PHONES["1001"])
    assert [r.status for r in finals(out)] == [200]
    (bye,) = requests(out, "BYE")
    assert bye.call_id == ok.call_id
    ended = data_of(h, EventKind.ENDED)
    assert ended[-1]["operator"] == "1001" and ended[-1]["data"] == {"by": "operator"}
    assert h.media.open == set()
    assert state(h, "1001") is OperatorState.WRAP_UP
    ok_to(h, bye, source=TRUNK)
    assert len(h.core.b2bua.dialogs) == 0


def test_ring_timeout_cancels_pauses_and_offers_the_next_operator() -> None:
    h = two_operators()
    queue_call(h)
    first = offer_to(h, "1001")
    respond(h, first, 180, tag="a1", operator="1001")
    assert requests(h.advance(14.9), "CANCEL") == []  # ring_timeout 15 s from the offer
    (cancel,) = requests(h.advance(0.2), "CANCEL")
    assert cancel.call_id == first.call_id
    assert state(h, "1001") is OperatorState.PAUSED
    snapshot = h.core.b2bua.acd.operator_snapshot("1001", now=h.now)
    assert snapshot.reason == "no answer"
    second = offer_to(h, "1002")
    assert second.headers.get("x-centralino-call-id") == "call-1@pbx"
    respond(h, first, 487, tag="a1", operator="1001")
    out = answer(h, "1002", tag="b1")
    assert requests(out, "ACK")
    assert ("bridge", ("call-1@pbx/caller", "call-1@pbx/1002")) in h.media.calls
    assert h.media.open == {"call-1@pbx/caller", "call-1@pbx/1002"}


def test_busy_moves_on_without_pausing() -> None:
    h = two_operators()
    queue_call(h)
    out = respond(h, offer_to(h, "1001"), 486, tag="a1", operator="1001")
    assert requests(out, "ACK")  # the transaction ACKs a non-2xx (§17.1.1.3)
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert offer_to(h, "1002").headers.get("x-centralino-call-id") == "call-1@pbx"
    assert "call-1@pbx/1001" not in h.media.open


def test_second_answer_with_another_tag_is_hung_up() -> None:
    h = two_operators()
    queue_call(h)
    answer(h, "1001", tag="a1")
    offer = offer_to(h, "1001")
    out = respond(h, offer, 200, tag="fork2", operator="1001", body=answer_sdp(30002))
    (ack,) = requests(out, "ACK")
    (bye,) = requests(out, "BYE")
    assert ack.to.tag == bye.to.tag == "fork2"
    bridges = [args for op, args in h.media.calls if op == "bridge"]
    assert bridges == [("call-1@pbx/caller", "call-1@pbx/1001")]
    assert state(h, "1001") is OperatorState.ON_CALL


def test_answer_with_unusable_media_is_hung_up_and_the_call_offered_again() -> None:
    h = two_operators()
    queue_call(h)
    offer = offer_to(h, "1001")
    pcma_only = answer_sdp().replace(b"RTP/AVP 0", b"RTP/AVP 9").replace(b"PCMU", b"G722")
    out = respond(h, offer, 200, tag="a1", operator="1001", body=pcma_only)
    assert requests(out, "ACK") and requests(out, "BYE")
    assert "call-1@pbx/1001" not in h.media.open
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert offer_to(h, "1002").headers.get("x-centralino-call-id") == "call-1@pbx"


def test_trunk_cancel_crossing_our_answer_changes_nothing() -> None:
    h = two_operators()
    ok = queue_call(h)
    # §9.1: the CANCEL carries the INVITE's branch; it left before our 200 arrived.
    cancel = (
        f"CANCEL sip:800228040@127.0.0.1 SIP/2.0\r\n"
        f"Via: {ok.headers.get('via')}\r\nMax-Forwards: 70\r\n"
        f"From: {ok.headers.get('from')}\r\nTo: <sip:800228040@127.0.0.1>\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    )
    out = h.deliver(cancel, TRUNK)
    assert [r.status for r in finals(out)] == [200]
    assert h.core.active_calls() == 1
    assert EventKind.ABANDONED not in h.kinds()


def test_bye_nobody_answers_still_ends_its_dialog() -> None:
    h = two_operators()
    ok = queue_call(h)
    answer(h, "1001", tag="a1")
    out = h.deliver(phone_bye(h, offer_to(h, "1001"), tag="a1", operator="1001"), PHONES["1001"])
    assert requests(out, "BYE")
    assert len(h.core.b2bua.dialogs) == 1  # the caller's, until its BYE transaction ends
    h.advance(40.0)  # Timer F: the trunk never answered our BYE
    assert len(h.core.b2bua.dialogs) == 0
    assert h.core.b2bua.calls.lingering == 0
    assert ok.call_id not in [m.call_id for m, _ in sent_requests(h, "CANCEL")]


def test_offers_released_long_ago_are_forgotten() -> None:
    h = two_operators()
    ok = queue_call(h)
    respond(h, offer_to(h, "1001"), 180, tag="a1", operator="1001")
    h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert h.core.b2bua.calls.lingering == 1  # the cancelled offer, for a crossing 200
    h.advance(40.0)  # the phone never answered the CANCEL: the INVITE gives up
    assert h.core.b2bua.calls.lingering == 0
    assert len(h.core.b2bua.dialogs) == 0


def test_no_rtp_port_for_a_new_call_gets_503() -> None:
    h = make_harness()
    h.media.exhausted = True
    (refused,) = finals(h.deliver(invite(), TRUNK))
    assert refused.status == 503 and refused.headers.get("retry-after") == "5"
    assert h.core.active_calls() == 0


def test_no_rtp_port_for_an_offer_keeps_the_caller_waiting() -> None:
    h = two_operators()
    queue_call(h)
    assert sent_requests(h, "INVITE")  # offered to 1001 while ports were free
    h.deliver(in_dialog("BYE", queue_call(h, "call-2@pbx"), cseq=2, source=TRUNK), TRUNK)
    h.media.exhausted = True
    invites = len(sent_requests(h, "INVITE"))
    respond(h, offer_to(h, "1001"), 486, tag="a1", operator="1001")  # next: 1002, no port
    assert len(sent_requests(h, "INVITE")) == invites
    assert h.core.active_calls() == 1
    assert state(h, "1002") is OperatorState.AVAILABLE
    assert EventKind.ABANDONED in h.kinds()  # call-2 only
    assert [f["call_id"] for f in data_of(h, EventKind.ABANDONED)] == ["call-2@pbx"]


def test_phone_unregistering_while_ringing_is_cancelled_and_the_call_offered_again() -> None:
    h = two_operators()
    queue_call(h)
    first = offer_to(h, "1001")
    respond(h, first, 180, tag="a1", operator="1001")
    assert register(h, "1001", "demo1001", phone=PHONES["1001"], expires=0).status == 200
    cancels = sent_requests(h, "CANCEL")
    assert [m.call_id for m, _ in cancels] == [first.call_id]
    assert offer_to(h, "1002").headers.get("x-centralino-call-id") == "call-1@pbx"
    assert state(h, "1001") is OperatorState.AVAILABLE  # not to blame: not paused
    assert "call-1@pbx/1001" not in h.media.open


def test_refused_reinvites_leave_the_dialog_ready_for_the_next_one() -> None:
    h = two_operators()
    ok = queue_call(h)
    # An offer with no codec of ours (G.722 only) is refused; the session goes on.
    body = "v=0\r\no=pbx 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    body += "m=audio 40000 RTP/AVP 9\r\n"
    for cseq in (2, 3):
        request = in_dialog("INVITE", ok, cseq=cseq, source=TRUNK).replace(
            "Content-Length: 0\r\n\r\n",
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}",
        )
        out = h.deliver(request, TRUNK)
        assert [r.status for r in finals(out)] == [488]  # not 500 "INVITE in progress"
    assert h.core.active_calls() == 1
    out = h.deliver(in_dialog("BYE", ok, cseq=4, source=TRUNK), TRUNK)
    assert [r.status for r in finals(out)] == [200]
    assert h.core.active_calls() == 0


def test_phone_silent_to_the_invite_fails_the_offer_at_timer_b() -> None:
    settings = load_settings(ROOT / "config" / "trentino.yaml")
    slow = [q.model_copy(update={"ring_timeout": 60.0}) for q in settings.queues]
    h = make_harness(settings.model_copy(update={"queues": slow}))
    register(h, "1001", "demo1001", phone=PHONES["1001"])
    h.advance(1.0)
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    queue_call(h)
    offer_to(h, "1001")
    offered_at = h.now
    h.advance(31.9)
    assert not [a for _, a in sent_requests(h, "INVITE") if a == PHONES["1002"]]
    h.advance(0.2)  # Timer B = 64*T1 = 32 s: as a 408, long before the 60 s ring timeout
    assert h.now - offered_at < 33
    assert offer_to(h, "1002").headers.get("x-centralino-call-id") == "call-1@pbx"
    assert state(h, "1001") is OperatorState.AVAILABLE  # unreachable: skipped, not paused
    assert "call-1@pbx/1001" not in h.media.open
