"""Call control in virtual time: a trunk call through the IVR and the queue to an operator."""

from __future__ import annotations

from collections.abc import Sequence

from b2bua_harness import (
    PHONE,
    TRUNK,
    Harness,
    answer_request,
    in_dialog,
    invite,
    make_harness,
    register,
    sdp_offer,
)

from media.sdp import serialize_sdp
from media.session import PCMU, build_offer
from metrics.events import EventKind
from routing.media_plane import DigitDetected, MediaTimedOut, PlaybackFinished
from sip.message import Request, Response


def finals(messages: Sequence[object]) -> list[Response]:
    return [m for m in messages if isinstance(m, Response) and m.status >= 200]


def answered_call(h: Harness) -> Response:
    out = h.deliver(invite(), TRUNK)
    (ok,) = finals(out)
    assert ok.status == 200
    return ok


def finish_prompts(h: Harness) -> None:
    """Let every prompt the IVR started play to its end (the media plane would say so)."""
    done: set[int] = set()
    for _ in range(10):
        pending = [p for p in h.media.plays() if p[3] > 0 and p[3] not in done]
        if not pending:
            return
        for leg, _, _, play_id, _ in pending:
            done.add(play_id)
            h.media_event(PlaybackFinished(at=h.now, leg=leg, play_id=play_id))


def test_unknown_number_gets_404_and_opens_no_media() -> None:
    h = make_harness()
    (resp,) = finals(h.deliver(invite("800000000"), TRUNK))
    assert resp.status == 404
    assert h.media.open == set()


def test_no_common_codec_gets_488_with_warning() -> None:
    h = make_harness()
    body = (
        sdp_offer((101,))
        .replace(b"101 ", b"101 ")
        .replace(b"m=audio 40000 RTP/AVP 101", b"m=audio 40000 RTP/AVP 9")
    )
    (resp,) = finals(h.deliver(invite(body=body), TRUNK))
    assert resp.status == 488
    assert "305" in (resp.headers.get("warning") or "")
    assert h.media.open == set()


def test_call_is_answered_with_sdp_and_hears_the_welcome() -> None:
    h = make_harness()
    ok = answered_call(h)
    assert b"m=audio 20002 RTP/AVP 0 101" in ok.body
    assert ok.to.tag is not None
    leg, prompts, language, _, _ = h.media.plays()[0]
    assert leg == "call-1@pbx/caller"
    assert prompts[0] == "welcome-trentino-digitale"
    assert language == "it"
    assert h.kinds()[:2] == [EventKind.ARRIVED, EventKind.IVR_ENTERED]


def test_menu_choice_goes_to_its_queue_with_music() -> None:
    h = make_harness()
    answered_call(h)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg="call-1@pbx/caller", digit="3", duration_ms=100))
    finish_prompts(h)
    assert EventKind.QUEUED in h.kinds()
    queued = dict(h.events)[EventKind.QUEUED]
    assert queued["queue"] == "trentino-in-rete"
    assert queued["service"] == "trentino-digitale"
    last = h.media.plays()[-1]
    assert last[1] == ("music-on-hold",) and last[4] is True


def test_queued_call_rings_the_registered_operator_and_bridges_on_answer() -> None:
    h = make_harness()
    assert register(h).status == 200
    answered_call(h)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg="call-1@pbx/caller", digit="3", duration_ms=100))
    finish_prompts(h)
    invites = [m for m, addr in h.sent if isinstance(m, Request) and m.method == "INVITE"]
    assert len(invites) == 1
    offer = invites[0]
    assert offer.headers.get("x-centralino-service") == "trentino-digitale"
    assert "Mario Rossi" in (offer.headers.get("p-asserted-identity") or "")
    h.now += 2.0
    h.deliver(answer_request(offer, 180, to_tag="op1"), PHONE)
    answer_sdp = serialize_sdp(
        build_offer(codecs=[PCMU], local_addr="127.0.0.1", local_port=30000, session_id=7)
    )
    out = h.deliver(answer_request(offer, 200, to_tag="op1", body=answer_sdp), PHONE)
    acks = [m for m in out if isinstance(m, Request) and m.method == "ACK"]
    assert len(acks) == 1
    assert ("bridge", ("call-1@pbx/caller", "call-1@pbx/1001")) in h.media.calls
    kinds = h.kinds()
    for kind in (EventKind.OFFERED, EventKind.RINGING, EventKind.ANSWERED):
        assert kind in kinds


def test_caller_bye_while_bridged_hangs_up_the_operator() -> None:
    h = make_harness()
    register(h)
    ok = answered_call(h)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg="call-1@pbx/caller", digit="3", duration_ms=100))
    finish_prompts(h)
    invites = [m for m, _ in h.sent if isinstance(m, Request) and m.method == "INVITE"]
    answer_sdp = serialize_sdp(
        build_offer(codecs=[PCMU], local_addr="127.0.0.1", local_port=30000, session_id=7)
    )
    h.deliver(answer_request(invites[0], 200, to_tag="op1", body=answer_sdp), PHONE)
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert [m.status for m in finals(out)] == [200]
    byes = [m for m in out if isinstance(m, Request) and m.method == "BYE"]
    assert len(byes) == 1 and byes[0].call_id == invites[0].call_id
    assert h.media.open == set()
    assert h.core.active_calls() == 0
    (ended,) = [fields for kind, fields in h.events if kind is EventKind.ENDED]
    assert (ended["operator"], ended["data"]) == ("1001", {"by": "caller"})  # talking to


def test_caller_hanging_up_while_queued_is_an_abandon() -> None:
    h = make_harness()
    ok = answered_call(h)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg="call-1@pbx/caller", digit="1", duration_ms=100))
    finish_prompts(h)
    h.advance(12.0)
    h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert EventKind.ABANDONED in h.kinds()
    assert h.core.active_calls() == 0
    (ended,) = [fields for kind, fields in h.events if kind is EventKind.ENDED]
    assert ended["operator"] is None  # nobody answered


def test_bye_for_an_unknown_dialog_gets_481() -> None:
    h = make_harness()
    ok = answered_call(h)
    fake = Response(200, "OK", ok.headers.copy())
    fake.headers.set("Call-ID", "nobody@pbx")
    (resp,) = finals(h.deliver(in_dialog("BYE", fake, cseq=2, source=TRUNK), TRUNK))
    assert resp.status == 481


def test_a_call_the_switch_hangs_up_is_logged_as_ended_by_the_switch() -> None:
    h = make_harness()
    answered_call(h)
    out = h.media_event(MediaTimedOut(at=h.now, leg="call-1@pbx/caller", silent_for=60.0))
    assert [m.method for m in out if isinstance(m, Request)] == ["BYE"]
    (ended,) = [fields for kind, fields in h.events if kind is EventKind.ENDED]
    assert ended["data"] == {"by": "switch", "reason": "media timeout"}
    assert h.media.open == set()


def test_without_libbcg729_a_g729_only_offer_gets_488() -> None:
    h = make_harness(g729=False)
    (resp,) = finals(h.deliver(invite(body=sdp_offer((18, 101))), TRUNK))
    assert resp.status == 488
    h = make_harness(g729=True)
    (resp,) = finals(h.deliver(invite(body=sdp_offer((18, 101))), TRUNK))
    assert resp.status == 200 and b"RTP/AVP 18 101" in resp.body


def test_a_ricaduta_call_goes_straight_to_agenzias_queue_tagged() -> None:
    h = make_harness()
    diverted = {"Diversion": "<sip:0461491234@pbx>;reason=no-answer;counter=1"}
    (ok,) = finals(h.deliver(invite("0461491234", extra=diverted), TRUNK))
    assert ok.status == 200
    arrived = dict(h.events)[EventKind.ARRIVED]
    assert arrived["service"] == "agenzia-lavoro"
    assert arrived["data"] == {"caller": "0461123456", "origin": "ricaduta"}
    assert EventKind.IVR_ENTERED not in h.kinds()
    assert dict(h.events)[EventKind.QUEUED]["queue"] == "agenzia-lavoro"
    assert h.media.plays()[-1][1] == ("music-on-hold",)
