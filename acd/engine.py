"""The ACD engine: skill queues, operators and distribution, without I/O.

`AcdEngine` follows the aioquic shape (DESIGN.md, "The sans-I/O contract"): the
call-control layer feeds it inputs (a call to queue, an operator's phone ringing,
answering or refusing, an operator's control, a timer tick), each with `now` in
monotonic seconds, then drains `commands()` -- an ordered stream of imperative
commands (`OfferCall`, `CancelOffer`, `PlayAnnouncement`, `Overflow`,
`PlaceCallback`) and past-tense facts (`CallQueued`, `CallAnswered`,
`OperatorStateChanged`...) -- and re-arms its timer at `get_timer()`.

Offer outcomes, as an Asterisk or FreeSWITCH user expects them:

| what the operator's phone did         | the call                | the operator            |
| ------------------------------------- | ----------------------- | ----------------------- |
| answered                              | bridged (`CallAnswered`)| on call                 |
| rang `ring_timeout` s with no answer  | next operator           | paused, "no answer"     |
| busy (486)                            | next operator           | available, skipped for  |
|                                       |                         | `busy_delay` s          |
| declined (603)                        | next operator           | available, skipped for  |
|                                       |                         | `decline_delay` s       |
| unreachable (408, 480, 503, transport)| next operator           | available, skipped for  |
|                                       |                         | `unreachable_delay` s   |
| unregistered while ringing            | next operator           | available, not offered  |
|                                       |                         | until registered again  |

A decline does not pause: the operator chose to skip one call, which FreeSWITCH
models as a reject delay, not a break. With `ring-all` nobody is paused on no answer
either (that would pause the whole team): like every operator not paused on no
answer (`pause_on_no_answer: false`), they are skipped for `no_answer_delay` seconds
(Asterisk's `retry`), then the call rings them again.

Late inputs from the network are absorbed: a 200 OK for an offer already cancelled
(two operators racing in ring-all, a caller who hung up, an answer crossing the ring
timeout) yields a `CancelOffer` for that leg so routing releases it, and changes no
state; a hang-up or an end for a call already gone is ignored.

Every call that enters ends exactly one way: answered then `CallEnded`,
`CallAbandoned`, `CallOverflowed` out of the ACD (voicemail, message and hang-up; a
move to another queue is not an end), or, for a callback, `CallbackFailed` with
`final`. A callback is operator-first: the call is offered as usual with
`callback_number` set, and once the operator answers `PlaceCallback` asks routing to
dial the citizen; `callback_answered` or `callback_failed` reports how that went.

A blind transfer to another operator goes through the engine too (`acd.transfer`):
`transfer_to_operator` reserves the target as an offer does, `transfer_answered`
hands them the call, `transfer_failed` releases them; the call keeps its id and
ends once, with whoever has it last.
"""

from __future__ import annotations

import logging

from acd.callback import CallbackInputs
from acd.config import QueueConfig
from acd.core import ANNOUNCE, COOLDOWN, MAX_WAIT, RING, WRAPUP, refusal_delay
from acd.errors import (
    DuplicateCallError,
    InvalidInputError,
    UnknownQueueError,
)
from acd.events import (
    CallAbandoned,
    CallEnded,
    CancelOffer,
    OfferFailure,
    OfferRinging,
    Output,
    OverflowReason,
    PlaceCallback,
    PlayAnnouncement,
)
from acd.operator import Operator, OperatorInput
from acd.queue import Call, CallInput, CallState
from acd.staff import NO_ANSWER_REASON
from acd.transfer import TransferInputs
from acd.view import EngineViews

logger = logging.getLogger(__name__)
_REFUSALS = (OfferFailure.BUSY, OfferFailure.DECLINE, OfferFailure.UNREACHABLE)


class AcdEngine(CallbackInputs, TransferInputs, EngineViews):
    """Skill queues and operators; see the module docstring for the offer outcomes."""

    # ------------------------------------------------------------------ outputs

    def next_command(self) -> Output | None:
        """The next command or fact, in the order they arose; None when drained."""
        return self._out.popleft() if self._out else None

    def commands(self) -> list[Output]:
        """Drain every pending command and fact, in order."""
        items = list(self._out)
        self._out.clear()
        return items

    def get_timer(self) -> float | None:
        return self._timers.earliest()

    # -------------------------------------------------------------------- calls

    def enqueue(
        self,
        call_id: str,
        queue: str,
        *,
        priority: int = 0,
        entered_at: float | None = None,
        caller: str = "",
        now: float,
    ) -> None:
        """A call enters `queue`; `entered_at` (default `now`) is its queue-entry
        time, after the welcome message and the IVR, as the Tm KPI wants."""
        if queue not in self._queues:
            raise UnknownQueueError(f"unknown queue {queue!r}")
        if call_id in self._calls:
            raise DuplicateCallError(f"call {call_id!r} is already in the ACD")
        self._seq += 1
        start = now if entered_at is None else entered_at
        call = Call(call_id, queue, priority, start, now, caller, self._seq)
        self._join(call, queue, now=now)
        self._dispatch(now=now)

    def caller_hung_up(self, call_id: str, *, now: float) -> None:
        """The caller left. Waiting or ringing: abandoned. Answered: the call ended.
        Waiting for a callback: expected, ignored."""
        call = self._calls.get(call_id)
        if call is None:
            logger.debug("hang-up for unknown or finished call %s", call_id)
        elif call.state is CallState.ON_CALL:
            self.call_ended(call_id, now=now)
        elif call.callback_number is None:
            self._abandon(call, now=now)

    def _abandon(self, call: Call, *, now: float) -> None:
        ringing = call.state is CallState.OFFERED
        self._cancel_all_legs(call, OfferFailure.CALLER_GONE, now=now)
        self._forget(call)
        self._emit(
            CallAbandoned(
                call_id=call.call_id,
                queue=call.queue,
                entered_at=call.entered_at,
                while_ringing=ringing,
                at=now,
            )
        )
        self._dispatch(now=now)

    def offer_ringing(self, call_id: str, operator: str, *, now: float) -> None:
        """The operator's phone rings (180); the ring timeout runs from the offer."""
        self._op(operator)
        call = self._calls.get(call_id)
        if call is not None and operator in call.offers:
            self._emit(OfferRinging(call_id=call_id, operator=operator, at=now))

    def offer_answered(self, call_id: str, operator: str, *, now: float) -> None:
        """The operator answered. First answer wins; a late one is released."""
        op = self._op(operator)
        call = self._calls.get(call_id)
        if call is None or operator not in call.offers:
            self._emit_cancel(call_id, operator, _late_answer_reason(call))
            return
        self._take(call, op, now=now)
        self._answer_started(call, op.id, now=now)
        self._dispatch(now=now)

    def _take(self, call: Call, op: Operator, *, now: float) -> None:
        """`op` won the call: the other legs stop ringing, the call leaves its queue."""
        del call.offers[op.id]
        self._timers.cancel((RING, call.call_id, op.id))
        self._cancel_all_legs(call, OfferFailure.ANSWERED_ELSEWHERE, now=now)
        self._move(op, OperatorInput.ANSWER, now=now)
        op.call_id, call.operator = call.call_id, op.id
        call.move(CallInput.ANSWER)
        self._leave_queue(call)

    def _answer_started(self, call: Call, operator: str, *, now: float) -> None:
        if call.callback_number is None:
            self._record_answer(call, operator, now=now)
        else:
            # Operator first: the citizen is dialed only once someone is there to talk.
            self._emit(
                PlaceCallback(call_id=call.call_id, number=call.callback_number, operator=operator)
            )

    def offer_rejected(
        self, call_id: str, operator: str, *, reason: OfferFailure | str, now: float
    ) -> None:
        """The operator's phone refused: busy, decline or unreachable. The call goes
        on to the next operator; this one is skipped for the queue's delay."""
        op = self._op(operator)
        failure = _refusal(reason)
        call = self._calls.get(call_id)
        if call is None or operator not in call.offers:
            return
        cfg = self._queue_cfg[call.queue]
        self._end_leg(call, op, failure, now=now)
        self._cool_down(op, refusal_delay(cfg, failure), now=now)
        self._dispatch(now=now)

    def call_ended(self, call_id: str, *, now: float) -> None:
        """An answered call ended (either side hung up, or it was transferred away to
        a referent or a queue). Before an answer this is an abandon; for a callback
        not yet connected, a failed callback attempt. A transfer still ringing another
        operator is cancelled (`CancelTransfer`)."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is not CallState.ON_CALL:
            if call.callback_number is None:
                self._abandon(call, now=now)
            return
        if call.callback_number is not None and not call.callback_connected:
            # The operator gave up before the citizen answered: the callback failed.
            self.callback_failed(call_id, now=now)
            return
        if call.transfer is not None:
            # A transfer was ringing another operator: nobody is left to hand over to.
            self._release_target(call, OfferFailure.CALLER_GONE, now=now, cancel=True)
        if call.operator is not None:
            self._end_conversation(call, now=now)
        self._dispatch(now=now)

    def transferring_operator_left(self, call_id: str, *, now: float) -> None:
        """The operator who transferred the call hung up before the target answered:
        they go to wrap-up, the transfer rings on (`acd.transfer`). With no transfer
        ringing this is the end of their call (`call_ended`)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.ON_CALL:
            return
        if call.transfer is None:
            self.call_ended(call_id, now=now)
        elif call.operator is not None:
            self._talker_leaves(call, now=now)
            self._dispatch(now=now)

    def _end_conversation(self, call: Call, *, now: float) -> None:
        op = self._operators[call.operator or ""]
        del self._calls[call.call_id]
        op.call_id = None
        self._handle.add(call.queue, now - call.answered_at)
        self._emit(CallEnded(call_id=call.call_id, queue=call.queue, operator=op.id, at=now))
        self._move(op, OperatorInput.CALL_END, now=now)
        self._start_wrapup(op, call.queue, now=now)

    def _emit_cancel(self, call_id: str, operator: str, reason: OfferFailure) -> None:
        self._emit(CancelOffer(call_id=call_id, operator=operator, reason=reason))

    # ------------------------------------------------------------------- timers

    def handle_timer(self, *, now: float) -> None:
        """Fire every deadline due at `now`, then match calls and operators again."""
        while (key := self._timers.pop_due(now)) is not None:
            assert isinstance(key, tuple)
            kind, *ids = key
            if kind == RING:
                self._on_ring_timeout(ids[0], ids[1], now=now)
            elif kind == WRAPUP:
                self._finish_work(self._operators[ids[0]], now=now)
            elif kind == MAX_WAIT:
                self._on_max_wait(ids[0], now=now)
            elif kind == ANNOUNCE:
                self._on_announce(ids[0], now=now)
            elif kind == COOLDOWN:
                self._refresh_free(self._operators[ids[0]], now=now)
        self._dispatch(now=now)

    def _on_ring_timeout(self, call_id: str, operator: str, *, now: float) -> None:
        call, op = self._calls[call_id], self._operators[operator]
        pause = self._queue_cfg[call.queue].pause_on_no_answer and not self._is_ring_all(call)
        then = OperatorInput.NO_ANSWER if pause else OperatorInput.OFFER_ENDED
        reason = NO_ANSWER_REASON if pause else None
        self._end_leg(call, op, OfferFailure.NO_ANSWER, now=now, then=then, pause_reason=reason)
        if not pause:  # as Asterisk's `retry`: a pause before ringing them again
            self._cool_down(op, self._queue_cfg[call.queue].no_answer_delay, now=now)

    def _on_max_wait(self, call_id: str, *, now: float) -> None:
        # A call ringing an operator is left alone: if that offer fails, the call
        # overflows then (`_back_to_waiting`).
        call = self._calls[call_id]
        if call.state is CallState.WAITING and call.callback_number is None:
            cfg = self._queue_cfg[call.queue]
            self._overflow(call, OverflowReason.MAX_WAIT, cfg.on_overflow, now=now)

    def _on_announce(self, call_id: str, *, now: float) -> None:
        call = self._calls[call_id]
        cfg = self._queue_cfg[call.queue]
        if call.state is CallState.WAITING:  # not while an operator's phone rings
            position = self._queues[call.queue].position(call)
            self._emit(
                PlayAnnouncement(
                    call_id=call_id,
                    position=position,
                    expected_wait=self._expected_wait(cfg, position),
                    callback_digit=cfg.callback_digit,
                )
            )
        if cfg.announce_interval is not None:
            self._timers.schedule((ANNOUNCE, call_id), now + cfg.announce_interval)

    def _expected_wait(self, cfg: QueueConfig, position: int) -> float | None:
        return self._handle.expected_wait(
            cfg.name,
            position=position,
            serving=self._serving(cfg.skill),
            default=cfg.default_handle_time,
            wrapup=cfg.wrapup,
        )


def _late_answer_reason(call: Call | None) -> OfferFailure:
    """Why the leg of a late 200 OK is released (its offer was taken back before)."""
    if call is None:
        return OfferFailure.CALLER_GONE
    if call.state is CallState.ON_CALL:
        return OfferFailure.ANSWERED_ELSEWHERE
    return OfferFailure.WITHDRAWN


def _refusal(reason: OfferFailure | str) -> OfferFailure:
    if reason not in _REFUSALS:
        known = ", ".join(r.value for r in _REFUSALS)
        raise InvalidInputError(f"not a refusal reason: {reason!r} (expected {known})")
    return OfferFailure(reason)
