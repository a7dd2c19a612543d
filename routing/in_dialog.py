"""Requests on an established call, routed to the leg and module they belong to.

A request inside a dialog is matched to its dialog first (RFC 3261 §12.2.2): an
unknown dialog is answered 481 (a BYE or INFO without a To tag among them), a CSeq out
of order 500, a re-INVITE in glare 491 or 500 with Retry-After (§14.2). Its Call-ID
then names the call and the leg it came on: the caller's, an operator's, a callback
citizen's, a transfer target's (`locate`).

- BYE (§15.1.2) is answered 200 and ends that party's part: the caller's (or a callback
  citizen's) ends the call, an operator's hangs up the caller, and so does a transfer
  target's (`routing.transfer_target`); a transferring operator's before the target
  answers leaves the transfer going (`routing.transfer`); a consultation's is handled
  in `routing.attended`.
- INFO carries the caller's DTMF to its IVR (`routing.ivr_glue`).
- re-INVITEs (hold, unhold, refreshes, RFC 3264 §8) are answered and passed to the
  other party in `routing.reinvite`.
- REFER from an operator's phone is a blind transfer (RFC 3515, `routing.transfer`),
  or an attended one with `Replaces` (RFC 3891, `routing.attended`).
- Re-INVITEs of feature calls get 488 and NOTIFYs out of any subscription of ours 501.

The ACK of our 2xx to the caller's INVITE may carry the SDP answer to the offer we
made in that 2xx (RFC 3264 §4), which starts the IVR; a CANCEL of the caller's INVITE
ends the call before it started (§9.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing import (
    attended,
    callback,
    feature_codes_glue,
    ivr_glue,
    reinvite,
    transfer,
    transfer_target,
)
from routing.legs import CallerLeg, OperatorLeg, Phase
from sip import events as tx
from sip.dialog import Dialog
from sip.endpoint import IncomingRequest

if TYPE_CHECKING:
    from routing.b2bua import B2bua

IN_DIALOG_METHODS = ("BYE", "INFO", "REFER", "NOTIFY")
"""Methods only sent within a dialog: routed here even without a To tag."""


def received(b2bua: B2bua, event: IncomingRequest, *, now: float) -> None:
    """A request with a To tag, or of a method that is only sent within a dialog."""
    request, key, addr = event.request, event.key, event.addr
    found = b2bua.dialogs.receive_request(request)
    if not isinstance(found, Dialog):
        status = found.status if found is not None else 481
        retry = found.retry_after if found is not None else None
        extra = () if retry is None else (("Retry-After", str(retry)),)
        b2bua.endpoint.reply(request, key, addr, status, now=now, extra=extra)
        return
    located = locate(b2bua, request.call_id)
    if request.method == "BYE":
        b2bua.endpoint.reply(request, key, addr, 200, now=now)
        feature = b2bua.features.get(request.call_id)
        if located is not None:
            _bye(b2bua, *located, now=now)
        elif attended.bye(b2bua, request.call_id, now=now):
            return
        elif feature is not None:
            feature_codes_glue.ended(b2bua, feature)
    elif request.method == "INFO":
        b2bua.endpoint.reply(request, key, addr, 200, now=now)
        if located is not None and located[1] is located[0]:
            ivr_glue.info_digit(b2bua, located[0], request, now=now)
    elif located is not None and request.method == "INVITE":
        reinvite.received(b2bua, event, *located, now=now)
    elif located is not None and request.method == "REFER":
        refer = attended if attended.has_replaces(event) else transfer
        refer.refer_received(b2bua, event, *located, now=now)
    else:
        # Re-INVITEs of feature calls and NOTIFYs out of any subscription of ours.
        status = 488 if request.method == "INVITE" else 501
        response = b2bua.endpoint.reply(request, key, addr, status, now=now)
        # §14.2: the refused re-INVITE is over; the next one must not get a 500.
        b2bua.dialogs.response_sent(request, response)


def locate(b2bua: B2bua, call_id: str) -> tuple[CallerLeg, CallerLeg | OperatorLeg] | None:
    """The call and the leg (its caller's, an operator's, a transfer target's) that
    a dialog's Call-ID belongs to."""
    call = b2bua.calls.get(call_id)
    if call is not None:
        return call, call
    found = b2bua.calls.leg_by_call_id(call_id)
    if found is not None:
        return found
    moved = b2bua.transfers.by_leg_call_id(call_id)
    owner = b2bua.calls.get(moved.call_id) if moved is not None else None
    if moved is None or owner is None or moved.leg is None:
        return None
    return owner, moved.leg


def _bye(b2bua: B2bua, call: CallerLeg, leg: CallerLeg | OperatorLeg, *, now: float) -> None:
    moved = b2bua.transfers.of_call(call.call_id)
    if leg is call or callback.citizen_hung_up(leg):
        b2bua.finish(call, by_caller=True, now=now)
    elif moved is not None and leg is moved.leg:
        transfer_target.target_hung_up(b2bua, call, moved, now=now)
    elif moved is not None and isinstance(leg, OperatorLeg) and not moved.connected:
        transfer.operator_left(b2bua, call, leg, now=now)
    elif isinstance(leg, OperatorLeg):
        leg.dialog = None  # their BYE ended that dialog: no BYE back
        b2bua.hang_up(
            call, reason="operator hung up", now=now, by="operator", operator=leg.operator
        )


def ack(b2bua: B2bua, event: tx.AckReceived, *, now: float) -> None:
    """The ACK of a 2xx of ours; on the caller's INVITE it may bring the SDP answer."""
    b2bua.dialogs.receive_request(event.request)
    located = locate(b2bua, event.request.call_id)
    if located is None:
        return
    call, leg = located
    answered = reinvite.ack_answer(b2bua, leg, event.request)
    starting = leg is call and call.phase is Phase.IVR and call.ivr is None
    if answered is True and starting:
        ivr_glue.start(b2bua, call, now=now)
    elif answered is False and starting:
        # RFC 3264 §4: our offer in the 200 got no usable answer in the ACK.
        b2bua.hang_up(call, reason="no usable answer in the ACK", now=now, cause=488)


def cancel(b2bua: B2bua, event: tx.CancelReceived, *, now: float) -> None:
    """The caller CANCELled its INVITE before our final response (§9.2)."""
    call = b2bua.calls.get(event.request.call_id)
    if call is not None and event.invite_terminated:
        b2bua.finish(call, by_caller=True, now=now)
