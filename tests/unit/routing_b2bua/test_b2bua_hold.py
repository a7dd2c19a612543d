"""Call control in virtual time: hold, unhold and refresh re-INVITEs passed between the
caller and the operator (RFC 3264 §8.4, RFC 3261 §14), with 491 glare (§14.1)."""

from __future__ import annotations

from b2bua_harness import TRUNK, Harness, in_dialog, make_harness, register
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from phones import PHONES, answer, finals, offer_to, queue_call, requests, respond

from media.sdp import SessionDescription, parse_sdp
from routing.media_plane import LegMedia
from sip.message import Message, Request, Response

CALLER_LEG, OPERATOR_LEG = "call-1@pbx/caller", "call-1@pbx/1001"


def caller_sdp(direction: str, version: int, *, host: str = "127.0.0.1") -> str:
    """The trunk's SDP (PCMU, telephone-event) with a direction and an o= version."""
    return (
        f"v=0\r\no=pbx 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
        f"a={direction}\r\n"
    )


def with_body(request: str, body: str, content_type: str = "application/sdp") -> str:
    """Put a body into a request built with Content-Length: 0."""
    return request.replace(
        "Content-Length: 0\r\n\r\n",
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n{body}",
    )


def phone_request(
    method: str,
    offer: Request,
    *,
    cseq: int,
    body: str = "",
    extra: tuple[str, ...] = (),
    tag: str = "op",
    operator: str = "1001",
) -> str:
    """A request from the operator's phone in the dialog its 200 to `offer` made."""
    source = PHONES[operator]
    lines = [
        f"{method} sip:centralino@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-ph-{method}-{cseq}",
        "Max-Forwards: 70",
        f"From: {offer.headers.get('to')};tag={tag}",
        f"To: {offer.headers.get('from')}",
        f"Call-ID: {offer.call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{operator}@{source[0]}:{source[1]}>",
        *extra,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def bridged() -> tuple[Harness, Response, Request]:
    """A caller talking to operator 1001: the trunk's 200 and our INVITE to the phone."""
    h = make_harness()
    register(h, "1001", "demo1001", phone=PHONES["1001"])
    h.advance(1.0)
    ok = queue_call(h)
    answer(h, "1001")
    assert ("bridge", (CALLER_LEG, OPERATOR_LEG)) in h.media.calls
    return h, ok, offer_to(h, "1001")


def configured(h: Harness, leg: str) -> list[LegMedia]:
    return [args[1] for op, args in h.media.calls if op == "configure" and args[0] == leg]  # type: ignore[index]


def sdp_of(message: Message) -> SessionDescription:
    return parse_sdp(message.body)


def direction(sdp: SessionDescription) -> str:
    return str(sdp.direction_for(sdp.media[0]))


def test_caller_hold_is_answered_recvonly_and_passed_to_the_operator() -> None:
    h, ok, offer = bridged()
    first = sdp_of(ok)
    before = len(h.media.calls)
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), caller_sdp("sendonly", 2)), TRUNK
    )
    (reply,) = finals(out)
    assert reply.status == 200
    held = sdp_of(reply)
    assert direction(held) == "recvonly"
    assert held.media[0].port == first.media[0].port  # the same RTP port
    assert held.origin.session_id == first.origin.session_id
    assert held.origin.session_version == first.origin.session_version + 1
    # The caller (holder) gets nothing from us; the operator hears music on hold.
    assert configured(h, CALLER_LEG)[-1].sending is False
    changes = h.media.calls[before:]
    assert ("unbridge", CALLER_LEG) in changes
    assert ("play", (OPERATOR_LEG, ("music-on-hold",), "it", 0, True)) in changes
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == offer.call_id and reoffer.cseq.seq == 2
    assert direction(sdp_of(reoffer)) == "sendonly"
    # The phone accepts the hold: we ACK and keep sending (the music) to it.
    reply_body = caller_sdp("recvonly", 5).replace("40000", "30000")
    out = respond(h, reoffer, 200, tag="op", operator="1001", body=reply_body.encode())
    (ack,) = requests(out, "ACK")
    assert ack.cseq.seq == 2 and ack.call_id == offer.call_id
    last = configured(h, OPERATOR_LEG)[-1]
    assert last.sending is True and last.remote == ("127.0.0.1", 30000)


def test_caller_unhold_bridges_again_and_takes_the_operator_off_hold() -> None:
    h, ok, _ = bridged()
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), caller_sdp("sendonly", 2)), TRUNK
    )
    (hold_offer,) = requests(out, "INVITE")
    respond(h, hold_offer, 200, tag="op", operator="1001", body=caller_sdp("recvonly", 5).encode())
    before = len(h.media.calls)
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=3, source=TRUNK), caller_sdp("sendrecv", 3)), TRUNK
    )
    (reply,) = finals(out)
    assert direction(sdp_of(reply)) == "sendrecv"
    assert configured(h, CALLER_LEG)[-1].sending is True
    assert ("bridge", (CALLER_LEG, OPERATOR_LEG)) in h.media.calls[before:]
    (unhold,) = requests(out, "INVITE")
    assert unhold.cseq.seq == 3 and direction(sdp_of(unhold)) == "sendrecv"
    assert sdp_of(unhold).origin.session_version == sdp_of(hold_offer).origin.session_version + 1


def test_old_style_hold_with_zero_address_stops_our_sending() -> None:
    h, ok, _ = bridged()
    body = caller_sdp("sendrecv", 2, host="0.0.0.0")
    out = h.deliver(with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), body), TRUNK)
    assert [r.status for r in finals(out)] == [200]
    last = configured(h, CALLER_LEG)[-1]
    assert last.sending is False and last.remote is None
    (reoffer,) = requests(out, "INVITE")
    assert direction(sdp_of(reoffer)) == "sendonly"


def test_session_refresh_gets_our_same_sdp_and_touches_nothing() -> None:
    h, ok, _ = bridged()
    first = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), caller_sdp("sendrecv", 2)), TRUNK
    )
    (answer1,) = finals(first)
    before = len(h.media.calls)
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=3, source=TRUNK), caller_sdp("sendrecv", 2)), TRUNK
    )
    (answer2,) = finals(out)
    assert answer2.status == 200 and answer2.body == answer1.body
    assert h.media.calls[before:] == []
    assert requests(out, "INVITE") == []


def test_operator_hold_plays_music_to_the_caller_and_reoffers_to_the_trunk() -> None:
    h, ok, offer = bridged()
    before = len(h.media.calls)
    body = caller_sdp("sendonly", 9).replace("40000", "30000")
    out = h.deliver(phone_request("INVITE", offer, cseq=1, body=body), PHONES["1001"])
    (reply,) = finals(out)
    assert reply.status == 200 and direction(sdp_of(reply)) == "recvonly"
    # Our first offer to the phone had version 0: the answer is a new body.
    assert sdp_of(reply).origin.session_version == 1
    changes = h.media.calls[before:]
    assert ("unbridge", OPERATOR_LEG) in changes
    assert ("play", (CALLER_LEG, ("music-on-hold",), "it", 0, True)) in changes
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == ok.call_id and direction(sdp_of(reoffer)) == "sendonly"
    assert [a for m, a in h.sent if m is reoffer] == [TRUNK]


def test_glare_491_retries_our_reinvite_after_the_back_off() -> None:
    h, ok, offer = bridged()
    body = caller_sdp("sendonly", 9).replace("40000", "30000")
    out = h.deliver(phone_request("INVITE", offer, cseq=1, body=body), PHONES["1001"])
    (reoffer,) = requests(out, "INVITE")
    # The trunk's own re-INVITE crosses ours: we answer 491 (§14.2)...
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), caller_sdp("sendrecv", 2)), TRUNK
    )
    assert [r.status for r in finals(out)] == [491]
    # ...and it answers ours 491 too: we did not make the Call-ID, so 0-2 s (§14.1).
    out = h.deliver(in_dialog_response(reoffer, 491), TRUNK)
    assert requests(out, "INVITE") == []
    sent = [m for m in h.advance(2.05) if isinstance(m, Request) and m.method == "INVITE"]
    retried = list({m.top_via.branch: m for m in sent}.values())  # Timer A may resend it
    assert len(retried) == 1
    assert retried[0].cseq.seq == reoffer.cseq.seq + 1
    assert direction(sdp_of(retried[0])) == "sendonly"


def in_dialog_response(request: Request, status: int, body: str = "") -> str:
    """The trunk's response to a request we sent in its dialog (To tag kept)."""
    lines = [f"SIP/2.0 {status} X"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {request.headers.get('to')}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('cseq')}",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def test_reinvite_without_sdp_gets_our_offer_and_the_ack_brings_the_answer() -> None:
    h, ok, _ = bridged()
    out = h.deliver(in_dialog("INVITE", ok, cseq=2, source=TRUNK), TRUNK)
    (reply,) = finals(out)
    assert reply.status == 200 and direction(sdp_of(reply)) == "sendrecv"
    ack = with_body(
        in_dialog("ACK", reply, cseq=2, source=TRUNK),
        caller_sdp("sendrecv", 3).replace("40000", "41000"),
    )
    h.deliver(ack, TRUNK)
    assert configured(h, CALLER_LEG)[-1].remote == ("127.0.0.1", 41000)


NO_CONNECTION = "v=0\r\no=pbx 1 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"


def test_reoffer_without_a_connection_line_gets_400_and_changes_nothing() -> None:
    h, ok, _ = bridged()
    before = len(h.media.calls)
    out = h.deliver(with_body(in_dialog("INVITE", ok, cseq=2, source=TRUNK), NO_CONNECTION), TRUNK)
    (reply,) = finals(out)
    assert reply.status == 400 and "c= line" in (reply.headers.get("warning") or "")
    assert h.media.calls[before:] == [] and requests(out, "INVITE") == []
    # The dialog takes the next re-INVITE (§14.2: the refused one is over).
    out = h.deliver(
        with_body(in_dialog("INVITE", ok, cseq=3, source=TRUNK), caller_sdp("sendonly", 4)), TRUNK
    )
    assert [r.status for r in finals(out)] == [200]


# -- any sequence of holds from both sides ---------------------------------------------


def _answer_direction(offered: str, holding: bool) -> str:
    """A party's answer: the offer mirrored (RFC 3264 §6.1); a party holding the call
    wants nothing sent to it (§8.4), so it never answers with a receiving direction."""
    sends = offered in ("sendrecv", "recvonly")
    receives = offered in ("sendrecv", "sendonly") and not holding
    if sends:
        return "sendrecv" if receives else "sendonly"
    return "recvonly" if receives else "inactive"


class HoldMachine(RuleBasedStateMachine):
    """The caller and the operator hold and resume in any order; both answer our
    re-INVITEs at once. The pair is bridged exactly when neither holds, the media plane
    sends to a party exactly when it does not hold, and our last re-offer to each party
    says sendonly exactly when the other one holds."""

    def __init__(self) -> None:
        super().__init__()
        self.h, self.ok, self.offer = bridged()
        self.holds = {"caller": False, "operator": False}
        self.cseq = {"caller": 1, "operator": 0}
        self.version = 10
        self.last_offer: dict[str, str] = {}

    def _offer_from(self, party: str, hold: bool) -> list[Message]:
        self.cseq[party] += 1
        self.version += 1
        body = caller_sdp("sendonly" if hold else "sendrecv", self.version)
        if party == "caller":
            request = with_body(
                in_dialog("INVITE", self.ok, cseq=self.cseq[party], source=TRUNK), body
            )
            return self.h.deliver(request, TRUNK)
        body = body.replace("40000", "30000")
        request = phone_request("INVITE", self.offer, cseq=self.cseq[party], body=body)
        return self.h.deliver(request, PHONES["1001"])

    def _answer_ours(self, out: list[Message]) -> None:
        """Answer every re-INVITE of ours 200, as long as answering makes more."""
        for _ in range(6):
            ours = [m for m in requests(out, "INVITE")]
            if not ours:
                return
            out = []
            for reinvite in ours:
                party = "caller" if reinvite.call_id == self.ok.call_id else "operator"
                offered = direction(sdp_of(reinvite))
                self.last_offer[party] = offered
                self.version += 1
                body = caller_sdp(_answer_direction(offered, self.holds[party]), self.version)
                source = TRUNK if party == "caller" else PHONES["1001"]
                out += self.h.deliver(in_dialog_response(reinvite, 200, body), source)
        raise AssertionError("re-INVITEs never settle")

    @rule(party=st.sampled_from(["caller", "operator"]), hold=st.booleans())
    def reoffer(self, party: str, hold: bool) -> None:
        self.holds[party] = hold
        out = self._offer_from(party, hold)
        assert [r.status for r in finals(out)] == [200]
        self._answer_ours(out)

    @invariant()
    def bridged_when_nobody_holds(self) -> None:
        moves = (
            ("bridge", (CALLER_LEG, OPERATOR_LEG)),
            ("unbridge", CALLER_LEG),
            ("unbridge", OPERATOR_LEG),
        )
        pair = [op for op, args in self.h.media.calls if (op, args) in moves]
        assert (pair[-1] == "bridge") == (not any(self.holds.values()))

    @invariant()
    def sending_to_whoever_listens(self) -> None:
        for party, leg in (("caller", CALLER_LEG), ("operator", OPERATOR_LEG)):
            media = configured(self.h, leg)
            if media:
                assert media[-1].sending is not self.holds[party], party

    @invariant()
    def reoffers_say_whether_the_other_holds(self) -> None:
        for party, other in (("caller", "operator"), ("operator", "caller")):
            if party in self.last_offer:
                held = self.last_offer[party] in ("sendonly", "inactive")
                assert held == self.holds[other], (party, self.last_offer[party])


TestHoldSequences = HoldMachine.TestCase
TestHoldSequences.settings = settings(
    max_examples=40, stateful_step_count=8, deadline=None, derandomize=True
)
