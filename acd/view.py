"""Read-only views of the engine's state, for the HTTP API, the wallboard and tests."""

from __future__ import annotations

from dataclasses import dataclass

from acd.config import QueueConfig
from acd.core import EngineCore
from acd.errors import UnknownQueueError
from acd.operator import LOGGED_IN, OperatorState
from acd.queue import CallQueue, CallState


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorSnapshot:
    id: str
    name: str
    state: OperatorState
    reason: str | None
    registered: bool
    call_id: str | None
    calls_answered: int
    pending: str | None
    time_in_states: dict[OperatorState, float]
    since: float
    """When (monotonic seconds) the operator entered the current state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSnapshot:
    name: str
    waiting: int
    ringing: int
    callbacks: int
    longest_wait: float
    logged_in: int
    serving: int


class EngineViews(EngineCore):
    def operator_ids(self) -> list[str]:
        return list(self._operators)

    def operator_state(self, operator: str) -> OperatorState:
        return self._op(operator).state

    def operator_snapshot(self, operator: str, *, now: float) -> OperatorSnapshot:
        op = self._op(operator)
        return OperatorSnapshot(
            id=op.id,
            name=op.name,
            state=op.state,
            reason=op.reason,
            registered=op.registered,
            call_id=op.call_id,
            calls_answered=op.calls_answered,
            pending=op.pending.value if op.pending else None,
            time_in_states=op.time_in_states(now=now),
            since=op.since,
        )

    def queue_config(self, queue: str) -> QueueConfig | None:
        """The configuration of a queue, if it exists."""
        return self._queue_cfg.get(queue)

    def queue_names(self) -> list[str]:
        return list(self._queues)

    def queued_calls(self, queue: str) -> list[str]:
        """Call ids of `queue` in service order (ringing and callback calls included)."""
        return [call.call_id for call in self._queue(queue).calls()]

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return call.state if call else None

    def call_queue(self, call_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.queue if call else None

    def offered_to(self, call_id: str) -> frozenset[str]:
        call = self._calls.get(call_id)
        return frozenset(call.offers) if call else frozenset()

    def transfer_target(self, call_id: str) -> str | None:
        """The operator a blind transfer of `call_id` is ringing, if any."""
        call = self._calls.get(call_id)
        return call.transfer.target if call and call.transfer else None

    def call_ids(self) -> list[str]:
        return list(self._calls)

    def eligible_operators(self, queue: str, *, now: float) -> list[str]:
        """Operators a call of `queue` could be offered to right now."""
        skill = self._queue_cfg[queue].skill if queue in self._queue_cfg else ""
        self._queue(queue)
        return [op.id for op in self._by_skill.get(skill, ()) if op.eligible(skill, now=now)]

    def queue_snapshot(self, queue: str, *, now: float) -> QueueSnapshot:
        calls = self._queue(queue).calls()
        skill = self._queue_cfg[queue].skill
        ops = self._by_skill.get(skill, [])
        return QueueSnapshot(
            name=queue,
            waiting=sum(c.state is CallState.WAITING and not c.callback_number for c in calls),
            ringing=sum(c.state is CallState.OFFERED for c in calls),
            callbacks=sum(c.callback_number is not None for c in calls),
            longest_wait=max((now - c.entered_at for c in calls), default=0.0),
            logged_in=sum(op.state in LOGGED_IN for op in ops),
            serving=self._serving(skill),
        )

    def _queue(self, queue: str) -> CallQueue:
        try:
            return self._queues[queue]
        except KeyError:
            raise UnknownQueueError(f"unknown queue {queue!r}") from None
