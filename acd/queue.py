"""Waiting calls and the order in which they are served.

A queue serves by priority (higher first), then by queue-entry time (first in, first
out), then by arrival order. A call keeps its place while an operator rings (it goes
back to the same place if nobody answers) and while it waits for a callback: a caller
who asked to be called back keeps their original queue-entry time.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ON_CALL = "on_call"


class CallInput(StrEnum):
    OFFER = "offer"
    OFFER_ENDED = "offer_ended"
    ANSWER = "answer"
    RETRY = "retry"


# A call leaves the machine (abandoned, overflowed, ended) by being forgotten; these are
# the only moves while it is alive.
CALL_TRANSITIONS: dict[CallState, dict[CallInput, CallState]] = {
    CallState.WAITING: {CallInput.OFFER: CallState.OFFERED},
    CallState.OFFERED: {
        CallInput.OFFER: CallState.OFFERED,
        CallInput.OFFER_ENDED: CallState.WAITING,
        CallInput.ANSWER: CallState.ON_CALL,
    },
    CallState.ON_CALL: {CallInput.RETRY: CallState.WAITING},
}

SortKey = tuple[int, float, int]


@dataclass(slots=True)
class PendingTransfer:
    """A blind transfer of an answered call to another operator, whose phone rings:
    `target` is reserved for it (offered) until they answer or the transfer fails;
    `by` is the transferring operator, who may hang up meanwhile."""

    target: str
    by: str
    since: float


@dataclass(slots=True)
class Call:
    """One call known to the engine. `entered_at` is the queue-entry time (IVR
    excluded) and never changes, not across overflow to another queue nor across a
    callback; `joined_at` is when it joined its current queue, for max-wait.
    `operator` is who talks with the caller once answered (None only while a transfer
    rings after the transferring operator hung up)."""

    call_id: str
    queue: str
    priority: int
    entered_at: float
    joined_at: float
    caller: str
    seq: int
    state: CallState = CallState.WAITING
    offers: dict[str, float] = field(default_factory=dict)
    operator: str | None = None
    callback_number: str | None = None
    callback_attempts: int = 0
    callback_connected: bool = False
    answered_at: float = 0.0
    not_before: float = 0.0
    visited: tuple[str, ...] = ()
    transfer: PendingTransfer | None = None

    @property
    def key(self) -> SortKey:
        return (-self.priority, self.entered_at, self.seq)

    def move(self, event: CallInput) -> None:
        self.state = CALL_TRANSITIONS[self.state][event]


class CallQueue:
    """The calls of one queue in service order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._keys: list[SortKey] = []
        self._calls: list[Call] = []

    def __len__(self) -> int:
        return len(self._calls)

    def calls(self) -> list[Call]:
        return list(self._calls)

    def add(self, call: Call) -> int:
        """Insert in service order; return the 1-based position."""
        index = bisect.bisect(self._keys, call.key)
        self._keys.insert(index, call.key)
        self._calls.insert(index, call)
        return index + 1

    def remove(self, call: Call) -> None:
        index = bisect.bisect_left(self._keys, call.key)
        del self._keys[index]
        del self._calls[index]

    def position(self, call: Call) -> int:
        return bisect.bisect_left(self._keys, call.key) + 1

    def first_offerable(self, *, now: float) -> Call | None:
        """The first call neither ringing an operator nor waiting to retry a callback."""
        for call in self._calls:
            if call.state is CallState.WAITING and call.not_before <= now:
                return call
        return None
