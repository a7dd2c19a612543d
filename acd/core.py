"""The ACD engine's state and the moves shared by its inputs.

`EngineCore` holds queues, operators, calls and deadlines, and implements the moves
every input is made of: offering a call, ending one operator's leg of an offer,
joining and leaving queues, overflowing, and the dispatch loop that matches waiting
calls with free operators. The public inputs are in `acd.engine.AcdEngine`.

Dispatch: among the queues whose first offerable call has at least one eligible
operator, the call with the best (priority, queue-entry time) goes first, and its
queue's strategy picks the operator(s); repeat until no match is left. All calls of a
queue need the same skill, so only a queue's first offerable call matters.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

from acd.config import AcdConfig, OverflowAction, OverflowKind, QueueConfig
from acd.errors import UnknownOperatorError
from acd.estimator import HandleTimes
from acd.events import (
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CancelOffer,
    CancelTransfer,
    Disposition,
    OfferCall,
    OfferFailed,
    OfferFailure,
    OperatorStateChanged,
    Output,
    Overflow,
    OverflowReason,
)
from acd.operator import LOGGED_IN, SERVING, Operator, OperatorInput, OperatorState
from acd.queue import Call, CallInput, CallQueue, CallState
from acd.strategy import RING_ALL, get_strategy
from acd.timers import Deadlines

logger = logging.getLogger(__name__)

RING, WRAPUP, MAX_WAIT, ANNOUNCE, COOLDOWN, RETRY = (
    "ring",
    "wrapup",
    "max-wait",
    "announce",
    "cooldown",
    "retry",
)
# How many answered calls keep their disposition settable after they end.
ANSWERED_MEMORY = 10_000
_FALLBACK = OverflowAction(action=OverflowKind.MESSAGE_AND_HANGUP)


@dataclass(slots=True)
class Answered:
    """An answered call, remembered so the operator can still set its disposition."""

    queue: str
    operator: str
    disposition: Disposition = Disposition.UNKNOWN
    explicit: bool = False


class EngineCore:
    def __init__(self, config: AcdConfig, *, now: float) -> None:
        self.config = config
        self._queue_cfg = {q.name: q for q in config.queues}
        self._queues = {q.name: CallQueue(q.name) for q in config.queues}
        self._operators = {
            o.id: Operator(id=o.id, name=o.name, skills=dict(o.skills), since=now, idle_since=now)
            for o in config.operators
        }
        self._order = {op_id: index for index, op_id in enumerate(self._operators)}
        # Operators free, registered and not cooling down: the only ones dispatch looks
        # at. With calls waiting this is usually empty and dispatch costs nothing.
        self._free: dict[str, Operator] = {}
        self._by_skill: dict[str, list[Operator]] = {}
        for op in self._operators.values():
            for skill in op.skills:
                self._by_skill.setdefault(skill, []).append(op)
        self._calls: dict[str, Call] = {}
        self._answered: OrderedDict[str, Answered] = OrderedDict()
        self._timers = Deadlines()
        self._out: deque[Output] = deque()
        self._handle = HandleTimes()
        self._seq = 0

    # ------------------------------------------------------------------ small helpers

    def _emit(self, item: Output) -> None:
        self._out.append(item)

    def _op(self, operator: str) -> Operator:
        try:
            return self._operators[operator]
        except KeyError:
            raise UnknownOperatorError(f"unknown operator {operator!r}") from None

    def _move(
        self, op: Operator, event: OperatorInput, *, now: float, reason: str | None = None
    ) -> None:
        """Apply `event` to the operator and report the change, if any."""
        old_reason = op.reason
        old, new = op.apply(event, now=now, reason=reason)
        self._refresh_free(op, now=now)
        if old is not new or op.reason != old_reason:
            self._emit(
                OperatorStateChanged(operator=op.id, old=old, new=new, reason=op.reason, at=now)
            )

    def _refresh_free(self, op: Operator, *, now: float) -> None:
        """Keep `_free` exact: available, registered and not cooling down."""
        if op.state is OperatorState.AVAILABLE and op.registered and op.cooldown_until <= now:
            self._free[op.id] = op
        else:
            self._free.pop(op.id, None)

    def _logged_in(self, skill: str) -> bool:
        return any(op.state in LOGGED_IN for op in self._by_skill.get(skill, ()))

    def _serving(self, skill: str) -> int:
        return sum(op.state in SERVING for op in self._by_skill.get(skill, ()))

    # ------------------------------------------------------------------------ offers

    def _offer(self, call: Call, ops: list[Operator], *, now: float) -> None:
        cfg = self._queue_cfg[call.queue]
        for op in ops:
            self._move(op, OperatorInput.OFFER, now=now)
            op.call_id = call.call_id
            call.offers[op.id] = now
            call.move(CallInput.OFFER)
            self._timers.schedule((RING, call.call_id, op.id), now + cfg.ring_timeout)
            self._emit(
                OfferCall(
                    call_id=call.call_id,
                    operator=op.id,
                    queue=call.queue,
                    caller=call.caller,
                    ring_timeout=cfg.ring_timeout,
                    callback_number=call.callback_number,
                )
            )
            self._emit(CallOffered(call_id=call.call_id, queue=call.queue, operator=op.id, at=now))

    def _drop_leg(self, call: Call, op: Operator, reason: OfferFailure, *, now: float) -> None:
        """Forget one operator's leg of an offer; the operator's state is the caller's."""
        del call.offers[op.id]
        op.call_id = None
        self._timers.cancel((RING, call.call_id, op.id))
        if reason not in (OfferFailure.BUSY, OfferFailure.DECLINE, OfferFailure.UNREACHABLE):
            # The phone has not said no by itself: routing must stop it ringing.
            self._emit(CancelOffer(call_id=call.call_id, operator=op.id, reason=reason))
        self._emit(OfferFailed(call_id=call.call_id, operator=op.id, reason=reason, at=now))

    def _end_leg(
        self,
        call: Call,
        op: Operator,
        reason: OfferFailure,
        *,
        now: float,
        then: OperatorInput = OperatorInput.OFFER_ENDED,
        pause_reason: str | None = None,
    ) -> None:
        """End one leg, move the operator with `then`, and requeue the call if it was
        the last leg."""
        self._drop_leg(call, op, reason, now=now)
        self._move(op, then, now=now, reason=pause_reason)
        if not call.offers:
            self._back_to_waiting(call, now=now)

    def _back_to_waiting(self, call: Call, *, now: float) -> None:
        call.move(CallInput.OFFER_ENDED)
        cfg = self._queue_cfg[call.queue]
        waited_out = cfg.max_wait is not None and now >= call.joined_at + cfg.max_wait
        if waited_out and call.callback_number is None:
            self._overflow(call, OverflowReason.MAX_WAIT, cfg.on_overflow, now=now)

    def _cool_down(self, op: Operator, delay: float, *, now: float) -> None:
        """Skip `op` for the next offers during `delay`, without changing its state."""
        op.cooldown_until = now + delay
        self._refresh_free(op, now=now)
        self._timers.schedule((COOLDOWN, op.id), op.cooldown_until)

    def _release_target(
        self,
        call: Call,
        reason: OfferFailure,
        *,
        now: float,
        then: OperatorInput = OperatorInput.OFFER_ENDED,
        pause_reason: str | None = None,
        cancel: bool = False,
    ) -> None:
        """End a transfer's reservation of its target, who moves with `then`. If the
        transferring operator has hung up meanwhile the call's life here ends too:
        routing puts the caller back in the queue, a new life (`enqueue`)."""
        pending = call.transfer
        assert pending is not None
        op = self._operators[pending.target]
        call.transfer, op.call_id = None, None
        if cancel:  # the engine's own decision: routing must stop the ringing
            self._emit(CancelTransfer(call_id=call.call_id, operator=op.id, reason=reason))
        self._emit(OfferFailed(call_id=call.call_id, operator=op.id, reason=reason, at=now))
        self._move(op, then, now=now, reason=pause_reason)
        if call.operator is None:
            del self._calls[call.call_id]
            self._emit(
                CallEnded(call_id=call.call_id, queue=call.queue, operator=pending.by, at=now)
            )

    def _cancel_all_legs(self, call: Call, reason: OfferFailure, *, now: float) -> None:
        for op_id in list(call.offers):
            op = self._operators[op_id]
            self._drop_leg(call, op, reason, now=now)
            self._move(op, OperatorInput.OFFER_ENDED, now=now)

    # ------------------------------------------------------------------------ queues

    def _join(self, call: Call, queue: str, *, now: float) -> None:
        """Put a call in `queue`, or overflow it when full or nobody is logged in."""
        cfg = self._queue_cfg[queue]
        call.queue, call.joined_at = queue, now
        call.visited = (*call.visited, queue)
        if cfg.max_len is not None and len(self._queues[queue]) >= cfg.max_len:
            self._overflow(call, OverflowReason.QUEUE_FULL, cfg.on_overflow, now=now, queued=False)
            return
        if cfg.on_no_operator is not None and not self._logged_in(cfg.skill):
            self._overflow(
                call, OverflowReason.NO_OPERATOR, cfg.on_no_operator, now=now, queued=False
            )
            return
        self._calls[call.call_id] = call
        position = self._queues[queue].add(call)
        self._emit(
            CallQueued(
                call_id=call.call_id,
                queue=queue,
                priority=call.priority,
                position=position,
                entered_at=call.entered_at,
                at=now,
            )
        )
        self._arm_waiting_timers(call, cfg, now=now)

    def _arm_waiting_timers(self, call: Call, cfg: QueueConfig, *, now: float) -> None:
        if cfg.max_wait is not None:
            self._timers.schedule((MAX_WAIT, call.call_id), call.joined_at + cfg.max_wait)
        if cfg.announce_interval is not None:
            self._timers.schedule((ANNOUNCE, call.call_id), now + cfg.announce_interval)

    def _disarm_waiting_timers(self, call_id: str) -> None:
        for kind in (MAX_WAIT, ANNOUNCE, RETRY):
            self._timers.cancel((kind, call_id))

    def _leave_queue(self, call: Call) -> None:
        self._queues[call.queue].remove(call)
        self._disarm_waiting_timers(call.call_id)

    def _forget(self, call: Call) -> None:
        """The call's life in the ACD is over (abandoned, overflowed, ended)."""
        if call.state is not CallState.ON_CALL:
            self._leave_queue(call)
        self._calls.pop(call.call_id, None)

    def _overflow(
        self,
        call: Call,
        reason: OverflowReason,
        action: OverflowAction,
        *,
        now: float,
        queued: bool = True,
    ) -> None:
        if queued:
            self._forget(call)
        if action.action is OverflowKind.QUEUE and action.target in call.visited:
            # The configuration is acyclic; this only guards against a bug elsewhere.
            logger.warning("call %s would overflow back to %s", call.call_id, action.target)
            action = _FALLBACK
        self._emit(
            CallOverflowed(
                call_id=call.call_id,
                queue=call.queue,
                reason=reason,
                action=action.action,
                target=action.target,
                entered_at=call.entered_at,
                at=now,
            )
        )
        if action.action is OverflowKind.QUEUE and action.target is not None:
            self._join(call, action.target, now=now)
        else:
            self._emit(Overflow(call_id=call.call_id, action=action.action, target=action.target))

    def _empty_queues_of(self, op: Operator, *, now: float) -> None:
        """After a logout: waiting callers of queues nobody serves any more go where
        `on_no_operator` says (Asterisk's leavewhenempty). Callbacks stay queued."""
        for name, cfg in self._queue_cfg.items():
            if cfg.skill not in op.skills or cfg.on_no_operator is None:
                continue
            if self._logged_in(cfg.skill):
                continue
            for call in self._queues[name].calls():
                if call.state is CallState.WAITING and call.callback_number is None:
                    self._overflow(call, OverflowReason.NO_OPERATOR, cfg.on_no_operator, now=now)

    # ------------------------------------------------------------------- answers

    def _record_answer(self, call: Call, operator: str, *, now: float) -> None:
        op = self._operators[operator]
        op.calls_answered += 1
        op.last_call_id = call.call_id
        call.answered_at = now
        self._remember_answered(call.call_id, Answered(queue=call.queue, operator=operator))
        self._emit(
            CallAnswered(
                call_id=call.call_id,
                queue=call.queue,
                operator=operator,
                entered_at=call.entered_at,
                callback=call.callback_number is not None,
                at=now,
            )
        )

    def _remember_answered(self, call_id: str, record: Answered) -> None:
        self._answered[call_id] = record
        while len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)

    # ---------------------------------------------------------------------- dispatch

    def _dispatch(self, *, now: float) -> None:
        while True:
            match = self._best_match(now=now)
            if match is None:
                return
            call, candidates = match
            cfg = self._queue_cfg[call.queue]
            chosen = get_strategy(cfg.strategy)(candidates, cfg.skill)
            ops = [self._operators[c.id] for c in chosen]
            if not ops:
                return
            self._offer(call, ops, now=now)

    def _best_match(self, *, now: float) -> tuple[Call, list[Operator]] | None:
        best: tuple[Call, list[Operator]] | None = None
        if not self._free:
            return None
        free = sorted(self._free.values(), key=lambda op: self._order[op.id])
        for name, queue in self._queues.items():
            call = queue.first_offerable(now=now) if len(queue) else None
            if call is None or (best is not None and best[0].key <= call.key):
                continue
            skill = self._queue_cfg[name].skill
            ops = [op for op in free if op.eligible(skill, now=now)]
            if ops:
                best = (call, ops)
        return best

    def _is_ring_all(self, call: Call) -> bool:
        return self._queue_cfg[call.queue].strategy == RING_ALL


def refusal_delay(cfg: QueueConfig, failure: OfferFailure) -> float:
    """How long an operator whose phone refused (busy, decline, unreachable) is skipped."""
    if failure is OfferFailure.BUSY:
        return cfg.busy_delay
    if failure is OfferFailure.DECLINE:
        return cfg.decline_delay
    return cfg.unreachable_delay
