"""Between the ACD engine and the operators' phones: offers become INVITEs to the
operator's registered contact, their responses become ACD inputs, ACD facts go to the
event log (RFC 3261 §13 for the INVITE, §9.1 for CANCEL, §15 for BYE)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from acd import events as ac
from media.sdp import SdpError, parse_sdp, serialize_sdp
from media.session import MediaParams, NoCommonCodec, build_offer, read_answer
from metrics.events import EventKind
from routing.legs import CallerLeg, OperatorLeg, Phase, leg_media, operator_invite
from sip import events as tx
from sip.transaction import ClientTransactionKey, TransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

_FAILURES = {486: ac.OfferFailure.BUSY, 600: ac.OfferFailure.BUSY, 603: ac.OfferFailure.DECLINE}


def drain(b2bua: B2bua, *, now: float) -> bool:
    """Carry out the engine's commands and log its facts; True if anything happened."""
    outputs = b2bua.acd.commands()
    for output in outputs:
        _output(b2bua, output, now=now)
    return bool(outputs)


def _output(b2bua: B2bua, output: ac.Output, *, now: float) -> None:
    if isinstance(output, ac.OperatorStateChanged):
        b2bua.record(
            EventKind.OPERATOR_STATE,
            at=output.at,
            operator=output.operator,
            data={"state": str(output.new), "old": str(output.old), "reason": output.reason or ""},
        )
        return
    if isinstance(output, ac.OperatorRegistrationChanged):
        return
    call = b2bua.calls.get(output.call_id)
    if call is None:
        if isinstance(output, ac.OfferCall):
            b2bua.acd.offer_rejected(
                output.call_id, output.operator, reason=ac.OfferFailure.CALLER_GONE, now=now
            )
        return
    if isinstance(output, ac.OfferCall):
        offer(b2bua, call, output, now=now)
    elif isinstance(output, ac.CancelOffer):
        leg = call.operator_legs.get(output.operator)
        if leg is not None:
            release_leg(b2bua, call, leg, now=now)
    elif isinstance(output, ac.PlayAnnouncement):
        _announce(b2bua, call, output)
    elif isinstance(output, ac.Overflow):
        _overflow(b2bua, call, output, now=now)
    else:
        _fact(b2bua, call, output)


def _fact(b2bua: B2bua, call: CallerLeg, fact: ac.Output) -> None:
    kind = _FACT_KINDS.get(type(fact))
    if kind is None:
        return
    operator = getattr(fact, "operator", None)
    data: dict[str, str] = {}
    if isinstance(fact, ac.CallQueued):
        data = {"priority": str(fact.priority), "position": str(fact.position)}
    elif isinstance(fact, ac.CallOverflowed):
        data = {"reason": str(fact.reason), "action": fact.action}
    elif isinstance(fact, ac.CallAbandoned):
        data = {"while_ringing": str(fact.while_ringing).lower()}
    elif isinstance(fact, ac.CallDispositionSet):
        data = {"disposition": str(fact.disposition), "explicit": str(fact.explicit).lower()}
    b2bua.emit(kind, call, now=fact.at, operator=operator, data=data)  # type: ignore[union-attr]


_FACT_KINDS: dict[type, EventKind] = {
    ac.CallQueued: EventKind.QUEUED,
    ac.CallOffered: EventKind.OFFERED,
    ac.OfferRinging: EventKind.RINGING,
    ac.CallAnswered: EventKind.ANSWERED,
    ac.CallAbandoned: EventKind.ABANDONED,
    ac.CallOverflowed: EventKind.OVERFLOWED,
    ac.CallTransferred: EventKind.TRANSFERRED,
    ac.CallDispositionSet: EventKind.DISPOSITION,
}


# -- offering a call to an operator ----------------------------------------------------


def offer(b2bua: B2bua, call: CallerLeg, command: ac.OfferCall, *, now: float) -> None:
    """INVITE the operator's registered phone with the caller's identity and media."""
    bindings = b2bua.endpoint.registrar.lookup(command.operator)
    if not bindings:
        b2bua.acd.offer_rejected(
            call.call_id, command.operator, reason=ac.OfferFailure.UNREACHABLE, now=now
        )
        return
    binding = bindings[0]
    media_leg = f"{call.call_id}/{command.operator}"
    local = b2bua.media.open_leg(media_leg)
    codecs = sorted(b2bua.config.codecs, key=lambda c: c.name != call.media.codec.name)
    sdp = build_offer(
        codecs=codecs, local_addr=local[0], local_port=local[1], session_id=b2bua.next_session()
    )
    invite = operator_invite(
        target_uri=str(binding.contact.uri),
        local=b2bua.config.local,
        call_id=b2bua.ids.call_id(),
        tag=b2bua.ids.tag(),
        caller_identity=_identity(call),
        screen_pop=_screen_pop(call),
        body=serialize_sdp(sdp),
        user_agent=b2bua.config.user_agent,
    )
    key = b2bua.endpoint.send_request(invite, binding.target, now=now)
    leg = OperatorLeg(
        operator=command.operator,
        call_id=invite.call_id,
        media_leg=media_leg,
        invite=invite,
        key=key,
        target=binding.target,
        offer=sdp,
        caller_call_id=call.call_id,
    )
    b2bua.calls.add_leg(call, leg)


def _identity(call: CallerLeg) -> str:
    caller = call.invite.from_
    display = caller.display or call.caller
    return f'"{display}" <{caller.uri}>' if display else f"<{caller.uri}>"


def _screen_pop(call: CallerLeg) -> tuple[tuple[str, str], ...]:
    """Headers a softphone's screen pop can show (service, IVR choice, call id)."""
    return (
        ("X-Centralino-Service", call.service),
        ("X-Centralino-Queue", call.queue or ""),
        ("X-Centralino-Choice", call.sub_service or ""),
        ("X-Centralino-Call-Id", call.call_id),
    )


def operator_response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> None:
    """A response to our INVITE to an operator (others are only logged)."""
    found = b2bua.calls.leg_by_key(event.key)
    if found is None or event.key.method != "INVITE":
        _stray_success(b2bua, event, now=now)
        return
    call, leg = found
    status = event.response.status
    if status < 200:
        if status in (180, 183) and not leg.ringing:
            leg.ringing = True
            b2bua.acd.offer_ringing(call.call_id, leg.operator, now=now)
    elif status < 300:
        _answered(b2bua, call, leg, event, now=now)
    else:
        b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
        _refused(b2bua, call, leg, status, now=now)


def _stray_success(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> None:
    # A 2xx retransmission or a late 2xx to an INVITE whose leg is gone: ACK then BYE it.
    found = b2bua.calls.leg_by_call_id(event.response.call_id)
    if found is not None and event.key.method == "INVITE" and 200 <= event.response.status < 300:
        _, leg = found
        _ack(b2bua, leg, event, now=now)


def _answered(
    b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, event: tx.ResponseReceived, *, now: float
) -> None:
    leg.dialog = b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
    _ack(b2bua, leg, event, now=now)
    if leg.answered:
        return
    params = _answer_media(leg, event)
    if params is None or call.phase is not Phase.QUEUED or leg.cancelled:
        release_leg(b2bua, call, leg, now=now)
        return
    leg.answered = True
    b2bua.media.configure_leg(leg.media_leg, leg_media(params))
    b2bua.acd.offer_answered(call.call_id, leg.operator, now=now)
    if call.operator_legs.get(leg.operator) is leg and not leg.cancelled:
        call.phase = Phase.BRIDGED
        call.bridged_to = leg.operator
        b2bua.media.bridge(call.media_leg, leg.media_leg)


def _answer_media(leg: OperatorLeg, event: tx.ResponseReceived) -> MediaParams | None:
    try:
        params = read_answer(leg.offer, parse_sdp(event.response.body))
    except SdpError as exc:
        log.warning("operator %s answered with unreadable SDP: %s", leg.operator, exc)
        return None
    return None if isinstance(params, NoCommonCodec) else params


def _ack(b2bua: B2bua, leg: OperatorLeg, event: tx.ResponseReceived, *, now: float) -> None:
    dialog = leg.dialog or b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
    if dialog is None:
        return
    ack = dialog.create_ack(event.response.cseq.seq)
    b2bua.endpoint.send_request(ack, leg.target, now=now)


def _refused(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, status: int, *, now: float) -> None:
    b2bua.calls.remove_leg(call, leg)
    b2bua.media.close_leg(leg.media_leg)
    if leg.cancelled:
        return
    reason = _FAILURES.get(status, ac.OfferFailure.UNREACHABLE)
    b2bua.acd.offer_rejected(call.call_id, leg.operator, reason=reason, now=now)


def operator_failed(b2bua: B2bua, key: TransactionKey, *, now: float) -> None:
    """Our INVITE to an operator timed out or could not be sent."""
    if not isinstance(key, ClientTransactionKey):
        return
    found = b2bua.calls.leg_by_key(key)
    if found is not None and key.method == "INVITE":
        call, leg = found
        _refused(b2bua, call, leg, 408, now=now)


# -- releasing -------------------------------------------------------------------------


def release_leg(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, *, now: float) -> None:
    """Stop ringing (CANCEL) or hang up (BYE) an operator leg and free its media."""
    leg.cancelled = True
    if leg.dialog is not None:
        b2bua.send_bye(leg.dialog, leg.target, now=now)
        leg.dialog = None
    elif not leg.answered:
        b2bua.endpoint.layer.cancel(leg.key, now=now)
    b2bua.calls.remove_leg(call, leg)
    b2bua.media.close_leg(leg.media_leg)


def caller_gone(b2bua: B2bua, call: CallerLeg, *, now: float) -> None:
    """The caller's side ended: tell the ACD (abandon before answer, end after)."""
    if call.queue is not None:
        b2bua.acd.caller_hung_up(call.call_id, now=now)
        drain(b2bua, now=now)


def phone_changed(b2bua: B2bua, operator: str, reachable: bool, *, now: float) -> None:
    """A registration appeared or the last one went away."""
    if operator not in b2bua.acd.operator_ids():
        return
    if reachable:
        b2bua.acd.operator_registered(operator, now=now)
        if b2bua.auto_login and str(b2bua.acd.operator_state(operator)) == "logged_out":
            b2bua.acd.operator_login(operator, now=now)
    else:
        b2bua.acd.operator_unregistered(operator, now=now)


def _announce(b2bua: B2bua, call: CallerLeg, command: ac.PlayAnnouncement) -> None:
    prompts = ["queue-position-pre", *number_prompts(command.position), "queue-position-post"]
    b2bua.media.play(call.media_leg, prompts, language=call.language, play_id=-1)


def number_prompts(value: int) -> list[str]:
    """Prompt ids that say a number from 0 to 199 (position announcements)."""
    if value <= 20 or value == 100:
        return [f"number-{value}"]
    if value > 100:
        return ["number-100", *number_prompts(value - 100)]
    tens, units = divmod(value, 10)
    return [f"number-{tens * 10}"] + ([f"number-{units}"] if units else [])


def _overflow(b2bua: B2bua, call: CallerLeg, command: ac.Overflow, *, now: float) -> None:
    if command.action == "voicemail" and command.target:
        call.phase = Phase.VOICEMAIL
        b2bua.media.record(call.media_leg, name=f"{command.target}-{call.call_id}", max_seconds=120)
    else:
        b2bua.hang_up(call, reason=f"overflow: {command.action}", now=now)
