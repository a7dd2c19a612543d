"""The two kinds of call legs the B2BUA keeps, and the SIP messages it builds for them.

A caller leg is the trunk's INVITE that we answered (we are its UAS); an operator leg is
our INVITE to an operator's registered phone (we are its UAC). Both anchor their media
in our media plane, named `<caller call-id>/caller` and `<caller call-id>/<operator>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ivr.engine import IvrRun
from media.sdp import SdpError, SessionDescription, parse_sdp, serialize_sdp
from media.session import Answer, MediaParams, NoCommonCodec
from routing.admission import Admitted, admit_invite
from routing.media_plane import LegMedia
from sip.dialog import Dialog
from sip.endpoint import IncomingRequest
from sip.message import Headers, Request
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
    verdict = admit_invite(request, b2bua.dialplan)
    if not isinstance(verdict, Admitted):
        _refuse(b2bua, event, verdict.status, verdict.headers, now=now)
        return None
    try:
        offer = parse_sdp(request.body)
    except SdpError as exc:
        text = f'399 centralino "unreadable SDP: {exc}"'.replace("\\", "")
        _refuse(b2bua, event, 400, (("Warning", text),), now=now)
        return None
    answer = b2bua.open_answer(offer, f"{request.call_id}/caller")
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


def _answered_call(
    b2bua: B2bua, event: IncomingRequest, verdict: Admitted, answer: Answer, *, now: float
) -> CallerLeg:
    request, addr = event.request, event.addr
    call = CallerLeg(
        call_id=request.call_id,
        service=verdict.service,
        media_leg=f"{request.call_id}/caller",
        invite=request,
        key=event.key,
        addr=addr,
        media=answer.media,
        caller=str(request.from_.uri.user or ""),
        arrived_at=now,
        tag=b2bua.ids.tag(),
    )
    inband = b2bua.config.inband_dtmf(addr[0])
    b2bua.media.configure_leg(call.media_leg, leg_media(answer.media, inband_dtmf=inband))
    extra = (
        ("Contact", b2bua.contact()),
        *b2bua.endpoint.capabilities()[:1],
        ("Content-Type", "application/sdp"),
    )
    body = serialize_sdp(answer.sdp)
    response = b2bua.endpoint.reply(
        request, event.key, addr, 200, now=now, to_tag=call.tag, extra=extra, body=body
    )
    call.dialog = b2bua.dialogs.response_sent(request, response)
    return call
