"""The expected-wait estimate announced to waiting callers.

    expected_wait = position x (mean talk time + wrap-up) / serving operators

`mean talk time` is the mean of the last `window` answered calls of the queue (the
queue's `default_handle_time` until one has ended); `serving` counts the operators of
the queue's skill who are logged in and not paused. With nobody serving the wait is
unknown (None) and the announcement says only the position. The estimate is the
textbook M/M/n rule of thumb, deliberately simple: it is read to a citizen, rounded to
the minute, not used for routing.
"""

from __future__ import annotations

from collections import deque


class HandleTimes:
    def __init__(self, *, window: int = 50) -> None:
        self._window = window
        self._samples: dict[str, deque[float]] = {}

    def add(self, queue: str, talk_time: float) -> None:
        samples = self._samples.setdefault(queue, deque(maxlen=self._window))
        samples.append(max(0.0, talk_time))

    def mean(self, queue: str, *, default: float) -> float:
        samples = self._samples.get(queue)
        return sum(samples) / len(samples) if samples else default

    def expected_wait(
        self, queue: str, *, position: int, serving: int, default: float, wrapup: float
    ) -> float | None:
        if serving <= 0:
            return None
        return position * (self.mean(queue, default=default) + wrapup) / serving
