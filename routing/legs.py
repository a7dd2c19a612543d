"""The two kinds of call legs the B2BUA keeps, and the SIP messages it builds for them.

A caller leg is the trunk's INVITE that we answered (we are its UAS); an operator leg is
our INVITE to an operator's registered phone (we are its UAC). Both anchor their media
in our media plane, named `<caller call-id>/caller` and `<caller call-id>/<operator>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ivr.engine import IvrRun
from media.sdp import SessionDescription
from media.session import MediaParams
from routing.media_plane import LegMedia
from sip.dialog import Dialog
from sip.message import Headers, Request
from sip.transaction import Addr, ClientTransactionKey, ServerTransactionKey


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
