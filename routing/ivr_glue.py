"""Between a caller's IVR run and the rest: prompts to the media plane, digits to the run,
queue entry to the ACD, IVR facts to the event log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivr import events as iv
from ivr.engine import IvrRun
from media.dtmf_info import DtmfInfoError, parse_dtmf_info
from metrics.events import EventKind
from routing import callback
from routing.calendar import Closed
from routing.legs import CallerLeg, Phase
from sip.message import Request

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)
MUSIC_ON_HOLD = "music-on-hold"


def start(b2bua: B2bua, call: CallerLeg, *, now: float) -> None:
    """Enter the service's IVR, open or closed by its calendar at this instant."""
    service = b2bua.services[call.service]
    state = b2bua.calendar.state(call.service, b2bua.wall(now))
    if isinstance(state, Closed):
        b2bua.emit(EventKind.AFTER_HOURS, call, now=now, data={"reason": state.reason})
    elif call.redirection is not None:
        # A ricaduta or switchboard caller already waited on an extension: straight to
        # Agenzia's queue, no welcome again (out of hours they get the service's IVR).
        redirect = call.redirection
        _enqueue(b2bua, call, iv.EnqueueCall(queue=redirect.queue, priority=0, skill=""), now=now)
        return
    call.ivr = IvrRun(
        service,
        now=now,
        is_open=state,
        notice=b2bua.notice_for(call.service),
        service=call.service,
    )
    call.language = call.ivr.language
    b2bua.ivr_fed(call)


def drain(b2bua: B2bua, call: CallerLeg, *, now: float) -> bool:
    """Carry out the run's commands and log its facts; True if anything happened."""
    run = call.ivr
    if run is None:
        return False
    moved = False
    while (fact := run.next_event()) is not None:
        moved = True
        _log_fact(b2bua, call, fact, now=now)
    while call.ivr is run and (command := run.next_command()) is not None:
        moved = True
        _command(b2bua, call, command, now=now)
    return moved


def _command(b2bua: B2bua, call: CallerLeg, command: iv.Command, *, now: float) -> None:
    if isinstance(command, iv.PlayPrompt):
        call.language = command.language
        b2bua.media.play(
            call.media_leg, command.prompts, language=command.language, play_id=command.play_id
        )
    elif isinstance(command, iv.StopPrompt):
        b2bua.media.stop_playback(call.media_leg)
    elif isinstance(command, iv.EnqueueCall):
        _enqueue(b2bua, call, command, now=now)
    elif isinstance(command, iv.StartVoicemail):
        call.phase = Phase.VOICEMAIL
        call.ivr = None
        name = f"{command.mailbox}-{_safe(call.call_id)}"
        b2bua.media.record(call.media_leg, name=name, max_seconds=command.max_seconds)
    elif isinstance(command, iv.HangUp):
        call.ivr = None
        b2bua.hang_up(call, reason=f"IVR: {command.reason}", now=now)
    elif isinstance(command, iv.TransferCall):
        log.warning("IVR transfer to %s is not available: hanging up", command.number)
        call.ivr = None
        b2bua.hang_up(call, reason="transfer not available", now=now)


def _enqueue(b2bua: B2bua, call: CallerLeg, command: iv.EnqueueCall, *, now: float) -> None:
    call.ivr = None
    call.phase = Phase.QUEUED
    call.queue = command.queue
    if command.queue != call.service:
        call.sub_service = command.queue
    music_on_hold(b2bua, call)
    b2bua.acd.enqueue(
        call.call_id, command.queue, priority=command.priority, caller=call.caller, now=now
    )


def music_on_hold(b2bua: B2bua, call: CallerLeg) -> None:
    """Loop the music while the caller waits (not after the callback confirmation: the
    caller is hung up instead)."""
    if callback.confirmation_done(b2bua, call):
        return
    b2bua.media.play(call.media_leg, (MUSIC_ON_HOLD,), language=call.language, play_id=0, loop=True)


def _safe(call_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in call_id)[:80]


def _log_fact(b2bua: B2bua, call: CallerLeg, fact: iv.Fact, *, now: float) -> None:
    if isinstance(fact, iv.IvrEntered):
        b2bua.emit(EventKind.IVR_ENTERED, call, now=fact.at, data={"language": fact.language})
    elif isinstance(fact, iv.WelcomeFinished):
        b2bua.emit(EventKind.WELCOME_FINISHED, call, now=fact.at, data={"node": fact.node})
    elif isinstance(fact, iv.DigitPressed):
        b2bua.emit(
            EventKind.DIGIT, call, now=fact.at, data={"digit": fact.digit, "node": fact.node}
        )
    elif isinstance(fact, iv.ChoiceMade):
        data = {"digit": fact.digit, "node": fact.node, "target": fact.target}
        b2bua.emit(EventKind.CHOICE, call, now=fact.at, data=data)
    elif isinstance(fact, iv.ChoiceFailed):
        # The event log has no kind for a failed choice; the retries show in the log.
        log.info(
            "call %s: %s at menu %s, attempt %d",
            call.call_id,
            fact.cause,
            fact.node,
            fact.attempt,
        )


def digit(b2bua: B2bua, call: CallerLeg, value: str, *, now: float) -> None:
    """A DTMF digit from the caller: to the IVR, or while queued the callback digit."""
    if call.ivr is not None:
        call.ivr.handle_digit(value, now=now)
        b2bua.ivr_fed(call)
    else:
        callback.digit(b2bua, call, value)


def info_digit(b2bua: B2bua, call: CallerLeg, request: Request, *, now: float) -> None:
    """A digit sent as SIP INFO (application/dtmf-relay or application/dtmf)."""
    try:
        received = parse_dtmf_info(request.headers.get("content-type") or "", request.body, now=now)
    except DtmfInfoError as exc:
        log.info("INFO without a usable digit: %s", exc)
        return
    digit(b2bua, call, received.digit, now=now)
