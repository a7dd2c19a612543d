"""Call control, the B2BUA: trunk INVITE -> service -> IVR -> queue -> operator leg.

It joins the SIP endpoint (signalling), the media plane (RTP), the IVR runs, the ACD
engine and the event log, translating the facts of each into commands for the others.
It is pure: inputs carry `now`, the media plane and the event recorder are injected,
and the runtime re-arms one timer at `get_timer()`.

A caller's call is answered at once (the IVR needs media, as Asterisk's Answer()).
Ending rules: the caller hangs up -> every operator leg is cancelled or hung up; the
operator hangs up -> the caller is hung up; a media timeout hangs up both (§ issue 3).
Races are absorbed: a 2xx from an operator crossing our CANCEL is ACKed and hung up,
2xx retransmissions are ACKed again (by the transaction layer, from the ACK we sent),
and every BYE we send ends its dialog when its transaction ends (RFC 3261 §15.1.1).
Operators' feature codes (`*41`...) are served in `routing.feature_codes_glue`.

In-dialog requests: re-INVITEs (hold, unhold, refreshes, RFC 3264 §8) are answered and
passed to the other party in `routing.reinvite`; REFER from an operator's phone is a
blind transfer (RFC 3515) to a referent, a queue or another operator, in
`routing.transfer`. An INVITE without SDP gets our offer in the 200 and its answer in
the ACK (RFC 3264 §4) before the IVR starts.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from acd.engine import AcdEngine
from acd.errors import AcdError
from ivr.config import ServiceConfig
from media.sdp import SdpError, SessionDescription
from media.session import G729, PCMA, PCMU, Answer, Codec, NoCommonCodec, negotiate
from metrics.events import EventKind
from routing import (
    acd_glue,
    attended,
    callback,
    feature_codes_glue,
    ivr_glue,
    reinvite,
    transfer,
)
from routing.calendar import Calendar
from routing.calls import CallRegistry
from routing.dialplan import DialPlan
from routing.diversion import Classifier
from routing.legs import CallerLeg, OperatorLeg, Phase, Transfers, answer_trunk_call
from routing.media_plane import (
    DigitDetected,
    MediaEvent,
    MediaPlane,
    MediaTimedOut,
    PlaybackFinished,
    RecordingFinished,
)
from routing.recorder import Recorder
from sip import events as tx
from sip.dialog import Dialog, DialogId, DialogSet
from sip.endpoint import Endpoint, IncomingRequest
from sip.errors import ProtocolError
from sip.ids import IdFactory
from sip.transaction import Addr, ClientTransactionKey, TransactionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class B2buaConfig:
    """Call-control settings."""

    local: Addr
    """Our SIP address (for Contact) and the IP our media is reached at."""
    user_agent: str = "Centralino"
    codecs: tuple[Codec, ...] = (PCMU, PCMA, G729)
    preference: tuple[str, ...] | None = None
    inband_dtmf: Callable[[str], bool] = lambda host: False
    """Per trunk address: detect DTMF tones when the trunk offers no telephone-event."""
    auto_login: bool = True
    """Log an operator in when their phone registers (as Asterisk's static members)."""
    hold_music: bool = True
    """A party put on hold hears music on hold (else silence, `inactive`)."""
    transfer_timeout: float = 20.0
    """A transfer target that does not answer within this time sends the call back."""
    referent_trunk: Addr | None = None
    """Where referents' numbers are dialed; None: the calling trunk's host, port 5060."""
    queue_prefix: str = "queue-"
    """A Refer-To user `<prefix><queue>` transfers the caller to that queue."""
    callback_ring_timeout: float = callback.RING_TIMEOUT
    """Seconds a citizen's phone may ring when we call them back."""


class B2bua:
    """Every call of the switch."""

    def __init__(
        self,
        config: B2buaConfig,
        *,
        endpoint: Endpoint,
        media: MediaPlane,
        acd: AcdEngine,
        services: Mapping[str, ServiceConfig],
        dialplan: DialPlan,
        calendar: Calendar,
        recorder: Recorder,
        ids: IdFactory,
        fraction: Callable[[], float],
        wall: Callable[[float], datetime],
        notices: Callable[[str, str], str | None] = lambda service, language: None,
        classifier: Classifier | None = None,
    ) -> None:
        self.config = config
        self.classifier = classifier
        """Recognises switchboard and ricaduta calls (routing/diversion.py)."""
        self.endpoint = endpoint
        self.media = media
        self.acd = acd
        self.services = services
        self.dialplan = dialplan
        self.calendar = calendar
        self.record = recorder
        self.ids = ids
        self.wall = wall
        self.notices = notices
        self.auto_login = config.auto_login
        self.dialogs = DialogSet(fraction=fraction)
        self.calls = CallRegistry()
        self.features = feature_codes_glue.FeatureCalls()
        self.callbacks = callback.CallbackDesk(
            trunk=config.referent_trunk, ring_timeout=config.callback_ring_timeout
        )
        self._session_ids = 0
        # IVR runs are drained and their timers scheduled only when fed: scanning every
        # call after every datagram made the cost per call grow with the calls in progress.
        self._ivr_fed: set[str] = set()
        self._ivr_timers: list[tuple[float, str]] = []
        self.transfers = Transfers()
        self.consultations = attended.Consultations()
        self.reinvites: dict[ClientTransactionKey, tuple[str, CallerLeg | OperatorLeg]] = {}
        """Our re-INVITEs awaiting a final response, with their caller and leg."""
        self.glare: dict[DialogId, tuple[str, CallerLeg | OperatorLeg]] = {}
        """Legs whose re-INVITE got 491 and waits for the dialog's retry timer."""

    # -- inputs ------------------------------------------------------------------------

    def endpoint_event(self, event: object, *, now: float) -> None:
        """An event from the endpoint: new requests and the layer's call events."""
        self._guarded(lambda: self._endpoint_event(event, now=now), now=now)

    def media_event(self, event: MediaEvent, *, now: float) -> None:
        """A fact from the media plane."""
        self._guarded(lambda: self._media_event(event, now=now), now=now)

    def handle_timer(self, *, now: float) -> None:
        """Fire IVR, ACD and feature-call timers due at `now`; forget what the
        transaction layer has finished with (BYEs, released offers)."""
        self._guarded(lambda: self._handle_timer(now=now), now=now)

    def _guarded(self, step: Callable[[], None], *, now: float) -> None:
        for action in (step, lambda: self._pump(now=now)):
            try:
                action()
            except (ProtocolError, AcdError) as exc:
                # A peer's message our state cannot take (or a configuration gap the
                # engine names): that one input is refused, every other call goes on.
                log.warning("call event refused: %s", exc)

    def _media_event(self, event: MediaEvent, *, now: float) -> None:
        call = self.calls.by_media_leg(event.leg)
        moved = self.transfers.by_media_leg(event.leg) if call is None else None
        if moved is not None and (call := self.calls.get(moved.call_id)) is not None:
            if isinstance(event, MediaTimedOut):
                self.hang_up(call, reason="media timeout", now=now)
        elif call is not None:
            self._on_media(call, event, now=now)
        else:
            feature_codes_glue.media_event(self, event, now=now)

    def _handle_timer(self, *, now: float) -> None:
        self.acd.handle_timer(now=now)
        feature_codes_glue.handle_timer(self, now=now)
        transfer.handle_timer(self, now=now)
        self.dialogs.handle_timer(now=now)
        while (retry := self.dialogs.next_event()) is not None:
            reinvite.retry_due(self, retry, now=now)
        layer = self.endpoint.layer
        self.calls.reap(self.dialogs, lambda key: layer.client_state(key) is not None, now=now)
        acd_glue.reap_dead_offers(self, now=now)
        while (deadline := self._ivr_deadline()) is not None and deadline <= now:
            _, call_id = heapq.heappop(self._ivr_timers)
            call = self.calls.get(call_id)
            if call is not None and call.ivr is not None:
                call.ivr.handle_timer(now=now)
                self.ivr_fed(call)

    def get_timer(self) -> float | None:
        """The earliest IVR, ACD or feature-call deadline."""
        timers = (
            self.acd.get_timer(),
            self.features.get_timer(),
            self._ivr_deadline(),
            self.transfers.get_timer(),
            self.dialogs.get_timer(),
            callback.get_timer(self),
        )
        due = [t for t in timers if t is not None]
        return min(due) if due else None

    def ivr_fed(self, call: CallerLeg) -> None:
        """The call's IVR run took an input: drain it and re-arm its timer in `_pump`."""
        self._ivr_fed.add(call.call_id)

    def _ivr_deadline(self) -> float | None:
        """The earliest live IVR deadline; entries of ended or re-armed runs are dropped."""
        heap = self._ivr_timers
        while heap:
            at, call_id = heap[0]
            call = self.calls.get(call_id)
            if call is not None and call.ivr is not None and call.ivr.get_timer() == at:
                return at
            heapq.heappop(heap)
        return None

    def operator_reachable(self, operator: str, reachable: bool, *, now: float) -> None:
        """An operator's phone registered, or its last binding went away."""
        acd_glue.phone_changed(self, operator, reachable, now=now)
        self._pump(now=now)

    @property
    def active_calls(self) -> int:
        """Calls with a leg up (not callbacks waiting: `callback.drop_at_shutdown`)."""
        return len(self.calls)

    def next_session(self) -> int:
        """A fresh SDP session id (RFC 8866 §5.2: unique per session we describe)."""
        self._session_ids += 1
        return self._session_ids

    def notice_for(self, service: str) -> Callable[[], str | None]:
        """The service notice lookup an IVR run asks when it reaches a notice node."""
        return lambda: self.notices(service, "it")

    # -- dispatch ----------------------------------------------------------------------

    def _endpoint_event(self, event: object, *, now: float) -> None:
        if isinstance(event, IncomingRequest):
            self._on_request(event, now=now)
        elif isinstance(event, tx.ResponseReceived):
            self._on_response(event, now=now)
        elif isinstance(event, tx.AckReceived):
            self._on_ack(event, now=now)
        elif isinstance(event, tx.CancelReceived):
            self._on_cancel(event, now=now)
        elif isinstance(event, tx.TransactionTimedOut | tx.TransportFailed):
            self._on_failure(event.key, now=now)
        elif isinstance(event, tx.AckTimedOut):
            self._on_ack_timeout(event.call_id, now=now)

    def _on_request(self, event: IncomingRequest, *, now: float) -> None:
        request = event.request
        feature = feature_codes_glue.command_for(event)
        if feature is not None:
            feature_codes_glue.handle(self, event, feature, now=now)
        elif request.to.tag is not None or request.method in ("BYE", "INFO", "REFER", "NOTIFY"):
            self._in_dialog(event, now=now)
        elif attended.is_consultation(self, event):
            # Before the trunk test: an operator's phone may share the trunk's host.
            attended.start(self, event, now=now)
        elif request.method == "INVITE" and event.trunk:
            self._new_call(event, now=now)
        else:
            # Operators' other calls (transfers, internal numbers) are not served yet.
            self.endpoint.reply(request, event.key, event.addr, 403, now=now)

    def _on_response(self, event: tx.ResponseReceived, *, now: float) -> None:
        if event.key.method == "INVITE":
            handlers = (reinvite.response, transfer.response, attended.response)
            if not any(handle(self, event, now=now) for handle in handlers):
                acd_glue.operator_response(self, event, now=now)
        elif event.key.method == "BYE" and event.response.status >= 200:
            self.calls.bye_answered(self.dialogs, event.key, event.response, now=now)

    def _on_failure(self, key: TransactionKey, *, now: float) -> None:
        if isinstance(key, ClientTransactionKey) and key.method == "BYE":
            self.calls.bye_answered(self.dialogs, key, None, now=now)
        elif isinstance(key, ClientTransactionKey) and (found := self.reinvites.pop(key, None)):
            call = self.calls.get(found[0])
            if call is not None:  # §12.2.1.2: no answer to a re-INVITE ends the dialog
                self.hang_up(call, reason="re-INVITE unanswered", now=now)
        elif isinstance(key, ClientTransactionKey) and (
            transfer.failed(self, key, now=now) or attended.failed(self, key, now=now)
        ):
            return
        else:
            acd_glue.operator_failed(self, key, now=now)

    def _on_ack_timeout(self, call_id: str, *, now: float) -> None:
        # §13.3.1.4: no ACK for our 2xx; the session is not established, so end it.
        call = self.calls.get(call_id)
        feature = self.features.get(call_id)
        if call is not None:
            self.hang_up(call, reason="no ACK", now=now)
        elif feature is not None:
            feature_codes_glue.hang_up(self, feature, now=now)

    def _pump(self, *, now: float) -> None:
        """Drain IVR and ACD commands until nothing moves."""
        moved = True
        while moved:
            moved = False
            while self._ivr_fed:
                call = self.calls.get(self._ivr_fed.pop())
                if call is not None and call.ivr is not None:
                    moved |= ivr_glue.drain(self, call, now=now)
                    self._arm_ivr(call)
            moved |= acd_glue.drain(self, now=now)

    def _arm_ivr(self, call: CallerLeg) -> None:
        timer = call.ivr.get_timer() if call.ivr is not None else None
        if timer is not None:
            heapq.heappush(self._ivr_timers, (timer, call.call_id))

    # -- a new call from the trunk -----------------------------------------------------

    def _new_call(self, event: IncomingRequest, *, now: float) -> None:
        call = answer_trunk_call(self, event, now=now)
        if call is not None:
            self.calls.add(call)
            arrived = {"caller": call.caller}
            if call.redirection is not None:
                # Reports tell switchboard and ricaduta calls apart by this tag.
                arrived["origin"] = call.redirection.tag
            self.emit(EventKind.ARRIVED, call, now=now, data=arrived)
            if call.session is None or call.session.pending_offer is None:
                ivr_glue.start(self, call, now=now)

    def open_answer(
        self, offer: SessionDescription, media_leg: str
    ) -> Answer | NoCommonCodec | None:
        """Open a media leg and answer an SDP offer on it (RFC 3264 §6); the leg is
        closed again when no codec is common or the offer is unusable (SdpError, e.g.
        no c= line, is raised after closing it). None when no RTP port is free."""
        local = self.open_leg(media_leg)
        if local is None:
            return None
        try:
            answer = negotiate(
                offer,
                supported=self.config.codecs,
                preference=self.config.preference,
                local_addr=local[0],
                local_port=local[1],
                session_id=self.next_session(),
                agent="centralino",
            )
        except SdpError:
            self.media.close_leg(media_leg)
            raise
        if isinstance(answer, NoCommonCodec):
            self.media.close_leg(media_leg)
        return answer

    def open_leg(self, media_leg: str) -> Addr | None:
        """Open a media leg; None (logged) when the RTP port range is exhausted."""
        try:
            return self.media.open_leg(media_leg)
        except OSError as exc:
            log.error("no media for %s: %s", media_leg, exc)
            return None

    def contact(self) -> str:
        """Our Contact header value (RFC 3261 §8.1.1.8)."""
        host, port = self.config.local
        host = f"[{host}]" if ":" in host else host
        return f"<sip:centralino@{host}:{port}>"

    # -- in-dialog requests ------------------------------------------------------------

    def _in_dialog(self, event: IncomingRequest, *, now: float) -> None:
        request, key, addr = event.request, event.key, event.addr
        found = self.dialogs.receive_request(request)
        if not isinstance(found, Dialog):
            status = found.status if found is not None else 481
            retry = found.retry_after if found is not None else None
            extra = () if retry is None else (("Retry-After", str(retry)),)
            self.endpoint.reply(request, key, addr, status, now=now, extra=extra)
            return
        located = self.locate(request.call_id)
        if request.method == "BYE":
            self.endpoint.reply(request, key, addr, 200, now=now)
            feature = self.features.get(request.call_id)
            if located is not None:
                self._on_bye(*located, now=now)
            elif attended.bye(self, request.call_id, now=now):
                return
            elif feature is not None:
                feature_codes_glue.ended(self, feature)
        elif request.method == "INFO":
            self.endpoint.reply(request, key, addr, 200, now=now)
            if located is not None and located[1] is located[0]:
                ivr_glue.info_digit(self, located[0], request, now=now)
        elif located is not None and request.method == "INVITE":
            reinvite.received(self, event, *located, now=now)
        elif located is not None and request.method == "REFER":
            refer = attended if attended.has_replaces(event) else transfer
            refer.refer_received(self, event, *located, now=now)
        else:
            # Re-INVITEs of feature calls and NOTIFYs out of any subscription of ours.
            status = 488 if request.method == "INVITE" else 501
            response = self.endpoint.reply(request, key, addr, status, now=now)
            # §14.2: the refused re-INVITE is over; the next one must not get a 500.
            self.dialogs.response_sent(request, response)

    def locate(self, call_id: str) -> tuple[CallerLeg, CallerLeg | OperatorLeg] | None:
        """The call and the leg (its caller's, an operator's, a transfer target's) that
        a dialog's Call-ID belongs to."""
        call = self.calls.get(call_id)
        if call is not None:
            return call, call
        found = self.calls.leg_by_call_id(call_id)
        if found is not None:
            return found
        moved = self.transfers.by_leg_call_id(call_id)
        owner = self.calls.get(moved.call_id) if moved is not None else None
        if moved is None or owner is None or moved.leg is None:
            return None
        return owner, moved.leg

    def _on_bye(self, call: CallerLeg, leg: CallerLeg | OperatorLeg, *, now: float) -> None:
        moved = self.transfers.of_call(call.call_id)
        if leg is call or callback.citizen_hung_up(leg):
            self._finish(call, by_caller=True, now=now)
        elif moved is not None and leg is moved.leg:
            transfer.target_hung_up(self, call, moved, now=now)
        elif moved is not None and isinstance(leg, OperatorLeg) and not moved.connected:
            transfer.operator_left(self, call, leg, now=now)
        elif isinstance(leg, OperatorLeg):
            leg.dialog = None  # their BYE ended that dialog: no BYE back
            self.hang_up(
                call, reason="operator hung up", now=now, by="operator", operator=leg.operator
            )

    def _on_ack(self, event: tx.AckReceived, *, now: float) -> None:
        self.dialogs.receive_request(event.request)
        located = self.locate(event.request.call_id)
        if located is None:
            return
        call, leg = located
        answered = reinvite.ack_answer(self, leg, event.request)
        starting = leg is call and call.phase is Phase.IVR and call.ivr is None
        if answered is True and starting:
            ivr_glue.start(self, call, now=now)
        elif answered is False and starting:
            # RFC 3264 §4: our offer in the 200 got no usable answer in the ACK.
            self.hang_up(call, reason="no usable answer in the ACK", now=now, cause=488)

    def _on_cancel(self, event: tx.CancelReceived, *, now: float) -> None:
        call = self.calls.get(event.request.call_id)
        if call is not None and event.invite_terminated:
            self._finish(call, by_caller=True, now=now)

    def _on_media(self, call: CallerLeg, event: MediaEvent, *, now: float) -> None:
        if isinstance(event, DigitDetected) and event.leg == call.media_leg:
            ivr_glue.digit(self, call, event.digit, now=now)
        elif isinstance(event, PlaybackFinished) and call.ivr is not None:
            call.ivr.prompt_finished(now=now, play_id=event.play_id)
            self.ivr_fed(call)
        elif isinstance(event, PlaybackFinished) and call.phase is Phase.QUEUED:
            # An announcement ended: back to the music.
            ivr_glue.music_on_hold(self, call)
        elif isinstance(event, MediaTimedOut):
            log.warning("media timeout on %s after %.0f s: hanging up", event.leg, event.silent_for)
            self.hang_up(call, reason="media timeout", now=now)
        elif isinstance(event, RecordingFinished):
            voicemail = {"voicemail": event.path, "seconds": f"{event.seconds:.1f}"}
            self.hang_up(call, reason="voicemail recorded", now=now, data=voicemail)

    # -- ending ------------------------------------------------------------------------

    def hang_up(
        self,
        call: CallerLeg,
        *,
        reason: str,
        now: float,
        by: str = "switch",
        operator: str | None = None,
        data: Mapping[str, str] | None = None,
        cause: int | None = None,
    ) -> None:
        """We end the call: BYE the caller (and any operator), release media.

        The `ended` event says who ended it (`by`) and, when the switch did, why; a
        `cause` goes in the BYE's Reason header (RFC 3326)."""
        log.info("hanging up %s: %s", call.call_id, reason)
        text = reason.replace('"', "'")
        extra = () if cause is None else (("Reason", f'SIP;cause={cause};text="{text}"'),)
        self.send_bye(call.dialog, call.addr, now=now, extra=extra)
        call.dialog = None
        ended = {"by": by, **({"reason": reason} if by == "switch" else {}), **(data or {})}
        self._finish(call, by_caller=False, now=now, operator=operator, ended=ended)

    def _finish(
        self,
        call: CallerLeg,
        *,
        by_caller: bool,
        now: float,
        operator: str | None = None,
        ended: Mapping[str, str] | None = None,
    ) -> None:
        if call.phase is Phase.ENDED:
            return
        callback.line_ended(self, call, now=now, operator=operator, data=ended or {"by": "caller"})
        call.phase = Phase.ENDED
        if call.ivr is not None and by_caller:
            call.ivr.hang_up(now=now)
            ivr_glue.drain(self, call, now=now)
        call.ivr = None
        acd_glue.caller_gone(self, call, now=now)
        transfer.caller_gone(self, call, now=now)
        for leg in list(call.operator_legs.values()):
            acd_glue.release_leg(self, call, leg, now=now)
        self.media.close_leg(call.media_leg)
        self.calls.remove(call)

    def send_bye(
        self,
        dialog: Dialog | None,
        addr: Addr,
        *,
        now: float,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """BYE a dialog if it is still up; its transaction's end ends the dialog."""
        if dialog is None:
            return
        try:
            bye = dialog.create_request("BYE", extra=extra)
        except ProtocolError:
            return
        self.calls.bye_sent(self.endpoint.send_request(bye, addr, now=now), bye)

    # -- the event log -----------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        call: CallerLeg,
        *,
        now: float,
        operator: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        """Record a call fact (the first queue entry is kept for transfers back)."""
        if kind is EventKind.QUEUED and call.queued_at is None:
            call.queued_at = now
        self.record(
            kind,
            at=now,
            call_id=call.call_id,
            service=call.service,
            sub_service=call.sub_service,
            queue=call.queue,
            operator=operator,
            data=data or {},
        )
