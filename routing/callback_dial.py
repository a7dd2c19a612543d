"""Callbacks, step 3 (`routing.callback` has steps 1 and 2): the operator answered the
callback offer, so the switch dials the citizen.

`PlaceCallback` INVITEs the number through the trunk (RFC 3261 §13.2.1, with Expires,
§20.19), or to the address the call came from; its 2xx is ACKed and bridged to the
operator and `callback_answered` starts the conversation; a refusal, the ring timeout
(`CallbackDesk.ring_timeout`) or an operator who hangs up first is `callback_failed`:
the operator is hung up and freed, and the engine offers the call again after its retry
delay, up to its attempts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from acd import events as ac
from acd.errors import AcdError
from media.sdp import SdpError, parse_sdp, serialize_sdp
from media.session import MediaParams, NoCommonCodec, build_offer, read_answer
from routing import (
    acd_glue,  # a cycle: acd_glue dispatches here, this releases legs there
    callback,
    reinvite,
)
from routing.legs import CITIZEN, CallerLeg, OperatorLeg, Phase, leg_media
from sip import events as tx
from sip.header_fields import Headers
from sip.message import Request
from sip.transaction import Addr

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)


# -- dialing the citizen -------------------------------------------------------------------


def place(b2bua: B2bua, command: ac.PlaceCallback, *, now: float) -> None:
    """The operator answered a callback offer: INVITE the number through the trunk."""
    call = b2bua.calls.get(command.call_id)
    if call is None:
        log.warning("callback %s: no call to place", command.call_id)
        return
    local = b2bua.open_leg(call.media_leg)
    if local is None:
        fail(b2bua, call, now=now)
        return
    sdp = build_offer(
        codecs=list(b2bua.config.codecs), local_addr=local[0], local_port=local[1],
        session_id=b2bua.next_session(),
    )  # fmt: skip
    book = callback.desk(b2bua)
    target = book.trunk or call.addr
    invite = citizen_invite(b2bua, call, command.number, target, serialize_sdp(sdp))
    key = b2bua.endpoint.send_request(invite, target, now=now)
    leg = OperatorLeg(
        operator=CITIZEN, call_id=invite.call_id, media_leg=call.media_leg, invite=invite,
        key=key, target=target, offer=sdp, caller_call_id=call.call_id,
    )  # fmt: skip
    b2bua.calls.add_leg(call, leg)
    book.dialing[call.call_id] = now + book.ring_timeout


def citizen_invite(
    b2bua: B2bua, call: CallerLeg, number: str, target: Addr, body: bytes
) -> Request:
    """The INVITE to the citizen, from the number they called (RFC 3261 §8.1.1, RFC 3325)."""
    host, port = b2bua.config.local
    host = f"[{host}]" if ":" in host else host
    trunk = f"[{target[0]}]" if ":" in target[0] else target[0]
    uri = f"sip:{number}@{trunk}:{target[1]}"
    service_number = call.invite.to.uri.user or "centralino"
    identity = f"<sip:{service_number}@{host}>"
    headers = Headers.of(
        ("Max-Forwards", "70"),
        ("From", f"{identity};tag={b2bua.ids.tag()}"),
        ("To", f"<{uri}>"),
        ("Call-ID", b2bua.ids.call_id()),
        ("CSeq", "1 INVITE"),
        ("Contact", f"<sip:centralino@{host}:{port}>"),
        ("P-Asserted-Identity", identity),
        ("Expires", str(round(callback.desk(b2bua).ring_timeout))),
        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"),
        ("User-Agent", b2bua.config.user_agent),
        ("Content-Type", "application/sdp"),
    )
    return Request("INVITE", uri, headers, body)


def response(
    b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, event: tx.ResponseReceived, *, now: float
) -> None:
    """A response to the citizen's INVITE."""
    status = event.response.status
    if status < 200:
        return
    if status >= 300:
        b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
        _drop_citizen(b2bua, call, leg)
        fail(b2bua, call, now=now)
        return
    dialog = b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
    if dialog is None:
        return
    b2bua.endpoint.send_request(dialog.create_ack(event.response.cseq.seq), leg.target, now=now)
    if leg.dialog is not None:
        if dialog is not leg.dialog:  # §13.2.2.4: one dialog only
            b2bua.send_bye(dialog, leg.target, now=now)
        return
    leg.dialog = dialog
    params = _answer_media(leg, event)
    if params is None:
        b2bua.send_bye(dialog, leg.target, now=now)
        leg.dialog = None
        _drop_citizen(b2bua, call, leg)
        fail(b2bua, call, now=now)
        return
    _connect(b2bua, call, leg, params, now=now)


def _connect(
    b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, params: MediaParams, *, now: float
) -> None:
    leg.answered = True
    callback.desk(b2bua).dialing.pop(call.call_id, None)
    inband = b2bua.config.inband_dtmf(leg.target[0])
    b2bua.media.configure_leg(call.media_leg, leg_media(params, inband_dtmf=inband))
    operator = call.operator_legs.get(call.bridged_to or "")
    if operator is not None:
        b2bua.media.stop_playback(operator.media_leg)
        b2bua.media.bridge(call.media_leg, operator.media_leg)
    call.phase = Phase.BRIDGED
    b2bua.acd.callback_answered(call.call_id, now=now)
    if operator is not None and operator.session is not None and operator.session.held:
        # The operator put the call on hold while the phone rang: music for the citizen.
        reinvite.hold_changed(b2bua, call, operator, now=now)


def _answer_media(leg: OperatorLeg, event: tx.ResponseReceived) -> MediaParams | None:
    try:
        params = read_answer(leg.offer, parse_sdp(event.response.body))
    except SdpError as exc:
        log.warning("callback %s answered with unreadable SDP: %s", leg.caller_call_id, exc)
        return None
    return None if isinstance(params, NoCommonCodec) else params


def failed(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, *, now: float) -> None:
    """The citizen's INVITE timed out or could not be sent."""
    _drop_citizen(b2bua, call, leg)
    fail(b2bua, call, now=now)


def _drop_citizen(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg) -> None:
    b2bua.calls.remove_leg(call, leg)
    b2bua.media.close_leg(leg.media_leg)


def fail(b2bua: B2bua, call: CallerLeg, *, now: float) -> None:
    """This attempt is over: the engine frees the operator (and retries later), the
    operator's phone is hung up, and the record waits for the next offer."""
    callback.desk(b2bua).dialing.pop(call.call_id, None)
    try:
        b2bua.acd.callback_failed(call.call_id, now=now)
    except AcdError as exc:
        log.warning("callback %s: %s", call.call_id, exc)
    for leg in list(call.operator_legs.values()):
        acd_glue.release_leg(b2bua, call, leg, now=now)
    b2bua.media.close_leg(call.media_leg)
    call.phase = Phase.ENDED
    b2bua.calls.remove(call)


# -- timers ---------------------------------------------------------------------------------


def get_timer(b2bua: B2bua) -> float | None:
    """When a citizen's phone has rung long enough."""
    dialing = callback.desk(b2bua).dialing
    return min(dialing.values()) if dialing else None


def handle_timer(b2bua: B2bua, *, now: float) -> None:
    """Give up on citizens who did not answer in time: CANCEL (§9.1), then fail."""
    book = callback.desk(b2bua)
    for call_id in [c for c, at in book.dialing.items() if at <= now]:
        del book.dialing[call_id]
        call = b2bua.calls.get(call_id)
        leg = None if call is None else call.operator_legs.get(CITIZEN)
        if call is not None and leg is not None and leg.dialog is None:
            log.info("callback %s: no answer from the citizen", call_id)  # no number
            acd_glue.release_leg(b2bua, call, leg, now=now)
            fail(b2bua, call, now=now)
