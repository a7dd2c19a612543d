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

Every input is routed to the module handling it in `routing.dispatch` (requests
within a dialog in `routing.in_dialog`); this class holds the state they share, the
timers, and what they all do: open media, hang up, log call facts.
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
    callback_dial,
    dispatch,
    feature_codes_glue,
    ivr_glue,
    reinvite,
    transfer_target,
)
from routing.calendar import Calendar
from routing.calls import CallRegistry
from routing.dialplan import DialPlan
from routing.diversion import Classifier
from routing.legs import CallerLeg, OperatorLeg, Phase, Transfers
from routing.media_plane import MediaEvent, MediaPlane
from routing.recorder import Recorder
from sip.dialog import Dialog, DialogId, DialogSet
from sip.endpoint import Endpoint
from sip.errors import ProtocolError
from sip.ids import IdFactory
from sip.transaction import Addr, ClientTransactionKey

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
        self._guarded(lambda: dispatch.endpoint_event(self, event, now=now), now=now)

    def media_event(self, event: MediaEvent, *, now: float) -> None:
        """A fact from the media plane."""
        self._guarded(lambda: dispatch.media_event(self, event, now=now), now=now)

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

    def _handle_timer(self, *, now: float) -> None:
        self.acd.handle_timer(now=now)
        feature_codes_glue.handle_timer(self, now=now)
        transfer_target.handle_timer(self, now=now)
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
            callback_dial.get_timer(self),
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

    # -- draining IVR runs and the ACD -----------------------------------------------

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

    # -- shared by every module ------------------------------------------------------

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
        self.finish(call, by_caller=False, now=now, operator=operator, ended=ended)

    def finish(
        self,
        call: CallerLeg,
        *,
        by_caller: bool,
        now: float,
        operator: str | None = None,
        ended: Mapping[str, str] | None = None,
    ) -> None:
        """The call is over (the caller left, `by_caller`, or we hung up): stop its IVR,
        release its queue place, transfer target and operator legs, close its media."""
        if call.phase is Phase.ENDED:
            return
        if by_caller and operator is None:
            operator = call.bridged_to  # who the caller was talking to, if anyone
        callback.line_ended(self, call, now=now, operator=operator, data=ended or {"by": "caller"})
        call.phase = Phase.ENDED
        if call.ivr is not None and by_caller:
            call.ivr.hang_up(now=now)
            ivr_glue.drain(self, call, now=now)
        call.ivr = None
        acd_glue.caller_gone(self, call, now=now)
        transfer_target.caller_gone(self, call, now=now)
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
