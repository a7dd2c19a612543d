"""Hold and unhold in a callback conversation: the citizen's leg (dialed through the
trunk) is held and resumed as an ordinary caller's is (RFC 3264 §8.4, RFC 3261 §14)."""

from __future__ import annotations

from b2bua_harness import PHONE, TRUNK, Harness, answer_request
from callback_peers import (
    ANSWER_SDP,
    ask_callback,
    callback_harness,
    operator_answers,
    peer_request,
    reply_in_dialog,
    requests,
    talking,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from media.sdp import SessionDescription, parse_sdp
from routing.media_plane import LegMedia
from sip.message import Message, Request, Response

CITIZEN_LEG, OPERATOR_LEG = "call-1@pbx/callback", "call-1@pbx/1001"
MUSIC = ("music-on-hold",)


def sdp(direction: str, version: int, port: int) -> str:
    """A phone's SDP (PCMU, telephone-event) with a direction and an o= version."""
    return (
        f"v=0\r\no=peer 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
        f"a={direction}\r\n"
    )


def direction(message: Message) -> str:
    described: SessionDescription = parse_sdp(message.body)
    return str(described.direction_for(described.media[0]))


def finals(messages: list[Message]) -> list[Response]:
    return [m for m in messages if isinstance(m, Response) and m.status >= 200]


def configured(h: Harness, leg: str) -> list[LegMedia]:
    return [a[1] for op, a in h.media.calls if op == "configure" and a[0] == leg]  # type: ignore[index]


def from_operator(h: Harness, offer: Request, hold: bool, cseq: int) -> list[Message]:
    body = sdp("sendonly" if hold else "sendrecv", 10 + cseq, 30000).encode()
    return h.deliver(
        peer_request("INVITE", offer, tag="op1", source=PHONE, cseq=cseq, body=body), PHONE
    )


def from_citizen(h: Harness, dial: Request, hold: bool, cseq: int) -> list[Message]:
    body = sdp("sendonly" if hold else "sendrecv", 10 + cseq, 30000).encode()
    return h.deliver(
        peer_request("INVITE", dial, tag="cit", source=TRUNK, cseq=cseq, body=body), TRUNK
    )


def test_operator_hold_plays_music_to_the_citizen_and_reoffers_through_the_trunk() -> None:
    h, _ = callback_harness()
    offer, dial = talking(h)
    before = len(h.media.calls)
    out = from_operator(h, offer, True, cseq=1)
    assert [(r.status, direction(r)) for r in finals(out)] == [(200, "recvonly")]
    changes = h.media.calls[before:]
    assert ("unbridge", OPERATOR_LEG) in changes
    assert ("play", (CITIZEN_LEG, MUSIC, "it", 0, True)) in changes
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == dial.call_id and reoffer.cseq.seq == 2
    assert direction(reoffer) == "sendonly"
    assert [a for m, a in h.sent if m is reoffer] == [TRUNK]
    out = h.deliver(reply_in_dialog(reoffer, 200, sdp("recvonly", 2, 31000)), TRUNK)
    assert [(a.call_id, a.cseq.seq) for a in requests(out, "ACK")] == [(dial.call_id, 2)]
    assert configured(h, CITIZEN_LEG)[-1].remote == ("127.0.0.1", 31000)
    # Unhold: the pair is bridged again and the citizen is taken off hold.
    before = len(h.media.calls)
    out = from_operator(h, offer, False, cseq=2)
    assert ("bridge", (CITIZEN_LEG, OPERATOR_LEG)) in h.media.calls[before:]
    (resume,) = requests(out, "INVITE")
    assert resume.call_id == dial.call_id and direction(resume) == "sendrecv"


def test_citizen_hold_plays_music_to_the_operator() -> None:
    h, _ = callback_harness()
    offer, dial = talking(h)
    before = len(h.media.calls)
    out = from_citizen(h, dial, True, cseq=1)
    assert [(r.status, direction(r)) for r in finals(out)] == [(200, "recvonly")]
    assert configured(h, CITIZEN_LEG)[-1].sending is False
    changes = h.media.calls[before:]
    assert ("unbridge", CITIZEN_LEG) in changes
    assert ("play", (OPERATOR_LEG, MUSIC, "it", 0, True)) in changes
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == offer.call_id and direction(reoffer) == "sendonly"
    assert [a for m, a in h.sent if m is reoffer] == [PHONE]
    h.deliver(reply_in_dialog(reoffer, 200, sdp("recvonly", 3, 30000)), PHONE)
    before = len(h.media.calls)
    out = from_citizen(h, dial, False, cseq=2)
    assert ("bridge", (CITIZEN_LEG, OPERATOR_LEG)) in h.media.calls[before:]
    (resume,) = requests(out, "INVITE")
    assert resume.call_id == offer.call_id and direction(resume) == "sendrecv"


def test_an_operator_holding_while_the_citizen_rings_gives_them_music_on_answer() -> None:
    h, _ = callback_harness()
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    out = from_operator(h, offer, True, cseq=1)
    assert [r.status for r in finals(out)] == [200]
    assert requests(out, "INVITE") == []  # nobody to tell yet
    before = len(h.media.calls)
    out = h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    assert [a.call_id for a in requests(out, "ACK")] == [dial.call_id]
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == dial.call_id and direction(reoffer) == "sendonly"
    changes = h.media.calls[before:]
    assert ("play", (CITIZEN_LEG, MUSIC, "it", 0, True)) in changes
    moves = [op for op, _ in changes if op in ("bridge", "unbridge")]
    assert moves[-1] == "unbridge"


# -- any sequence of holds from both sides ---------------------------------------------


def answer_direction(offered: str, holding: bool) -> str:
    """A party's answer: the offer mirrored (RFC 3264 §6.1), never receiving while it
    holds the call itself (§8.4)."""
    sends = offered in ("sendrecv", "recvonly")
    receives = offered in ("sendrecv", "sendonly") and not holding
    if sends:
        return "sendrecv" if receives else "sendonly"
    return "recvonly" if receives else "inactive"


class CallbackHoldMachine(RuleBasedStateMachine):
    """The citizen and the operator hold and resume in any order, answering our
    re-INVITEs at once: the pair is bridged exactly when neither holds, the media plane
    sends to a party exactly when it does not hold, and our last re-offer to each says
    sendonly exactly when the other one holds (as for a caller, test_b2bua_hold)."""

    def __init__(self) -> None:
        super().__init__()
        self.h, _ = callback_harness()
        self.offer, self.dial = talking(self.h)
        self.holds = {"citizen": False, "operator": False}
        self.cseq = {"citizen": 0, "operator": 0}
        self.version = 10
        self.last_offer: dict[str, str] = {}

    def _source(self, party: str) -> tuple[str, int]:
        return TRUNK if party == "citizen" else PHONE

    def _answer_ours(self, out: list[Message]) -> None:
        for _ in range(6):
            ours = requests(out, "INVITE")
            if not ours:
                return
            out = []
            for reinvite in ours:
                party = "citizen" if reinvite.call_id == self.dial.call_id else "operator"
                self.last_offer[party] = direction(reinvite)
                self.version += 1
                answer = answer_direction(self.last_offer[party], self.holds[party])
                body = sdp(answer, self.version, 30000)
                out += self.h.deliver(reply_in_dialog(reinvite, 200, body), self._source(party))
        raise AssertionError("re-INVITEs never settle")

    @rule(party=st.sampled_from(["citizen", "operator"]), hold=st.booleans())
    def reoffer(self, party: str, hold: bool) -> None:
        self.holds[party] = hold
        self.cseq[party] += 1
        sender = from_citizen if party == "citizen" else from_operator
        ours = self.dial if party == "citizen" else self.offer
        out = sender(self.h, ours, hold, self.cseq[party])
        assert [r.status for r in finals(out)] == [200]
        self._answer_ours(out)

    @invariant()
    def bridged_when_nobody_holds(self) -> None:
        moves = (
            ("bridge", (CITIZEN_LEG, OPERATOR_LEG)),
            ("unbridge", CITIZEN_LEG),
            ("unbridge", OPERATOR_LEG),
        )
        pair = [op for op, args in self.h.media.calls if (op, args) in moves]
        assert (pair[-1] == "bridge") == (not any(self.holds.values()))

    @invariant()
    def sending_to_whoever_listens(self) -> None:
        for party, leg in (("citizen", CITIZEN_LEG), ("operator", OPERATOR_LEG)):
            assert configured(self.h, leg)[-1].sending is not self.holds[party], party

    @invariant()
    def reoffers_say_whether_the_other_holds(self) -> None:
        for party, other in (("citizen", "operator"), ("operator", "citizen")):
            if party in self.last_offer:
                held = self.last_offer[party] in ("sendonly", "inactive")
                assert held == self.holds[other], (party, self.last_offer[party])


TestCallbackHoldSequences = CallbackHoldMachine.TestCase
TestCallbackHoldSequences.settings = settings(
    max_examples=30, stateful_step_count=8, deadline=None, derandomize=True
)
