"""Blind transfer with REFER from an operator's phone (RFC 3515, sipfrag RFC 3420).

The operator's phone sends REFER on its leg's dialog. We stay a B2BUA: the REFER is
answered 202, a NOTIFY with `SIP/2.0 100 Trying` follows, and then

- `Refer-To: sip:queue-<name>@...`: the caller goes back to that queue, keeping its
  first queue-entry time (Tm); NOTIFY 200, the operator's leg is hung up;
- `Refer-To: sip:<operator id>@...`: the ACD reserves that operator as for an offer
  (`AcdEngine.transfer_to_operator`: refused unless available and registered, and no
  queue call rings them meanwhile), then we INVITE their registered phone;
- `Refer-To: sip:<number>@...`: we INVITE the number through the trunk (the referent).

While the target rings the caller hears music on hold. A 2xx bridges the caller to the
new leg, NOTIFY says 200 and the operator's leg is hung up; a failure, or no answer
within `transfer_timeout` (CANCEL), is NOTIFYed and the caller goes back to the
operator, or to the queue when the operator has hung up meanwhile. A transfer to a
referent counts as escalated (`AcdEngine.transferred_to_referent`). An operator target
is INVITEd with the queue offer's screen pop plus `X-Centralino-Transferred-By`; once
they answer they own the call in the ACD (`transfer_answered`: on call, then their own
wrap-up and disposition; the transferring operator goes to wrap-up) and in call control
(their leg becomes the call's operator leg: they hold, hang up and transfer it on as
any operator); one who does not
is released (`transfer_failed`, with the queue's ring-no-answer or refusal policy), and
one the ACD takes back while ringing (paused, logged out: `CancelTransfer`) is CANCELled
as a refusal (`target_withdrawn`). The target leg's answer, refusal, timeout and end
are taken in `routing.transfer_target`; this module sends the caller back
(`fail_back`).

Attended transfer (`Refer-To` with `Replaces`, RFC 3891) is in `routing.attended`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from acd.errors import AcdError
from acd.events import OfferFailure
from media.sdp import serialize_sdp
from media.session import build_offer
from metrics.events import EventKind

# Imported as modules: both import this one back (acd_glue sends CancelTransfer here and
# this frees legs there; ivr_glue and reinvite reach here through callback and acd_glue).
from routing import acd_glue, ivr_glue, reinvite
from routing.legs import (
    CallerLeg,
    OperatorLeg,
    Phase,
    Transfer,
    caller_identity,
    operator_invite,
    screen_pop,
)
from sip.endpoint import IncomingRequest
from sip.errors import ProtocolError
from sip.headers import parse_address
from sip.transaction import Addr
from sip.uri import Uri

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

SIPFRAG = "message/sipfrag;version=2.0"
REFERENT, QUEUE, OPERATOR = "referent", "queue", "operator"


# -- the REFER ------------------------------------------------------------------------


def refer_received(
    b2bua: B2bua,
    event: IncomingRequest,
    call: CallerLeg,
    leg: CallerLeg | OperatorLeg,
    *,
    now: float,
) -> None:
    """A REFER on a leg's dialog (RFC 3515 §2.4.2): only an operator transfers."""
    request = event.request
    status, uri = check(b2bua, call, leg, request.headers.values("refer-to"))
    target = classify(b2bua, uri.user_unescaped or "") if uri is not None else None
    if target is None or not isinstance(leg, OperatorLeg):
        refuse(b2bua, event, 404 if uri is not None else status, now=now)
        return
    accept(b2bua, event, now=now)
    kind, name = target
    transfer = Transfer(call_id=call.call_id, kind=kind, target=name, operator=leg.operator)
    b2bua.transfers.add(transfer)
    notify(b2bua, call, transfer, 100, "Trying", now=now)
    if kind == QUEUE:
        _to_queue(b2bua, call, transfer, now=now)
    else:
        _dial(b2bua, call, transfer, now=now)


def check(
    b2bua: B2bua, call: CallerLeg, leg: CallerLeg | OperatorLeg, refer_to: list[str]
) -> tuple[int, Uri | None]:
    """The Refer-To URI of an acceptable REFER, or the status refusing it."""
    if not isinstance(leg, OperatorLeg) or call.bridged_to != leg.operator:
        return 403, None
    if b2bua.transfers.of_call(call.call_id) is not None:
        return 491, None
    if len(refer_to) != 1:
        return 400, None  # §2.4.1: exactly one Refer-To
    try:
        return 202, parse_address(refer_to[0]).uri
    except ProtocolError:
        return 400, None


def refuse(b2bua: B2bua, event: IncomingRequest, status: int, *, now: float) -> None:
    """Answer a REFER we do not carry out."""
    response = b2bua.endpoint.reply(event.request, event.key, event.addr, status, now=now)
    b2bua.dialogs.response_sent(event.request, response)


def accept(b2bua: B2bua, event: IncomingRequest, *, now: float) -> None:
    """202 Accepted (RFC 3515 §2.4.2): the NOTIFYs tell how it went."""
    extra = (("Contact", b2bua.contact()),)
    response = b2bua.endpoint.reply(event.request, event.key, event.addr, 202, now=now, extra=extra)
    b2bua.dialogs.response_sent(event.request, response)


def classify(b2bua: B2bua, user: str) -> tuple[str, str] | None:
    """What a Refer-To user part names: a queue, an operator or a referent's number."""
    prefix = b2bua.config.queue_prefix
    if user.startswith(prefix) and user[len(prefix) :] in b2bua.acd.queue_names():
        return QUEUE, user[len(prefix) :]
    if user in b2bua.acd.operator_ids():
        return OPERATOR, user
    digits = user.removeprefix("+")
    if digits.isdigit() and 2 <= len(digits) <= 20:
        return REFERENT, user
    return None


def notify(
    b2bua: B2bua, call: CallerLeg, transfer: Transfer, status: int, reason: str, *, now: float
) -> None:
    """NOTIFY the REFER's implicit subscription (RFC 3515 §2.4.4, §2.4.5)."""
    leg = call.operator_legs.get(transfer.operator)
    if leg is None or leg.dialog is None:
        return
    final = status >= 200
    state = "terminated;reason=noresource" if final else "active;expires=60"
    extra = (
        ("Event", "refer"),
        ("Subscription-State", state),
        ("Content-Type", SIPFRAG),
    )
    body = f"SIP/2.0 {status} {reason}\r\n".encode()
    try:
        request = leg.dialog.create_request("NOTIFY", body=body, extra=extra)
    except ProtocolError:
        return
    b2bua.endpoint.send_request(request, leg.target, now=now)


# -- to a queue -----------------------------------------------------------------------


def _to_queue(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    notify(b2bua, call, transfer, 200, "OK", now=now)
    _transferred(b2bua, call, transfer, now=now)
    _operator_done(b2bua, call, transfer, now=now)
    b2bua.transfers.forget(transfer)
    requeue(b2bua, call, transfer.target, now=now)


def requeue(b2bua: B2bua, call: CallerLeg, queue: str | None, *, now: float) -> None:
    """Put the caller in `queue` again with its first queue-entry time (Tm)."""
    if queue is None:
        b2bua.hang_up(call, reason="transfer failed, no queue", now=now)
        return
    call.phase, call.bridged_to, call.queue = Phase.QUEUED, None, queue
    b2bua.media.unbridge(call.media_leg)
    ivr_glue.music_on_hold(b2bua, call)
    entered = call.queued_at if call.queued_at is not None else now
    b2bua.acd.enqueue(call.call_id, queue, entered_at=entered, caller=call.caller, now=now)


def _transferred(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    data = {"to": transfer.kind, "target": transfer.target}
    b2bua.emit(EventKind.TRANSFERRED, call, now=now, operator=transfer.operator, data=data)
    if transfer.kind == REFERENT:
        try:
            b2bua.acd.transferred_to_referent(call.call_id, transfer.target, now=now)
        except AcdError as exc:
            log.warning("transfer of %s not recorded as escalated: %s", call.call_id, exc)


def _operator_done(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    """The transferring operator's conversation is over: wrap-up, their leg hung up.
    An operator target takes the call over in the ACD; otherwise it ends there."""
    if transfer.kind == OPERATOR:
        b2bua.acd.transfer_answered(call.call_id, transfer.target, now=now)
    else:
        b2bua.acd.call_ended(call.call_id, now=now)
    leg = call.operator_legs.get(transfer.operator)
    if leg is not None:
        acd_glue.release_leg(b2bua, call, leg, now=now)


def operator_left(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, *, now: float) -> None:
    """The transferring operator hung up before the target answered: the transfer goes
    on; if it fails, the caller goes back to the queue."""
    leg.dialog = None  # their BYE ended that dialog: no BYE back
    transfer = b2bua.transfers.of_call(call.call_id)
    if transfer is not None and transfer.kind == OPERATOR:
        b2bua.acd.transferring_operator_left(call.call_id, now=now)
    else:
        b2bua.acd.call_ended(call.call_id, now=now)
    acd_glue.release_leg(b2bua, call, leg, now=now)


# -- to a referent or another operator ------------------------------------------------


def _destination(
    b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float
) -> tuple[str, Addr] | None:
    if transfer.kind == OPERATOR:
        bindings = b2bua.endpoint.registrar.lookup(transfer.target)
        if not bindings or not _reserve(b2bua, call, transfer.target, now=now):
            return None
        return str(bindings[0].contact.uri), bindings[0].target
    return referent_destination(b2bua, call.addr[0], transfer.target)


def _reserve(b2bua: B2bua, call: CallerLeg, operator: str, *, now: float) -> bool:
    """The ACD reserves the target operator for this call, as for an offer."""
    try:
        b2bua.acd.transfer_to_operator(call.call_id, operator, now=now)
    except AcdError as exc:
        log.info("transfer of %s to operator %s refused: %s", call.call_id, operator, exc)
        return False
    return True


def _dial(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    destination = _destination(b2bua, call, transfer, now=now)
    leg = None
    if destination is not None:
        # A target's own media leg: an operator target may transfer the call on while
        # their leg is still up (the caller comes back to them if that fails).
        pop = None
        if transfer.kind == OPERATOR:
            pop = screen_pop(call, transferred_by=transfer.operator)
        leg = dial_leg(
            b2bua, destination, media_leg=f"{call.call_id}/transfer-{transfer.target}",
            identity=caller_identity(call), codec=call.media.codec.name, label=transfer.target,
            call=call, pop=pop, now=now,
        )  # fmt: skip
    if leg is None:
        fail_back(b2bua, call, transfer, 480, "Temporarily Unavailable", now=now)
        return
    transfer.leg = leg
    waiting(b2bua, call, transfer, now=now)


def dial_leg(
    b2bua: B2bua,
    destination: tuple[str, Addr],
    *,
    media_leg: str,
    identity: str,
    codec: str,
    label: str,
    call: CallerLeg | None,
    pop: tuple[tuple[str, str], ...] | None = None,
    now: float,
) -> OperatorLeg | None:
    """INVITE `destination` (Request-URI, address) with our offer on a new media leg,
    the codec of the other party first; None when no RTP port is free. `pop`: the
    screen-pop headers (by default the service and call id only: a referent's phone is
    outside the contact center)."""
    local = b2bua.open_leg(media_leg)
    if local is None:
        return None
    codecs = sorted(b2bua.config.codecs, key=lambda c: c.name != codec)
    sdp = build_offer(
        codecs=codecs, local_addr=local[0], local_port=local[1], session_id=b2bua.next_session()
    )
    if pop is None:
        service = () if call is None else (("X-Centralino-Service", call.service),)
        pop = (*service, ("X-Centralino-Call-Id", call.call_id if call else ""))
    invite = operator_invite(
        target_uri=destination[0],
        local=b2bua.config.local,
        call_id=b2bua.ids.call_id(),
        tag=b2bua.ids.tag(),
        caller_identity=identity,
        screen_pop=pop,
        body=serialize_sdp(sdp),
        user_agent=b2bua.config.user_agent,
    )
    key = b2bua.endpoint.send_request(invite, destination[1], now=now)
    return OperatorLeg(
        operator=label, call_id=invite.call_id, media_leg=media_leg, invite=invite, key=key,
        target=destination[1], offer=sdp, caller_call_id=call.call_id if call else "",
    )  # fmt: skip


def referent_destination(b2bua: B2bua, host: str, number: str) -> tuple[str, Addr]:
    """Where a referent's number is dialed: the configured trunk, else `host`:5060."""
    host, port = b2bua.config.referent_trunk or (host, 5060)
    shown = f"[{host}]" if ":" in host else host
    return f"sip:{number}@{shown}:{port}", (host, port)


def waiting(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    """The caller waits for the target's answer with music, as a queued caller does
    (Asterisk's transfer music on hold), for at most `transfer_timeout`."""
    transfer.deadline = now + b2bua.config.transfer_timeout
    b2bua.transfers.add(transfer)
    call.phase, call.bridged_to = Phase.QUEUED, None
    b2bua.media.unbridge(call.media_leg)
    ivr_glue.music_on_hold(b2bua, call)


def connected(b2bua: B2bua, call: CallerLeg, transfer: Transfer, *, now: float) -> None:
    """The target talks: bridge the caller to it, NOTIFY 200, hang up the operator."""
    leg = transfer.leg
    assert leg is not None
    transfer.connected, transfer.deadline = True, None
    call.phase, call.bridged_to = Phase.BRIDGED, None
    b2bua.media.bridge(call.media_leg, leg.media_leg)
    if call.session is not None and call.session.holding:
        # The operator held the caller before transferring: the caller talks again.
        reinvite.reoffer(b2bua, call, call, holding=False, now=now)
    notify(b2bua, call, transfer, 200, "OK", now=now)
    _transferred(b2bua, call, transfer, now=now)
    _operator_done(b2bua, call, transfer, now=now)
    if transfer.kind == OPERATOR:
        _take_over(b2bua, call, transfer, leg)


def _take_over(b2bua: B2bua, call: CallerLeg, transfer: Transfer, leg: OperatorLeg) -> None:
    """An operator target who answered is the call's operator from now on, as the ACD
    says: their leg joins the call's operator legs, so their BYE, hold, disposition and
    REFER (a further transfer) are an operator's."""
    b2bua.transfers.forget(transfer)
    b2bua.calls.add_leg(call, leg)
    call.bridged_to = leg.operator


# -- failures: back to the operator or the queue --------------------------------------


def fail_back(
    b2bua: B2bua,
    call: CallerLeg,
    transfer: Transfer,
    status: int,
    reason: str,
    *,
    failure: OfferFailure = OfferFailure.UNREACHABLE,
    now: float,
) -> None:
    """The target did not take the call (`failure`, for an operator target's ACD
    release): NOTIFY the failure, back to the operator if their leg is still up, else
    to the queue."""
    log.info("transfer of %s to %s failed: %s", call.call_id, transfer.target, status)
    notify(b2bua, call, transfer, status, reason or "Failed", now=now)
    drop_target(b2bua, transfer, failure, now=now)
    back = call.operator_legs.get(transfer.operator)
    if back is not None and back.dialog is not None:
        call.phase, call.bridged_to = Phase.BRIDGED, back.operator
        b2bua.media.bridge(call.media_leg, back.media_leg)
    else:
        requeue(b2bua, call, call.queue, now=now)


def drop_target(b2bua: B2bua, transfer: Transfer, failure: OfferFailure, *, now: float) -> None:
    """Give the target up: forget it, free its media, release an operator target in
    the ACD (`failure` says why, for the queue's policy)."""
    transfer.given_up, transfer.deadline = True, None
    b2bua.transfers.forget(transfer)
    if transfer.leg is not None:
        b2bua.media.close_leg(transfer.leg.media_leg)
    if transfer.kind == OPERATOR and not transfer.connected:
        b2bua.acd.transfer_failed(transfer.call_id, transfer.target, reason=failure, now=now)


def target_withdrawn(b2bua: B2bua, call: CallerLeg, operator: str, *, now: float) -> None:
    """The ACD took back an operator target still ringing (`CancelTransfer`: they
    paused, logged out or lost their phone): CANCEL it, as a refusal (§9.1)."""
    transfer = b2bua.transfers.of_call(call.call_id)
    if transfer is None or (transfer.kind, transfer.target) != (OPERATOR, operator):
        return
    if transfer.connected or transfer.given_up or transfer.leg is None:
        return
    layer = b2bua.endpoint.layer
    if layer.client_state(transfer.leg.key) is not None:
        layer.cancel(transfer.leg.key, now=now)
    left = OfferFailure.OPERATOR_LEFT
    fail_back(b2bua, call, transfer, 480, "Temporarily Unavailable", failure=left, now=now)
