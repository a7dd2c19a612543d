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
from routing import callback, callback_dial, ivr_glue, transfer
from routing.legs import (
    CITIZEN,
    CallerLeg,
    OperatorLeg,
    Phase,
    caller_identity,
    leg_media,
    operator_invite,
    screen_pop,
)
from sip import events as tx
from sip.message import Request
from sip.transaction import ClientTransactionKey, TransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

_FAILURES = {486: ac.OfferFailure.BUSY, 600: ac.OfferFailure.BUSY, 603: ac.OfferFailure.DECLINE}


def drain(b2bua: B2bua, *, now: float) -> bool:
    """Carry out the engine's commands and log its facts; True if anything happened."""
    callback.hang_up_confirmed(b2bua, now=now)
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
    callback.forget(b2bua, output)
    call = b2bua.calls.get(output.call_id)
    if call is None and isinstance(output, ac.OfferCall) and output.callback_number:
        call = callback.revive(b2bua, output.call_id)
    if call is None:
        if isinstance(output, ac.OfferCall):
            # Nobody to offer: the caller left without the engine hearing of it.
            b2bua.acd.caller_hung_up(output.call_id, now=now)
        elif (ended := b2bua.calls.ended(output.call_id)) is not None:
            _fact(b2bua, ended, output)  # e.g. the disposition, set after the call
        return
    if isinstance(output, ac.OfferCall):
        offer(b2bua, call, output, now=now)
    elif isinstance(output, ac.CancelOffer):
        _cancel_offer(b2bua, call, output.operator, now=now)
    elif isinstance(output, ac.CancelTransfer):
        transfer.target_withdrawn(b2bua, call, output.operator, now=now)
    elif isinstance(output, ac.PlayAnnouncement):
        _announce(b2bua, call, output)
    elif isinstance(output, ac.Overflow):
        _overflow(b2bua, call, output, now=now)
    elif isinstance(output, ac.PlaceCallback):
        callback_dial.place(b2bua, output, now=now)
    else:
        _fact(b2bua, call, output)


def _cancel_offer(b2bua: B2bua, call: CallerLeg, operator: str, *, now: float) -> None:
    leg = call.operator_legs.get(operator)
    if leg is None:
        return
    if call.bridged_to == operator:
        # The engine refused an answer we had already bridged: the caller waits again.
        call.phase, call.bridged_to = Phase.QUEUED, None
        b2bua.media.unbridge(call.media_leg)
        ivr_glue.music_on_hold(b2bua, call)
    release_leg(b2bua, call, leg, now=now)


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
    elif isinstance(fact, ac.CallbackRequested):
        data = {"callback": "requested"}  # the same place in the queue, nobody on the line
    elif isinstance(fact, ac.CallAnswered) and fact.callback:
        data = {"callback": "true"}
    elif isinstance(fact, ac.CallDispositionSet):
        data = {"disposition": str(fact.disposition), "explicit": str(fact.explicit).lower()}
    b2bua.emit(kind, call, now=fact.at, operator=operator, data=data)  # type: ignore[union-attr]


_FACT_KINDS: dict[type, EventKind] = {
    ac.CallQueued: EventKind.QUEUED,
    ac.CallbackRequested: EventKind.QUEUED,
    ac.CallOffered: EventKind.OFFERED,
    ac.OfferRinging: EventKind.RINGING,
    ac.CallAnswered: EventKind.ANSWERED,
    ac.CallAbandoned: EventKind.ABANDONED,
    ac.CallOverflowed: EventKind.OVERFLOWED,
    ac.CallDispositionSet: EventKind.DISPOSITION,
}


# -- offering a call to an operator ----------------------------------------------------


def offer(b2bua: B2bua, call: CallerLeg, command: ac.OfferCall, *, now: float) -> None:
    """INVITE the operator's registered phone with the caller's identity and media; an
    operator with no binding left, or no RTP port free, is as good as unreachable."""
    bindings = b2bua.endpoint.registrar.lookup(command.operator)
    media_leg = f"{call.call_id}/{command.operator}"
    local = b2bua.open_leg(media_leg) if bindings else None
    if local is None:
        b2bua.acd.offer_rejected(
            call.call_id, command.operator, reason=ac.OfferFailure.UNREACHABLE, now=now
        )
        return
    codecs = sorted(b2bua.config.codecs, key=lambda c: c.name != call.media.codec.name)
    sdp = build_offer(
        codecs=codecs, local_addr=local[0], local_port=local[1], session_id=b2bua.next_session()
    )
    binding = bindings[0]
    invite = _invite(
        b2bua, call, str(binding.contact.uri), serialize_sdp(sdp), command.callback_number
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


def _invite(
    b2bua: B2bua, call: CallerLeg, target_uri: str, body: bytes, number: str | None
) -> Request:
    return operator_invite(
        target_uri=target_uri,
        local=b2bua.config.local,
        call_id=b2bua.ids.call_id(),
        tag=b2bua.ids.tag(),
        caller_identity=caller_identity(call),
        screen_pop=screen_pop(call, callback_number=number),
        body=body,
        user_agent=b2bua.config.user_agent,
    )


def operator_response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> None:
    """A response to our INVITE to an operator."""
    found = b2bua.calls.leg_by_key(event.key)
    if found is None:
        _late_response(b2bua, event, now=now)
        return
    call, leg = found
    if leg.operator == CITIZEN:
        callback_dial.response(b2bua, call, leg, event, now=now)
        return
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


def _late_response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> None:
    """A 2xx for a leg we gave up on (the caller left, another operator won, the ring
    timed out) crossed our CANCEL: the phone is in a call nobody joins, so ACK it and
    hang up at once (RFC 3261 §9.1: "the UAC ... will need to send a BYE")."""
    leg = b2bua.calls.released(event.key)
    if leg is None or not 200 <= event.response.status < 300:
        return
    dialog = b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
    if dialog is None:
        return
    ack = dialog.create_ack(event.response.cseq.seq)
    b2bua.endpoint.send_request(ack, leg.target, now=now)
    log.info("late answer from %s on a released offer: hanging it up", leg.operator)
    b2bua.send_bye(dialog, leg.target, now=now)


def _answered(
    b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, event: tx.ResponseReceived, *, now: float
) -> None:
    dialog = b2bua.dialogs.receive_response(leg.invite, event.response, now=now)
    if dialog is None:
        return
    b2bua.endpoint.send_request(dialog.create_ack(event.response.cseq.seq), leg.target, now=now)
    if leg.dialog is not None and dialog is not leg.dialog:
        # A second 2xx with another To tag (a forking proxy before the phone): §13.2.2.4
        # lets us keep one dialog only; the other is hung up.
        b2bua.send_bye(dialog, leg.target, now=now)
        return
    leg.dialog = dialog
    params = _answer_media(leg, event)
    if params is None:
        # The phone answered with media we cannot use: as good as unreachable.
        release_leg(b2bua, call, leg, now=now)
        b2bua.acd.offer_rejected(
            call.call_id, leg.operator, reason=ac.OfferFailure.UNREACHABLE, now=now
        )
        return
    _connect(b2bua, call, leg, params, now=now)


def _connect(
    b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, params: MediaParams, *, now: float
) -> None:
    leg.answered = True
    b2bua.media.configure_leg(leg.media_leg, leg_media(params))
    b2bua.acd.offer_answered(call.call_id, leg.operator, now=now)
    # The engine says CancelOffer for an answer it no longer wants; drain runs after.
    if callback.is_callback(b2bua, call):
        # Nobody on the line yet: PlaceCallback dials the citizen, bridged on answer.
        call.phase, call.bridged_to = Phase.BRIDGED, leg.operator
    elif call.phase is Phase.QUEUED:
        callback.answered_meanwhile(b2bua, call)
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


def _refused(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, status: int, *, now: float) -> None:
    b2bua.calls.remove_leg(call, leg)
    b2bua.media.close_leg(leg.media_leg)
    if leg.cancelled:
        return
    b2bua.acd.offer_rejected(call.call_id, leg.operator, reason=refusal(status), now=now)


def refusal(status: int) -> ac.OfferFailure:
    """How an ACD input names a phone's final refusal of an INVITE (§21.4, §21.6)."""
    return _FAILURES.get(status, ac.OfferFailure.UNREACHABLE)


def operator_failed(b2bua: B2bua, key: TransactionKey, *, now: float) -> None:
    """Our INVITE to an operator timed out or could not be sent."""
    if not isinstance(key, ClientTransactionKey):
        return
    found = b2bua.calls.leg_by_key(key)
    if found is not None and key.method == "INVITE":
        call, leg = found
        if leg.operator == CITIZEN:
            callback_dial.failed(b2bua, call, leg, now=now)
        else:
            _refused(b2bua, call, leg, 408, now=now)


def reap_dead_offers(b2bua: B2bua, *, now: float) -> None:
    """Offers whose INVITE transaction ended with no final response for us (Timer B,
    a transport error, §8.1.3.1: "treated as a 408") fail as unreachable, even when the
    layer's timeout event never reaches call control."""
    layer = b2bua.endpoint.layer
    for call, leg in b2bua.calls.offers():
        if leg.dialog is None and not leg.answered and layer.client_state(leg.key) is None:
            if leg.operator == CITIZEN:
                callback_dial.failed(b2bua, call, leg, now=now)
            else:
                _refused(b2bua, call, leg, 408, now=now)
    callback_dial.handle_timer(b2bua, now=now)


# -- releasing -------------------------------------------------------------------------


def release_leg(b2bua: B2bua, call: CallerLeg, leg: OperatorLeg, *, now: float) -> None:
    """Stop ringing (CANCEL) or hang up (BYE) an operator leg and free its media."""
    leg.cancelled = True
    layer = b2bua.endpoint.layer
    if leg.dialog is not None:
        b2bua.send_bye(leg.dialog, leg.target, now=now)
    elif layer.client_state(leg.key) is not None:
        # §9.1: sent once a provisional response has come, at once if one has.
        layer.cancel(leg.key, now=now)
    b2bua.calls.prune_released(lambda key: layer.client_state(key) is not None)
    b2bua.calls.release_leg(call, leg)
    leg.dialog = None
    b2bua.media.close_leg(leg.media_leg)


def caller_gone(b2bua: B2bua, call: CallerLeg, *, now: float) -> None:
    """The caller's side ended: tell the ACD (abandon before answer, end after; a
    callback waiting for its turn is expected to have nobody on the line)."""
    if call.queue is not None:
        b2bua.acd.caller_hung_up(call.call_id, now=now)
        # A callback's next offer must wait until this record is gone: call control's
        # pump drains once the ending is over.
        if call.call_id not in callback.desk(b2bua).waiting:
            drain(b2bua, now=now)


def phone_changed(b2bua: B2bua, operator: str, reachable: bool, *, now: float) -> None:
    """A registration appeared or the last one went away."""
    if operator not in b2bua.acd.operator_ids():
        return
    if reachable:
        # Only a phone that appears logs its operator in (Asterisk's static member): a
        # refresh of the registration must not undo the operator's own `*40` logout.
        appeared = not b2bua.acd.operator_snapshot(operator, now=now).registered
        b2bua.acd.operator_registered(operator, now=now)
        if (
            appeared
            and b2bua.auto_login
            and str(b2bua.acd.operator_state(operator)) == "logged_out"
        ):
            b2bua.acd.operator_login(operator, now=now)
    else:
        b2bua.acd.operator_unregistered(operator, now=now)


def _announce(b2bua: B2bua, call: CallerLeg, command: ac.PlayAnnouncement) -> None:
    prompts = ["queue-position-pre", *number_prompts(command.position), "queue-position-post"]
    prompts += wait_prompts(command.expected_wait)
    b2bua.media.play(call.media_leg, prompts, language=call.language, play_id=-1)


def wait_prompts(expected_wait: float | None) -> list[str]:
    """Prompt ids that say the expected wait in whole minutes (nothing when unknown)."""
    if expected_wait is None:
        return []
    minutes = round(expected_wait / 60)
    if minutes < 1:
        return ["less-than-a-minute"]
    unit = "minute" if minutes == 1 else "minutes"
    return ["expected-wait-pre", *number_prompts(min(minutes, 199)), unit]


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
