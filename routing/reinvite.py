"""Re-INVITEs on an established call: hold, unhold and session refreshes (RFC 3264 §8).

A re-INVITE from either party is answered from our own SDP (same port, the offer's
direction mirrored, RFC 3264 §6.1; our o= version bumped only when the body changes,
§8), the leg's media is reconfigured, and the other party gets a matching re-INVITE of
ours through its own dialog. What an Asterisk user expects on hold: the held party
hears music on hold (our re-offer to it is `sendonly`: we send the music, it need not
send), the holder hears nothing, and unhold bridges them again (our re-offer goes back
to `sendrecv`). With `hold_music` off the held party gets `inactive` and silence.

Our re-INVITE waits while another INVITE is in progress in its dialog (§14.1) and is
retried after a 491 when the dialog's glare timer fires (`ReinviteRetryDue`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from media.sdp import (
    Attribute,
    Direction,
    SdpError,
    SessionDescription,
    parse_sdp,
    serialize_sdp,
)
from media.session import MediaParams, NoCommonCodec, is_refresh, negotiate, read_answer
from routing import ivr_glue  # by module: ivr_glue imports this cycle back through callback
from routing.legs import (
    CITIZEN,
    CallerLeg,
    OperatorLeg,
    Phase,
    Session,
    caller_side,
    leg_media,
)
from sip import events as tx
from sip.dialog import ReinviteRetryDue
from sip.endpoint import IncomingRequest
from sip.message import Request
from sip.transaction import Addr

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

Leg = CallerLeg | OperatorLeg
_DIRECTIONS = frozenset(d.value for d in Direction)
SDP = (("Content-Type", "application/sdp"),)


def with_direction(sdp: SessionDescription, direction: Direction) -> SessionDescription:
    """The same description with every stream's direction attribute set (RFC 3264 §8.4)."""
    media = tuple(
        replace(
            m,
            attributes=(
                *(a for a in m.attributes if a.name not in _DIRECTIONS),
                Attribute(name=direction.value),
            ),
        )
        for m in sdp.media
    )
    return replace(sdp, media=media)


def session_of(leg: Leg) -> Session:
    """The leg's offer/answer state; an operator leg's starts from our first offer."""
    if leg.session is None:
        assert isinstance(leg, OperatorLeg)  # a caller leg gets one when answered
        leg.session = Session.starting(leg.offer)
    return leg.session


def addr_of(leg: Leg) -> Addr:
    """Where the leg's peer is reached."""
    return leg.addr if isinstance(leg, CallerLeg) else leg.target


def peer_of(b2bua: B2bua, call: CallerLeg, leg: Leg) -> Leg | None:
    """The party bridged to `leg`: on one side the caller (for a callback, the citizen
    once they answered), on the other an operator or a transfer target."""
    if call.phase is not Phase.BRIDGED:
        return None
    other = b2bua.transfers.connected_leg(call.call_id)
    if other is None and call.bridged_to is not None:
        other = call.operator_legs.get(call.bridged_to)
    caller = caller_side(call)
    if caller is call and call.dialog is None:
        return None  # a callback whose citizen has not answered yet: nobody to tell
    if leg is caller:
        return other
    return caller if leg is other else None


# -- a re-INVITE from a party -------------------------------------------------------------


def received(
    b2bua: B2bua, event: IncomingRequest, call: CallerLeg, leg: Leg, *, now: float
) -> None:
    """Answer a re-INVITE on `leg` (RFC 3261 §14.2) and pass a hold change on."""
    session = session_of(leg)
    if not event.request.body:
        # §14.2 with no offer: ours goes in the 200, the answer comes in the ACK.
        session.pending_offer = session.origin.stamp(
            with_direction(session.local_sdp, _ours(b2bua, session))
        )
        _reply(b2bua, event, 200, now=now, body=serialize_sdp(session.pending_offer))
        return
    try:
        offer = parse_sdp(event.request.body)
    except SdpError as exc:
        _reply(b2bua, event, 400, now=now, extra=_warning(exc))
        return
    if is_refresh(session.remote_sdp, offer):
        _reply(b2bua, event, 200, now=now, body=serialize_sdp(session.local_sdp))
        return
    _answer(b2bua, event, call, leg, offer, now=now)


def _answer(
    b2bua: B2bua,
    event: IncomingRequest,
    call: CallerLeg,
    leg: Leg,
    offer: SessionDescription,
    *,
    now: float,
) -> None:
    session = session_of(leg)
    local = session.local_sdp
    try:
        answer = negotiate(
            offer,
            supported=b2bua.config.codecs,
            preference=b2bua.config.preference,
            local_addr=local.connection.address if local.connection else b2bua.config.local[0],
            local_port=local.media[0].port,
            session_id=session.origin.session_id,
            direction=_ours(b2bua, session),
        )
    except SdpError as exc:  # e.g. no c= line for the stream
        _reply(b2bua, event, 400, now=now, extra=_warning(exc))
        return
    if isinstance(answer, NoCommonCodec):
        # §14.2: a refused re-offer leaves the session as it was.
        _reply(b2bua, event, 488, now=now, extra=(("Warning", answer.warning),))
        return
    session.local_sdp = session.origin.stamp(answer.sdp)
    session.remote_sdp, session.params = offer, answer.media
    _reply(b2bua, event, 200, now=now, body=serialize_sdp(session.local_sdp))
    configure(b2bua, leg, answer.media)
    if answer.media.on_hold != session.held:
        session.held = answer.media.on_hold
        hold_changed(b2bua, call, leg, now=now)


def _warning(exc: SdpError) -> tuple[tuple[str, str]]:
    """A Warning header (RFC 3261 §20.43) safe to send whatever the parser quoted."""
    text = "".join(c for c in str(exc) if c.isprintable() and c not in '"\\')
    return (("Warning", f'399 centralino "{text[:120]}"'),)


def _ours(b2bua: B2bua, session: Session) -> Direction:
    """Our own direction on a leg: limited while we hold its party (§6.1)."""
    if not session.holding:
        return Direction.SENDRECV
    return Direction.SENDONLY if b2bua.config.hold_music else Direction.INACTIVE


def configure(b2bua: B2bua, leg: Leg, params: MediaParams) -> None:
    """Give the media plane a leg's newly negotiated stream."""
    callers = isinstance(leg, CallerLeg) or leg.operator == CITIZEN
    inband = callers and b2bua.config.inband_dtmf(addr_of(leg)[0])
    b2bua.media.configure_leg(leg.media_leg, leg_media(params, inband_dtmf=inband))


def _reply(
    b2bua: B2bua,
    event: IncomingRequest,
    status: int,
    *,
    now: float,
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    request = event.request
    headers = (("Contact", b2bua.contact()), *extra, *(SDP if body else ()))
    response = b2bua.endpoint.reply(
        request, event.key, event.addr, status, now=now, extra=headers, body=body
    )
    # §14.2: the answered re-INVITE is over; the next one must not get a 500.
    b2bua.dialogs.response_sent(request, response)


def hold_changed(b2bua: B2bua, call: CallerLeg, leg: Leg, *, now: float) -> None:
    """`leg`'s party put the call on hold or took it off: the other party hears music
    (or silence) while held, and is told with our re-INVITE."""
    peer = peer_of(b2bua, call, leg)
    if peer is None:
        return
    if session_of(leg).held:
        b2bua.media.unbridge(leg.media_leg)
        if b2bua.config.hold_music:
            b2bua.media.play(
                peer.media_leg,
                (ivr_glue.MUSIC_ON_HOLD,),
                language=call.language,
                play_id=0,
                loop=True,
            )
        reoffer(b2bua, call, peer, holding=True, now=now)
    else:
        if not session_of(peer).held:
            caller, other = (leg, peer) if leg is caller_side(call) else (peer, leg)
            b2bua.media.bridge(caller.media_leg, other.media_leg)
        reoffer(b2bua, call, peer, holding=False, now=now)


# -- our re-INVITE ------------------------------------------------------------------------


def reoffer(b2bua: B2bua, call: CallerLeg, leg: Leg, *, holding: bool, now: float) -> None:
    """Send `leg`'s party our re-offer: held (sendonly or inactive) or not (sendrecv)."""
    session = session_of(leg)
    session.holding = holding
    dialog = leg.dialog
    if dialog is None:
        return
    if session.reinvite is not None or dialog.invite_pending or dialog.remote_invite_pending:
        session.wanted = True  # §14.1: one INVITE at a time in a dialog
        return
    session.wanted = False
    sdp = session.origin.stamp(with_direction(session.local_sdp, _ours(b2bua, session)))
    session.local_sdp = sdp
    invite = dialog.create_request("INVITE", body=serialize_sdp(sdp), extra=SDP)
    session.reinvite = invite
    key = b2bua.endpoint.send_request(invite, addr_of(leg), now=now)
    b2bua.reinvites[key] = (call.call_id, leg)


def response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> bool:
    """A response to one of our re-INVITEs; False when the key is not one of them."""
    found = b2bua.reinvites.get(event.key)
    if found is None:
        return False
    if event.response.status < 200:
        return True
    del b2bua.reinvites[event.key]
    call_id, leg = found
    session = session_of(leg)
    invite, session.reinvite = session.reinvite, None
    if invite is None or leg.dialog is None:
        return True
    b2bua.dialogs.receive_response(invite, event.response, now=now)
    if 200 <= event.response.status < 300:
        ack = leg.dialog.create_ack(event.response.cseq.seq)
        b2bua.endpoint.send_request(ack, addr_of(leg), now=now)
        _read_answer(b2bua, leg, invite, event.response.body)
    elif event.response.status == 491:
        b2bua.glare[leg.dialog.id] = (call_id, leg)
    _again(b2bua, call_id, leg, now=now)
    return True


def _read_answer(b2bua: B2bua, leg: Leg, offer_request: Request, body: bytes) -> None:
    try:
        params = read_answer(parse_sdp(offer_request.body), parse_sdp(body))
    except SdpError as exc:
        log.warning("unreadable answer to our re-INVITE on %s: %s", leg.media_leg, exc)
        return
    if isinstance(params, NoCommonCodec):
        log.warning("no common codec in the answer to our re-INVITE on %s", leg.media_leg)
        return
    session_of(leg).params = params
    configure(b2bua, leg, params)


def _again(b2bua: B2bua, call_id: str, leg: Leg, *, now: float) -> None:
    call = b2bua.calls.get(call_id)
    session = session_of(leg)
    if call is not None and session.wanted:
        reoffer(b2bua, call, leg, holding=session.holding, now=now)


def retry_due(b2bua: B2bua, event: ReinviteRetryDue, *, now: float) -> None:
    """§14.1: the glare back-off is over: send our re-INVITE again."""
    found = b2bua.glare.pop(event.dialog_id, None)
    call = b2bua.calls.get(found[0]) if found else None
    if found is not None and call is not None:
        reoffer(b2bua, call, found[1], holding=session_of(found[1]).holding, now=now)


def ack_answer(b2bua: B2bua, leg: Leg, ack: Request) -> bool | None:
    """The ACK of a 2xx carrying our offer brings the answer (RFC 3264 §4): True once
    the leg's media is configured, False when it is missing or unusable, None when we
    awaited no answer."""
    session = leg.session
    if session is None or session.pending_offer is None:
        return None
    offer, session.pending_offer = session.pending_offer, None
    try:
        params = read_answer(offer, parse_sdp(ack.body)) if ack.body else None
    except SdpError as exc:
        log.warning("unreadable SDP in the ACK on %s: %s", leg.media_leg, exc)
        params = None
    if params is None or isinstance(params, NoCommonCodec):
        return False
    session.params, session.remote_sdp, session.held = params, parse_sdp(ack.body), params.on_hold
    if isinstance(leg, CallerLeg):
        leg.media = params
    configure(b2bua, leg, params)
    return True
