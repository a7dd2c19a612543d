"""A set of named deadlines with the earliest one at hand.

The engine arms many deadlines (a ring timeout per offer, a wrap-up end per operator,
a max-wait and an announcement per waiting call); `get_timer()` must stay cheap with
thousands of them, so they live in a heap and a re-armed or cancelled deadline is
simply left stale in it and skipped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable


class Deadlines:
    def __init__(self) -> None:
        self._at: dict[Hashable, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._at)

    def schedule(self, key: Hashable, at: float) -> None:
        """Arm `key` at `at`, replacing any earlier arming of the same key."""
        self._seq += 1
        self._at[key] = (at, self._seq)
        heapq.heappush(self._heap, (at, self._seq, key))

    def cancel(self, key: Hashable) -> None:
        self._at.pop(key, None)

    def deadline(self, key: Hashable) -> float | None:
        entry = self._at.get(key)
        return entry[0] if entry else None

    def earliest(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Hashable | None:
        """Remove and return the earliest key due at `now`, or None."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, key = heapq.heappop(self._heap)
        del self._at[key]
        return key

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._at.get(heap[0][2]) != (heap[0][0], heap[0][1]):
            heapq.heappop(heap)
