"""Call control in virtual time: a trunk INVITE without SDP (delayed offer, RFC 3261
§13.2.1, RFC 3264 §4): our offer in the 200, the answer in the ACK."""

from __future__ import annotations

from b2bua_harness import TRUNK, Harness, in_dialog, invite, make_harness
from phones import finals, requests
from test_b2bua_hold import caller_sdp, configured, with_body

from media.sdp import parse_sdp
from metrics.events import EventKind
from sip.message import Response

LEG = "call-1@pbx/caller"


def late_call() -> tuple[Harness, Response]:
    h = make_harness()
    message = invite(body=b"").replace("Content-Type: application/sdp\r\n", "")
    (ok,) = finals(h.deliver(message, TRUNK))
    return h, ok


def test_invite_without_sdp_gets_our_offer_and_waits_for_the_ack() -> None:
    h, ok = late_call()
    assert ok.status == 200 and ok.headers.get("content-type") == "application/sdp"
    offer = parse_sdp(ok.body)
    assert offer.media[0].formats == ("0", "8", "18", "101")
    assert str(offer.direction_for(offer.media[0])) == "sendrecv"
    assert LEG in h.media.open
    assert configured(h, LEG) == [] and h.media.plays() == []  # nothing before the answer
    assert h.kinds() == [EventKind.ARRIVED]


def test_the_acks_answer_configures_media_and_starts_the_ivr() -> None:
    h, ok = late_call()
    answer = caller_sdp("sendrecv", 1).replace("RTP/AVP 0 101", "RTP/AVP 8 101")
    answer = answer.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
    h.deliver(with_body(in_dialog("ACK", ok, cseq=1, source=TRUNK), answer), TRUNK)
    (media,) = configured(h, LEG)
    assert media.codec == "PCMA" and media.remote == ("127.0.0.1", 40000)
    assert media.telephone_event_pt == 101 and media.sending is True
    assert h.media.plays()[0][1][0] == "welcome-trentino-digitale"
    assert h.kinds()[:2] == [EventKind.ARRIVED, EventKind.IVR_ENTERED]


def test_ack_without_sdp_is_hung_up_with_a_reason() -> None:
    h, ok = late_call()
    out = h.deliver(in_dialog("ACK", ok, cseq=1, source=TRUNK), TRUNK)
    (bye,) = requests(out, "BYE")
    reason = bye.headers.get("reason") or ""
    assert reason.startswith("SIP;cause=488;")
    assert h.media.open == set()
    assert h.core.active_calls() == 0
    (ended,) = [f for k, f in h.events if k is EventKind.ENDED]
    assert ended["data"] == {"by": "switch", "reason": "no usable answer in the ACK"}


def test_ack_with_no_common_codec_is_hung_up() -> None:
    h, ok = late_call()
    answer = caller_sdp("sendrecv", 1).replace("RTP/AVP 0 101", "RTP/AVP 9")
    out = h.deliver(with_body(in_dialog("ACK", ok, cseq=1, source=TRUNK), answer), TRUNK)
    assert len(requests(out, "BYE")) == 1
    assert h.media.plays() == [] and h.core.active_calls() == 0


def test_a_retransmitted_ack_does_not_start_the_ivr_twice() -> None:
    h, ok = late_call()
    ack = with_body(in_dialog("ACK", ok, cseq=1, source=TRUNK), caller_sdp("sendrecv", 1))
    h.deliver(ack, TRUNK)
    h.deliver(ack, TRUNK)
    assert len(configured(h, LEG)) == 1
    assert h.kinds().count(EventKind.IVR_ENTERED) == 1


def test_initial_offer_without_a_connection_line_gets_400_and_frees_its_port() -> None:
    h = make_harness()
    body = b"v=0\r\no=pbx 1 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
    (reply,) = finals(h.deliver(invite(body=body), TRUNK))
    assert reply.status == 400 and "c= line" in (reply.headers.get("warning") or "")
    assert h.media.open == set() and h.core.active_calls() == 0
