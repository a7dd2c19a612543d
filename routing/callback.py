"""Callbacks keeping the caller's place (issue 5): the switch's side of `acd.callback`.

1. A queued caller presses the queue's `callback_digit`: they hear a confirmation
   (`CONFIRM_PROMPTS`), then `AcdEngine.request_callback` keeps their place with the
   number of the INVITE's From user, and the switch hangs up. That is no end of the call:
   the log says `queued` again with `callback: requested` (docs/events.md), and `ended`
   comes once, when the call really ends. A caller who hangs up during the confirmation
   is called back all the same.
2. When the turn comes the engine offers the call as usual (`OfferCall` with
   `callback_number`): a new caller-side record, made from the first one, stands for
   the call while nobody is on the line (`revive`), and the operator's INVITE carries
   `X-Centralino-Callback`.
3. The operator answers (`routing.callback_dial`): `PlaceCallback` INVITEs the number
   through the trunk (RFC 3261 §13.2.1, with Expires, §20.19); its 2xx is ACKed and
   bridged to the operator and `callback_answered` starts the conversation (`answered`,
   `callback: true`); from then on the citizen is the caller's side of the call
   (`legs.caller_side`): their BYE is the caller's hang-up, their re-INVITEs hold and
   resume as a caller's do. A refusal, a timeout or an operator who hangs up first is
   `callback_failed`: the operator is hung up and freed, and the engine offers the call
   again after its retry delay, up to its attempts; after the last one the call ends
   (`overflowed` with reason `callback-failed`, then `ended`). Callbacks waiting for
   their turn are not calls in progress (`B2bua.active_calls`): a shutdown does not wait
   for them. The engine keeps them in memory only: a clean shutdown saves them for the
   next start (`routing.callback_store`), and `drop_at_shutdown`, when they cannot be
   saved, logs how many are lost and ends them in the event log.

The citizen's leg is kept among the call's operator legs under the key `CITIZEN`, so
in-dialog BYEs, CANCEL and late 2xx find it as they find an operator's leg.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acd import events as ac
from acd.errors import AcdError
from metrics.events import EventKind
from routing.legs import CITIZEN, CallerLeg, OperatorLeg, Phase
from sip.transaction import Addr

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

CONFIRM_PROMPTS = ("beep", "goodbye")
"""What a caller hears after pressing the callback digit (existing catalogue prompts)."""
CONFIRM_PLAY_ID = -2
RING_TIMEOUT = 45.0
"""Seconds the citizen's phone may ring before the attempt fails."""
TRUNK_PORT = 5060


@dataclass(slots=True)
class CallbackDesk:
    """Per call control: where callbacks go out, and the calls in each step."""

    trunk: Addr | None = None
    """The trunk's SIP address; None: the address each call came from."""
    ring_timeout: float = RING_TIMEOUT
    confirming: set[str] = field(default_factory=set)
    confirmed: list[str] = field(default_factory=list)
    waiting: dict[str, CallerLeg] = field(default_factory=dict)
    """The first caller record of every call the engine holds for a callback."""
    dialing: dict[str, float] = field(default_factory=dict)
    """Call id -> when the citizen's phone has rung long enough."""
    priority: dict[str, int] = field(default_factory=dict)
    """The queue priority of the calls queued with one other than 0 (for a restart)."""
    attempts: dict[str, int] = field(default_factory=dict)
    """The callback attempts already failed, per call (for a restart)."""


def desk(b2bua: B2bua) -> CallbackDesk:
    """The callback state of this call control."""
    return b2bua.callbacks


def is_callback(b2bua: B2bua, call: CallerLeg) -> bool:
    """True for the record of a call being called back (no caller on the line)."""
    return call.call_id in desk(b2bua).waiting and call.dialog is None


# -- 1. the caller asks -------------------------------------------------------------------


def digit(b2bua: B2bua, call: CallerLeg, value: str) -> bool:
    """A digit from a queued caller: True if it asked for a callback."""
    book = desk(b2bua)
    if call.phase is not Phase.QUEUED or call.queue is None or call.call_id in book.confirming:
        return False
    config = b2bua.acd.queue_config(call.queue)
    if config is None or config.callback_digit != value or not caller_number(call):
        return False
    book.confirming.add(call.call_id)
    b2bua.media.play(
        call.media_leg, CONFIRM_PROMPTS, language=call.language, play_id=CONFIRM_PLAY_ID
    )
    return True


def caller_number(call: CallerLeg) -> str:
    """The number to call back: the user part of the caller's From URI."""
    try:
        return call.invite.from_.uri.user or ""
    except ValueError:
        return ""


def confirmation_done(b2bua: B2bua, call: CallerLeg) -> bool:
    """The prompt of a confirming caller ended: True if it was the confirmation (they
    are hung up at the next `hang_up_confirmed`, which has the time)."""
    book = desk(b2bua)
    if call.call_id not in book.confirming:
        return False
    book.confirming.discard(call.call_id)
    book.confirmed.append(call.call_id)
    return True


def hang_up_confirmed(b2bua: B2bua, *, now: float) -> None:
    """Keep each confirmed caller's place in the engine, then hang them up."""
    book = desk(b2bua)
    while book.confirmed:
        call = b2bua.calls.get(book.confirmed.pop())
        if call is not None and call.phase is Phase.QUEUED and _request(b2bua, call, now=now):
            b2bua.hang_up(call, reason="callback", now=now)


def answered_meanwhile(b2bua: B2bua, call: CallerLeg) -> None:
    """An operator answered while the caller heard the confirmation: no callback."""
    desk(b2bua).confirming.discard(call.call_id)


def line_ended(
    b2bua: B2bua,
    call: CallerLeg,
    *,
    now: float,
    operator: str | None,
    data: Mapping[str, str],
) -> None:
    """The caller's line of `call` closed: log `ended`, unless the call lives on as a
    callback: its caller asked for one (one hanging up while hearing the confirmation is
    called back all the same), or the citizen never joined this attempt (the engine
    retries it, or gives up: `forget`)."""
    book = desk(b2bua)
    if call.call_id in book.confirming:
        book.confirming.discard(call.call_id)
        _request(b2bua, call, now=now)
    citizen = call.operator_legs.get(CITIZEN)
    if call.call_id in book.waiting and (citizen is None or not citizen.answered):
        return
    book.waiting.pop(call.call_id, None)  # a callback's conversation is over: keep nothing
    b2bua.emit(EventKind.ENDED, call, now=now, operator=operator, data=data)


def citizen_hung_up(leg: CallerLeg | OperatorLeg) -> bool:
    """A BYE came on `leg`: True if it is a callback's citizen, who is the caller of the
    call (their BYE ended their dialog: no BYE goes back)."""
    if isinstance(leg, OperatorLeg) and leg.operator == CITIZEN:
        leg.dialog = None
        return True
    return False


def _request(b2bua: B2bua, call: CallerLeg, *, now: float) -> bool:
    try:
        b2bua.acd.request_callback(call.call_id, number=caller_number(call), now=now)
    except AcdError as exc:  # answered or gone meanwhile
        log.info("call %s: no callback: %s", call.call_id, exc)
        return False
    desk(b2bua).waiting[call.call_id] = dataclasses.replace(
        call, media_leg=f"{call.call_id}/callback", operator_legs={}, dialog=None, ivr=None
    )
    return True


# -- 2. the turn comes ---------------------------------------------------------------------


def revive(b2bua: B2bua, call_id: str) -> CallerLeg | None:
    """A fresh record for a callback offered to an operator (None: not one of ours)."""
    first = desk(b2bua).waiting.get(call_id)
    if first is None or b2bua.calls.get(call_id) is not None:
        return None
    call = dataclasses.replace(first, operator_legs={}, phase=Phase.QUEUED, bridged_to=None)
    b2bua.calls.add(call)
    return call


def forget(b2bua: B2bua, fact: ac.Output) -> None:
    """Note what a restart needs (a queued call's priority, a callback's failed
    attempts) and drop what a call's end leaves (the engine's last word on it); a
    callback the engine gives up on ends here in the log, neither answered nor abandoned."""
    book = desk(b2bua)
    if isinstance(fact, ac.CallQueued) and fact.priority:
        book.priority[fact.call_id] = fact.priority
    elif isinstance(fact, ac.CallbackFailed) and not fact.final:
        book.attempts[fact.call_id] = fact.attempt
    ends = (ac.CallEnded, ac.CallAbandoned, ac.CallOverflowed)
    if isinstance(fact, ends) or (isinstance(fact, ac.CallbackFailed) and fact.final):
        first = book.waiting.pop(fact.call_id, None)
        for notes in (book.dialing, book.priority, book.attempts):
            notes.pop(fact.call_id, None)
        if first is not None and isinstance(fact, ac.CallbackFailed):
            _log_given_up(b2bua, first, "callback-failed", now=fact.at)


def _log_given_up(b2bua: B2bua, call: CallerLeg, reason: str, *, now: float) -> None:
    overflowed = {"reason": reason, "action": "callback"}
    b2bua.emit(EventKind.OVERFLOWED, call, now=now, data=overflowed)
    ended = {"by": "switch", "reason": reason.replace("-", " ")}
    b2bua.emit(EventKind.ENDED, call, now=now, data=ended)


def drop_at_shutdown(b2bua: B2bua, *, now: float) -> int:
    """The switch stops and the callbacks still waiting for their turn (no leg up)
    cannot be saved: they are lost with the engine's memory. Log how many per queue
    (never the numbers: personal data) and end each in the event log; the count is
    returned. Calls in progress are hung up by the caller of this (their record is
    live), not here."""
    book = desk(b2bua)
    dropped = [c for c in book.waiting.values() if b2bua.calls.get(c.call_id) is None]
    for queue, count in sorted(Counter(c.queue or "" for c in dropped).items()):
        log.warning("shutdown: %d pending callbacks of queue %s are dropped", count, queue)
    for first in dropped:
        del book.waiting[first.call_id]
        _log_given_up(b2bua, first, "shutdown", now=now)
    return len(dropped)
