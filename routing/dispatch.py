"""Call control's inputs, routed to the module that handles each: the endpoint's SIP
events and the media plane's facts.

A new request is an operator's feature code (`*41`..., `routing.feature_codes_glue`),
a request within a dialog (`routing.in_dialog`), an operator's consultation call of an
attended transfer (`routing.attended`) or a new call from the trunk, answered at once
(the IVR needs media, as Asterisk's Answer()). An INVITE without SDP gets our offer in
the 200 and its answer in the ACK (RFC 3264 §4) before the IVR starts. Anything else
(an operator's other calls) is refused 403.

Responses to our INVITEs go to whoever sent them: a re-INVITE (`routing.reinvite`), a
transfer target (`routing.transfer_target`), a consultation (`routing.attended`), else an
operator's or a callback citizen's leg (`routing.acd_glue`); a final response to our
BYE ends its dialog (RFC 3261 §15.1.1). A client transaction that times out or cannot
be sent counts as a 408 (§8.1.3.1), except that an unanswered re-INVITE ends the call
(§12.2.1.2); no ACK for our 2xx ends its call or feature call (§13.3.1.4).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from metrics.events import EventKind
from routing import (
    acd_glue,
    attended,
    feature_codes_glue,
    in_dialog,
    ivr_glue,
    reinvite,
    transfer_target,
)
from routing.legs import CallerLeg, Phase, answer_trunk_call
from routing.media_plane import (
    DigitDetected,
    MediaEvent,
    MediaTimedOut,
    PlaybackFinished,
    RecordingFinished,
)
from sip import events as tx
from sip.endpoint import IncomingRequest
from sip.transaction import ClientTransactionKey, TransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)


# -- SIP ------------------------------------------------------------------------------


def endpoint_event(b2bua: B2bua, event: object, *, now: float) -> None:
    """An event from the endpoint: new requests and the layer's call events."""
    if isinstance(event, IncomingRequest):
        _request(b2bua, event, now=now)
    elif isinstance(event, tx.ResponseReceived):
        _response(b2bua, event, now=now)
    elif isinstance(event, tx.AckReceived):
        in_dialog.ack(b2bua, event, now=now)
    elif isinstance(event, tx.CancelReceived):
        in_dialog.cancel(b2bua, event, now=now)
    elif isinstance(event, tx.TransactionTimedOut | tx.TransportFailed):
        _failure(b2bua, event.key, now=now)
    elif isinstance(event, tx.AckTimedOut):
        _ack_timeout(b2bua, event.call_id, now=now)


def _request(b2bua: B2bua, event: IncomingRequest, *, now: float) -> None:
    request = event.request
    feature = feature_codes_glue.command_for(event)
    if feature is not None:
        feature_codes_glue.handle(b2bua, event, feature, now=now)
    elif request.to.tag is not None or request.method in in_dialog.IN_DIALOG_METHODS:
        in_dialog.received(b2bua, event, now=now)
    elif attended.is_consultation(b2bua, event):
        # Before the trunk test: an operator's phone may share the trunk's host.
        attended.start(b2bua, event, now=now)
    elif request.method == "INVITE" and event.trunk:
        _new_call(b2bua, event, now=now)
    else:
        # Operators' other calls (transfers, internal numbers) are not served yet.
        b2bua.endpoint.reply(request, event.key, event.addr, 403, now=now)


def _new_call(b2bua: B2bua, event: IncomingRequest, *, now: float) -> None:
    call = answer_trunk_call(b2bua, event, now=now)
    if call is not None:
        b2bua.calls.add(call)
        arrived = {"caller": call.caller}
        if call.redirection is not None:
            # Reports tell switchboard and ricaduta calls apart by this tag.
            arrived["origin"] = call.redirection.tag
        b2bua.emit(EventKind.ARRIVED, call, now=now, data=arrived)
        if call.session is None or call.session.pending_offer is None:
            ivr_glue.start(b2bua, call, now=now)


def _response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> None:
    if event.key.method == "INVITE":
        handlers = (reinvite.response, transfer_target.response, attended.response)
        if not any(handle(b2bua, event, now=now) for handle in handlers):
            acd_glue.operator_response(b2bua, event, now=now)
    elif event.key.method == "BYE" and event.response.status >= 200:
        b2bua.calls.bye_answered(b2bua.dialogs, event.key, event.response, now=now)


def _failure(b2bua: B2bua, key: TransactionKey, *, now: float) -> None:
    if isinstance(key, ClientTransactionKey) and key.method == "BYE":
        b2bua.calls.bye_answered(b2bua.dialogs, key, None, now=now)
    elif isinstance(key, ClientTransactionKey) and (found := b2bua.reinvites.pop(key, None)):
        call = b2bua.calls.get(found[0])
        if call is not None:  # §12.2.1.2: no answer to a re-INVITE ends the dialog
            b2bua.hang_up(call, reason="re-INVITE unanswered", now=now)
    elif isinstance(key, ClientTransactionKey) and (
        transfer_target.failed(b2bua, key, now=now) or attended.failed(b2bua, key, now=now)
    ):
        return
    else:
        acd_glue.operator_failed(b2bua, key, now=now)


def _ack_timeout(b2bua: B2bua, call_id: str, *, now: float) -> None:
    # §13.3.1.4: no ACK for our 2xx; the session is not established, so end it.
    call = b2bua.calls.get(call_id)
    feature = b2bua.features.get(call_id)
    if call is not None:
        b2bua.hang_up(call, reason="no ACK", now=now)
    elif feature is not None:
        feature_codes_glue.hang_up(b2bua, feature, now=now)


# -- media ----------------------------------------------------------------------------


def media_event(b2bua: B2bua, event: MediaEvent, *, now: float) -> None:
    """A fact from the media plane, for a caller's leg, a transfer target's or a
    feature call's."""
    call = b2bua.calls.by_media_leg(event.leg)
    moved = b2bua.transfers.by_media_leg(event.leg) if call is None else None
    if moved is not None and (call := b2bua.calls.get(moved.call_id)) is not None:
        if isinstance(event, MediaTimedOut):
            b2bua.hang_up(call, reason="media timeout", now=now)
    elif call is not None:
        _on_media(b2bua, call, event, now=now)
    else:
        feature_codes_glue.media_event(b2bua, event, now=now)


def _on_media(b2bua: B2bua, call: CallerLeg, event: MediaEvent, *, now: float) -> None:
    if isinstance(event, DigitDetected) and event.leg == call.media_leg:
        ivr_glue.digit(b2bua, call, event.digit, now=now)
    elif isinstance(event, PlaybackFinished) and call.ivr is not None:
        call.ivr.prompt_finished(now=now, play_id=event.play_id)
        b2bua.ivr_fed(call)
    elif isinstance(event, PlaybackFinished) and call.phase is Phase.QUEUED:
        # An announcement ended: back to the music.
        ivr_glue.music_on_hold(b2bua, call)
    elif isinstance(event, MediaTimedOut):
        log.warning("media timeout on %s after %.0f s: hanging up", event.leg, event.silent_for)
        b2bua.hang_up(call, reason="media timeout", now=now)
    elif isinstance(event, RecordingFinished):
        voicemail = {"voicemail": event.path, "seconds": f"{event.seconds:.1f}"}
        b2bua.hang_up(call, reason="voicemail recorded", now=now, data=voicemail)
