"""A hypothesis state machine over call control in virtual time: callers arrive and
hang up, operators' phones ring, answer, refuse, hang up, the network answers our
BYEs and CANCELs, time passes. Whatever the order, nothing leaks: at the end every
media leg is closed, every dialog ended, every call out of the ACD, and no operator is
left offered or on a call."""

from __future__ import annotations

from dataclasses import dataclass, field

from b2bua_harness import ROOT, TRUNK, Harness, in_dialog, make_harness, register
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from phones import PHONES, answer_sdp, queue_call, respond

from acd.operator import OperatorState
from routing.legs import CallerLeg
from server.config import Settings, load_settings
from sip.message import Request, Response

OPERATORS = ("1001", "1002")


@dataclass
class Offer:
    invite: Request
    operator: str
    tag: str
    status: int = 0  # the phone's last response


@dataclass
class World:
    calls: dict[str, Response] = field(default_factory=dict)
    offers: list[Offer] = field(default_factory=list)
    answered: set[tuple[str, str]] = field(default_factory=set)
    seen: int = 0
    counter: int = 0


class CallControl(RuleBasedStateMachine):
    strategy = "longest-idle"

    def __init__(self) -> None:
        super().__init__()
        self.h: Harness = make_harness(with_strategy(self.strategy))
        self.w = World()
        for op in OPERATORS:
            register(self.h, op, f"demo{op}", phone=PHONES[op])
            self.h.advance(0.5)
        self._scan()

    # -- what the switch sent ----------------------------------------------------------

    def _scan(self) -> None:
        """Note new offers; answer the switch's BYEs and CANCELs as a network would."""
        while self.w.seen < len(self.h.sent):
            message, addr = self.h.sent[self.w.seen]
            self.w.seen += 1
            if not isinstance(message, Request):
                continue
            if message.method == "INVITE":
                operator = next(op for op, a in PHONES.items() if a == addr)
                self.w.counter += 1
                self.w.offers.append(Offer(message, operator, f"t{self.w.counter}"))
            elif message.method in ("BYE", "CANCEL"):
                self._ok(message, addr)

    def _ok(self, request: Request, addr: tuple[str, int]) -> None:
        lines = ["SIP/2.0 200 OK"]
        lines += [f"Via: {v}" for v in request.headers.get_all("via")]
        lines += [
            f"From: {request.headers.get('from')}",
            f"To: {request.headers.get('to')}",
            f"Call-ID: {request.call_id}",
            f"CSeq: {request.headers.get('cseq')}",
            "Content-Length: 0",
        ]
        self.h.deliver("\r\n".join(lines) + "\r\n\r\n", addr)
        if request.method == "CANCEL":
            # The phone ends its ringing INVITE too (RFC 3261 §9.2), unless it answered.
            for offer in self.w.offers:
                if offer.invite.call_id == request.call_id and offer.status < 200:
                    self._respond(offer, 487)

    def _respond(self, offer: Offer, status: int) -> None:
        body = answer_sdp() if status == 200 else b""
        respond(self.h, offer.invite, status, tag=offer.tag, operator=offer.operator, body=body)
        offer.status = status
        if status == 200:
            self.w.answered.add((offer.invite.call_id, offer.operator))

    # -- rules ---------------------------------------------------------------------------

    @rule()
    def caller_arrives(self) -> None:
        self.w.counter += 1
        call_id = f"call-{self.w.counter}@pbx"
        self.w.calls[call_id] = queue_call(self.h, call_id)
        self._scan()

    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        if not self.w.calls:
            return
        call_id = data.draw(st.sampled_from(sorted(self.w.calls)))
        ok = self.w.calls.pop(call_id)
        self.h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
        self._scan()

    @rule(data=st.data(), status=st.sampled_from([180, 200, 200, 486, 603, 480]))
    def phone_responds(self, data: st.DataObject, status: int) -> None:
        open_offers = [o for o in self.w.offers if o.status < 200]
        if not open_offers:
            return
        offer = data.draw(st.sampled_from(open_offers))
        self._respond(offer, status)
        self._scan()

    @rule(data=st.data())
    def phone_retransmits_its_answer(self, data: st.DataObject) -> None:
        answered = [o for o in self.w.offers if o.status == 200]
        if answered:
            offer = data.draw(st.sampled_from(answered))
            self._respond(offer, 200)
            self._scan()

    @rule(data=st.data())
    def operator_hangs_up(self, data: st.DataObject) -> None:
        live = [o for o in self.w.offers if (o.invite.call_id, o.operator) in self.w.answered]
        if not live:
            return
        offer = data.draw(st.sampled_from(live))
        self.w.answered.discard((offer.invite.call_id, offer.operator))
        self.w.counter += 1
        source = PHONES[offer.operator]
        self.h.deliver(
            f"BYE sip:centralino@127.0.0.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-pb{self.w.counter}\r\n"
            f"Max-Forwards: 70\r\nFrom: {offer.invite.headers.get('to')};tag={offer.tag}\r\n"
            f"To: {offer.invite.headers.get('from')}\r\nCall-ID: {offer.invite.call_id}\r\n"
            f"CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            source,
        )
        self._scan()

    @rule(seconds=st.sampled_from([0.5, 3.0, 16.0]))
    def time_passes(self, seconds: float) -> None:
        self.h.advance(seconds)
        self._scan()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def media_only_for_live_calls(self) -> None:
        b2bua = self.h.core.b2bua
        for leg in self.h.media.open:
            assert b2bua.calls.by_media_leg(leg) is not None, leg

    @invariant()
    def an_operator_holds_at_most_one_call(self) -> None:
        bridged = [c.bridged_to for c in self._live_calls() if c.bridged_to]
        assert len(bridged) == len(set(bridged))

    def _live_calls(self) -> list[CallerLeg]:
        found = (self.h.core.b2bua.calls.get(cid) for cid in self.w.calls)
        return [call for call in found if call is not None]

    def teardown(self) -> None:
        for call_id in sorted(self.w.calls):
            self.h.deliver(in_dialog("BYE", self.w.calls[call_id], cseq=2, source=TRUNK), TRUNK)
            self._scan()
        for offer in self.w.offers:
            if offer.status < 200:
                self._respond(offer, 487)
        self._scan()
        for _ in range(3):
            self.h.advance(40.0)
            self._scan()
        b2bua = self.h.core.b2bua
        assert self.h.media.open == set()
        assert self.h.core.active_calls() == 0
        assert len(b2bua.dialogs) == 0
        assert b2bua.calls.lingering == 0
        for op in OPERATORS:
            assert b2bua.acd.operator_state(op) in (OperatorState.AVAILABLE, OperatorState.PAUSED)


class RingAllCallControl(CallControl):
    """Every phone rings at once: the races of two answers for one call."""

    strategy = "ring-all"


def with_strategy(strategy: str) -> Settings:
    settings_ = load_settings(ROOT / "config" / "trentino.yaml")
    queues = [q.model_copy(update={"strategy": strategy}) for q in settings_.queues]
    return settings_.model_copy(update={"queues": queues})


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CallControl.TestCase.settings = SETTINGS
RingAllCallControl.TestCase.settings = SETTINGS
TestCallControl = CallControl.TestCase
TestRingAllCallControl = RingAllCallControl.TestCase
