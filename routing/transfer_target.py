"""The transfer target's leg (RFC 3515 blind transfer, `routing.transfer`): its answer,
its refusal, no answer in time, and its end.

A 2xx to the target's INVITE is ACKed and, with a usable SDP answer (RFC 3264 §6), the
caller is bridged to the target (`transfer.connected`); an answer without a common
codec is hung up as a 488. A 2xx crossing our CANCEL, or coming after the caller left,
is ACKed and hung up (RFC 3261 §15). A refusal (with its ACD policy for an operator
target), a target ringing `transfer_timeout` seconds (CANCELled, §9.1) or an INVITE
that times out or cannot be sent (a 408, §8.1.3.1) sends the caller back
(`transfer.fail_back`). When the caller leaves, the target is hung up or CANCELled;
when the target hangs up, the caller is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acd.events import OfferFailure
from media.sdp import SdpError, parse_sdp
from media.session import MediaParams, NoCommonCodec, read_answer
from routing import acd_glue, reinvite
from routing.legs import CallerLeg, OperatorLeg, Transfer
from routing.transfer import OPERATOR, connected, drop_target, fail_back
from sip import events as tx
from sip.message import Response
from sip.transaction import ClientTransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua


# -- the answer -----------------------------------------------------------------------


def response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> bool:
    """A response to a transfer's INVITE; False when the key is not one of ours."""
    transfer = b2bua.transfers.by_key(event.key)
    if transfer is None or transfer.leg is None:
        return False
    status = event.response.status
    call = b2bua.calls.get(transfer.call_id)
    if status < 200:
        return True
    if transfer.given_up or call is None or transfer.connected:
        _late(b2bua, transfer.leg, event.response, now=now)
    elif status < 300:
        _answered(b2bua, call, transfer, event.response, now=now)
    else:
        b2bua.dialogs.receive_response(transfer.leg.invite, event.response, now=now)
        refusal = acd_glue.refusal(status)
        fail_back(b2bua, call, transfer, status, event.response.reason, failure=refusal, now=now)
    return True


def _late(b2bua: B2bua, leg: OperatorLeg, response: Response, *, now: float) -> None:
    """A 2xx after we gave up (timeout CANCEL crossed it, the caller left): ACK, BYE."""
    dialog = b2bua.dialogs.receive_response(leg.invite, response, now=now)
    if dialog is None or not 200 <= response.status < 300 or dialog is leg.dialog:
        return
    b2bua.endpoint.send_request(dialog.create_ack(response.cseq.seq), leg.target, now=now)
    b2bua.send_bye(dialog, leg.target, now=now)


def _answered(
    b2bua: B2bua, call: CallerLeg, transfer: Transfer, response: Response, *, now: float
) -> None:
    leg = transfer.leg
    assert leg is not None
    dialog = b2bua.dialogs.receive_response(leg.invite, response, now=now)
    if dialog is None:
        return
    b2bua.endpoint.send_request(dialog.create_ack(response.cseq.seq), leg.target, now=now)
    leg.dialog, leg.answered, transfer.deadline = dialog, True, None
    params = _answer_params(leg, response.body)
    if params is None:
        b2bua.send_bye(dialog, leg.target, now=now)
        leg.dialog = None
        fail_back(b2bua, call, transfer, 488, "Not Acceptable Here", now=now)
        return
    reinvite.configure(b2bua, leg, params)
    connected(b2bua, call, transfer, now=now)


def _answer_params(leg: OperatorLeg, body: bytes) -> MediaParams | None:
    try:
        params = read_answer(leg.offer, parse_sdp(body))
    except SdpError:
        return None
    return None if isinstance(params, NoCommonCodec) else params


# -- no answer, and the end of either party ---------------------------------------


def handle_timer(b2bua: B2bua, *, now: float) -> None:
    """Targets that rang `transfer_timeout` seconds unanswered are CANCELled (§9.1)."""
    layer = b2bua.endpoint.layer
    for transfer in b2bua.transfers.due(now):
        call = b2bua.calls.get(transfer.call_id)
        if transfer.leg is not None and layer.client_state(transfer.leg.key) is not None:
            layer.cancel(transfer.leg.key, now=now)
        if call is None:
            drop_target(b2bua, transfer, OfferFailure.CALLER_GONE, now=now)
        else:
            timeout = OfferFailure.NO_ANSWER
            fail_back(b2bua, call, transfer, 408, "Request Timeout", failure=timeout, now=now)
    b2bua.transfers.prune(lambda key: layer.client_state(key) is not None)


def failed(b2bua: B2bua, key: ClientTransactionKey, *, now: float) -> bool:
    """A transfer's INVITE timed out or could not be sent (§8.1.3.1: as a 408)."""
    transfer = b2bua.transfers.by_key(key)
    if transfer is None or transfer.leg is None:
        return False
    call = b2bua.calls.get(transfer.call_id)
    if call is not None and not transfer.given_up and not transfer.connected:
        fail_back(b2bua, call, transfer, 408, "Request Timeout", now=now)
    return True


def caller_gone(b2bua: B2bua, call: CallerLeg, *, now: float) -> None:
    """The call ended: hang up or stop ringing the target, free its media."""
    transfer = b2bua.transfers.of_call(call.call_id)
    if transfer is None:
        return
    leg = transfer.leg
    if leg is not None and leg.dialog is not None:
        b2bua.send_bye(leg.dialog, leg.target, now=now)
        leg.dialog = None
    elif leg is not None and b2bua.endpoint.layer.client_state(leg.key) is not None:
        b2bua.endpoint.layer.cancel(leg.key, now=now)
    drop_target(b2bua, transfer, OfferFailure.CALLER_GONE, now=now)


def target_hung_up(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    """The transfer's target sent BYE: the caller is hung up."""
    if transfer.leg is not None:
        transfer.leg.dialog = None
    operator = transfer.target if transfer.kind == OPERATOR else None
    b2bua.hang_up(
        call, reason="transfer target hung up", now=now, by=transfer.kind, operator=operator
    )
