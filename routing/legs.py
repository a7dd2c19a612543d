"""The two kinds of call legs the B2BUA keeps, and the SIP messages it builds for them.

A caller leg is the trunk's INVITE that we answered (we are its UAS); an operator leg is
our INVITE to an operator's registered phone (we are its UAC). Both anchor their media
in our media plane, named `<caller call-id>/caller` and `<caller call-id>/<operator>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ivr.engine import IvrRun
from media.sdp import Direction, SdpError, SessionDescription, parse_sdp, serialize_sdp
from media.session import Answer, LocalOrigin, MediaParams, NoCommonCodec, build_offer
from routing.admission import Admitted, admit_invite
from routing.diversion import Redirection
from routing.media_plane import LegMedia
from sip.dialog import Dialog
from sip.endpoint import IncomingRequest
from sip.header_fields import Headers
from sip.message import Request
from sip.transaction import Addr, ClientTransactionKey, ServerTransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua


class Phase(Enum):
    """Where a caller is."""

    IVR = "ivr"
    QUEUED = "queued"
    BRIDGED = "bridged"
    VOICEMAIL = "voicemail"
    ENDED = "ended"


@dataclass(slots=True)
class OperatorLeg:
    """Our INVITE to an operator's phone, offering the caller's call."""

    operator: str
    call_id: str
    media_leg: str
    invite: Request
    key: ClientTransactionKey
    target: Addr
    offer: SessionDescription
    caller_call_id: str
    dialog: Dialog | None = None
    ringing: bool = False
    answered: bool = False
    cancelled: bool = False
    session: Session | None = None
    """Offer/answer state of the answered leg (re-INVITEs, hold)."""


@dataclass(slots=True)
class Session:
    """One leg's offer/answer state across re-INVITEs (RFC 3264 §8)."""

    origin: LocalOrigin
    local_sdp: SessionDescription
    """What we last sent (offer or answer)."""
    params: MediaParams | None = None
    remote_sdp: SessionDescription | None = None
    held: bool = False
    """The peer holds us (its last offer was sendonly, inactive or c=0.0.0.0)."""
    holding: bool = False
    """We told the peer it is held (our re-offer was sendonly or inactive)."""
    pending_offer: SessionDescription | None = None
    """Our offer in a 2xx, whose answer the ACK brings (RFC 3264 §4, delayed offer)."""
    reinvite: Request | None = None
    """Our re-INVITE awaiting its final response."""
    wanted: bool = False
    """A re-INVITE is due once the one in progress ends (RFC 3261 §14.1)."""

    @classmethod
    def starting(cls, local_sdp: SessionDescription) -> Session:
        """The state after our first SDP (`local_sdp` carries our session id)."""
        origin = LocalOrigin(
            session_id=local_sdp.origin.session_id,
            session_version=local_sdp.origin.session_version,
        )
        return cls(origin=origin, local_sdp=origin.stamp(local_sdp))


@dataclass(slots=True)
class CallerLeg:
    """A call from the trunk that we answered."""

    call_id: str
    service: str
    media_leg: str
    invite: Request
    key: ServerTransactionKey
    addr: Addr
    media: MediaParams
    caller: str
    arrived_at: float
    dialog: Dialog | None = None
    ivr: IvrRun | None = None
    phase: Phase = Phase.IVR
    queue: str | None = None
    sub_service: str | None = None
    language: str = "it"
    operator_legs: dict[str, OperatorLeg] = field(default_factory=dict)
    bridged_to: str | None = None
    tag: str | None = None
    session: Session | None = None
    queued_at: float | None = None
    redirection: Redirection | None = None
    """Set for switchboard and ricaduta calls: they skip the IVR for their queue."""
    """The first queue-entry time, kept across transfers back to a queue (Tm)."""


CITIZEN = "~callback"
"""The key of a callback's citizen leg among its call's operator legs (routing.callback)."""


def caller_side(call: CallerLeg) -> CallerLeg | OperatorLeg:
    """The party on the caller's side of `call`: the caller, or for a callback (nobody
    on the caller's line) the citizen we dialed, once they answered."""
    citizen = call.operator_legs.get(CITIZEN)
    return citizen if call.dialog is None and citizen is not None and citizen.answered else call


@dataclass(slots=True)
class Transfer:
    """One blind transfer of a caller, asked by `operator`."""

    call_id: str
    kind: str
    target: str
    operator: str
    leg: OperatorLeg | None = None
    deadline: float | None = None
    connected: bool = False
    given_up: bool = False


class Transfers:
    """Transfers in progress and connected, by caller, target leg Call-ID and key."""

    def __init__(self) -> None:
        self._by_call: dict[str, Transfer] = {}
        self._by_leg: dict[str, Transfer] = {}
        self._by_key: dict[ClientTransactionKey, Transfer] = {}

    def add(self, transfer: Transfer) -> None:
        """Index a transfer (and its target leg, once dialed)."""
        self._by_call[transfer.call_id] = transfer
        if transfer.leg is not None:
            self._by_leg[transfer.leg.call_id] = transfer
            self._by_key[transfer.leg.key] = transfer

    def forget(self, transfer: Transfer) -> None:
        """Drop a transfer (its INVITE key stays while a 2xx may still cross)."""
        if self._by_call.get(transfer.call_id) is transfer:
            del self._by_call[transfer.call_id]
        if transfer.leg is not None:
            self._by_leg.pop(transfer.leg.call_id, None)

    def of_call(self, call_id: str) -> Transfer | None:
        """The caller's transfer."""
        return self._by_call.get(call_id)

    def by_leg_call_id(self, call_id: str) -> Transfer | None:
        """The transfer whose target leg has this Call-ID."""
        return self._by_leg.get(call_id)

    def by_key(self, key: ClientTransactionKey) -> Transfer | None:
        """The transfer whose INVITE this is."""
        return self._by_key.get(key)

    def by_media_leg(self, media_leg: str) -> Transfer | None:
        """The transfer whose target leg has this media leg."""
        return self._by_call.get(media_leg.rsplit("/", 1)[0])

    def connected_leg(self, call_id: str) -> OperatorLeg | None:
        """The target leg the caller is bridged to, if any."""
        found = self._by_call.get(call_id)
        return found.leg if found is not None and found.connected else None

    def due(self, now: float) -> list[Transfer]:
        """Transfers whose target has rung too long."""
        return [t for t in self._by_call.values() if t.deadline is not None and t.deadline <= now]

    def prune(self, alive: Callable[[ClientTransactionKey], bool]) -> None:
        """Forget INVITE keys whose transaction is over (no 2xx can come any more)."""
        for key in [k for k in self._by_key if not alive(k)]:
            del self._by_key[key]

    def get_timer(self) -> float | None:
        """The earliest no-answer deadline."""
        due = [t.deadline for t in self._by_call.values() if t.deadline is not None]
        return min(due) if due else None

    def __len__(self) -> int:
        return len(self._by_call)


def leg_media(params: MediaParams, *, inband_dtmf: bool = False) -> LegMedia:
    """What the media plane needs of a negotiated stream."""
    held = params.on_hold or params.remote_addr in ("0.0.0.0", "::") or not params.remote_port
    return LegMedia(
        codec=params.codec.name,
        payload_type=params.codec.payload_type,
        telephone_event_pt=params.telephone_event_pt,
        remote=None if held else (params.remote_addr, params.remote_port),
        sending=not held and params.direction.sends,
        inband_dtmf=inband_dtmf and params.telephone_event_pt is None,
    )


def caller_identity(call: CallerLeg) -> str:
    """The caller as an operator's phone shows them (From and P-Asserted-Identity)."""
    caller = call.invite.from_
    display = caller.display or call.caller
    return f'"{display}" <{caller.uri}>' if display else f"<{caller.uri}>"


def screen_pop(
    call: CallerLeg, *, callback_number: str | None = None, transferred_by: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Headers a softphone's screen pop can show: service, queue, IVR choice, call id,
    the number a callback will dial once the operator answers, and the operator who
    transferred the call."""
    return (
        ("X-Centralino-Service", call.service),
        ("X-Centralino-Queue", call.queue or ""),
        ("X-Centralino-Choice", call.sub_service or ""),
        ("X-Centralino-Call-Id", call.call_id),
        *((("X-Centralino-Callback", callback_number),) if callback_number else ()),
        *((("X-Centralino-Transferred-By", transferred_by),) if transferred_by else ()),
    )


def operator_invite(
    *,
    target_uri: str,
    local: Addr,
    call_id: str,
    tag: str,
    caller_identity: str,
    screen_pop: tuple[tuple[str, str], ...],
    body: bytes,
    user_agent: str,
) -> Request:
    """The INVITE that offers a call to an operator (RFC 3261 §8.1.1, RFC 3325 PAI)."""
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    headers = Headers.of(
        ("Max-Forwards", "70"),
        ("From", f"{caller_identity};tag={tag}"),
        ("To", f"<{target_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", f"<sip:centralino@{host}:{local[1]}>"),
        ("P-Asserted-Identity", caller_identity),
        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY"),
        ("User-Agent", user_agent),
        *screen_pop,
        ("Content-Type", "application/sdp"),
    )
    return Request("INVITE", target_uri, headers, body)


def answer_trunk_call(b2bua: B2bua, event: IncomingRequest, *, now: float) -> CallerLeg | None:
    """Admit a trunk INVITE and answer it at once with our SDP (RFC 3264 §6), or refuse
    it (404, 415, 406, 400 for unreadable SDP, 488 with no common codec, 503 with no
    RTP port free)."""
    request = event.request
    verdict = admit_invite(request, b2bua.dialplan, b2bua.classifier)
    if not isinstance(verdict, Admitted):
        _refuse(b2bua, event, verdict.status, verdict.headers, now=now)
        return None
    if not request.body:
        return _offering_call(b2bua, event, verdict, now=now)
    try:
        answer = b2bua.open_answer(parse_sdp(request.body), f"{request.call_id}/caller")
    except SdpError as exc:
        text = f'399 centralino "unreadable SDP: {exc}"'.replace("\\", "")
        _refuse(b2bua, event, 400, (("Warning", text),), now=now)
        return None
    if answer is None:
        # §21.5.4: overloaded for now (no RTP port free); the trunk may retry elsewhere.
        _refuse(b2bua, event, 503, (("Retry-After", "5"),), now=now)
        return None
    if isinstance(answer, NoCommonCodec):
        _refuse(b2bua, event, 488, (("Warning", answer.warning),), now=now)
        return None
    return _answered_call(b2bua, event, verdict, answer, now=now)


def _refuse(
    b2bua: B2bua,
    event: IncomingRequest,
    status: int,
    extra: tuple[tuple[str, str], ...],
    *,
    now: float,
) -> None:
    b2bua.endpoint.reply(event.request, event.key, event.addr, status, now=now, extra=extra)


def _caller_leg(
    b2bua: B2bua, event: IncomingRequest, verdict: Admitted, media: MediaParams, *, now: float
) -> CallerLeg:
    request = event.request
    return CallerLeg(
        call_id=request.call_id,
        service=verdict.service,
        media_leg=f"{request.call_id}/caller",
        invite=request,
        key=event.key,
        addr=event.addr,
        media=media,
        caller=str(request.from_.uri.user or ""),
        arrived_at=now,
        tag=b2bua.ids.tag(),
        redirection=verdict.redirection,
    )


def _answered_call(
    b2bua: B2bua, event: IncomingRequest, verdict: Admitted, answer: Answer, *, now: float
) -> CallerLeg:
    call = _caller_leg(b2bua, event, verdict, answer.media, now=now)
    call.session = Session.starting(answer.sdp)
    call.session.params, call.session.remote_sdp = answer.media, parse_sdp(event.request.body)
    call.session.held = answer.media.on_hold
    inband = b2bua.config.inband_dtmf(event.addr[0])
    b2bua.media.configure_leg(call.media_leg, leg_media(answer.media, inband_dtmf=inband))
    _send_ok(b2bua, event, call, call.session.local_sdp, now=now)
    return call


def _offering_call(
    b2bua: B2bua, event: IncomingRequest, verdict: Admitted, *, now: float
) -> CallerLeg | None:
    """An INVITE without SDP (RFC 3261 §13.2.1, RFC 3264 §4): our offer goes in the 200
    and the answer comes in the ACK; media and the IVR wait for it."""
    local = b2bua.open_leg(f"{event.request.call_id}/caller")
    if local is None:
        _refuse(b2bua, event, 503, (("Retry-After", "5"),), now=now)
        return None
    codecs = b2bua.config.codecs
    offer = build_offer(
        codecs=codecs, local_addr=local[0], local_port=local[1], session_id=b2bua.next_session()
    )
    placeholder = MediaParams(
        codec=codecs[0],
        receive_payload_type=codecs[0].payload_type,
        telephone_event_pt=None,
        receive_telephone_event_pt=None,
        remote_addr="0.0.0.0",
        remote_port=0,
        direction=Direction.INACTIVE,
        on_hold=True,
    )
    call = _caller_leg(b2bua, event, verdict, placeholder, now=now)
    call.session = Session.starting(offer)
    call.session.pending_offer = call.session.local_sdp
    _send_ok(b2bua, event, call, call.session.local_sdp, now=now)
    return call


def _send_ok(
    b2bua: B2bua,
    event: IncomingRequest,
    call: CallerLeg,
    sdp: SessionDescription,
    *,
    now: float,
) -> None:
    extra = (
        ("Contact", b2bua.contact()),
        *b2bua.endpoint.capabilities()[:1],
        ("Content-Type", "application/sdp"),
    )
    request, body = event.request, serialize_sdp(sdp)
    response = b2bua.endpoint.reply(
        request, event.key, event.addr, 200, now=now, to_tag=call.tag, extra=extra, body=body
    )
    call.dialog = b2bua.dialogs.response_sent(request, response)
