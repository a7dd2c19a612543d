"""Shared helpers for the ACD tests: a harness driving the engine in virtual time."""

from __future__ import annotations

from typing import Any, TypeVar

from acd.config import AcdConfig, parse_acd_config
from acd.engine import AcdEngine
from acd.events import CallAnswered, OfferCall, Output

T = TypeVar("T")


def make_config(
    *,
    operators: int | list[dict[str, Any]] = 3,
    skill: str = "info",
    **queue: Any,
) -> AcdConfig:
    """One queue `q` of `skill` (extra keys go to its config) and `operators`."""
    if isinstance(operators, int):
        operators = [{"id": f"op{i}", "skills": {skill: 5}} for i in range(1, operators + 1)]
    return parse_acd_config(
        {"queues": [{"name": "q", "skill": skill, **queue}], "operators": operators}
    )


class Harness:
    """An engine, a virtual clock and everything the engine emitted so far."""

    def __init__(self, config: AcdConfig, *, start: float = 0.0) -> None:
        self.now = start
        self.engine = AcdEngine(config, now=start)
        self.log: list[Output] = []

    def drain(self) -> list[Output]:
        items = self.engine.commands()
        self.log.extend(items)
        return items

    def advance(self, until: float) -> list[Output]:
        """Move the clock to `until`, firing every timer at its exact instant."""
        fired: list[Output] = []
        while (deadline := self.engine.get_timer()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.engine.handle_timer(now=self.now)
            fired += self.drain()
        self.now = until
        return fired

    def of(self, kind: type[T], items: list[Output] | None = None) -> list[T]:
        return [item for item in (self.log if items is None else items) if isinstance(item, kind)]

    def ready_all(self, ops: list[str] | None = None) -> None:
        """Register and log in every operator (or `ops`) at the current time."""
        for op in ops or self.engine.operator_ids():
            self.engine.operator_registered(op, now=self.now)
            self.engine.operator_login(op, now=self.now)
        self.drain()


class Phones:
    """A scripted call-control side: every offer is answered after `answer_after`
    seconds, every answered call lasts `talk` seconds. Runs the engine's timers and
    its own events in one virtual-time loop."""

    def __init__(self, harness: Harness, *, answer_after: float, talk: float) -> None:
        self.h = harness
        self.answer_after = answer_after
        self.talk = talk
        self._events: list[tuple[float, int, str, str, str]] = []
        self._seq = 0

    def at(self, when: float, action: str, call_id: str, operator: str = "") -> None:
        self._seq += 1
        self._events.append((when, self._seq, action, call_id, operator))
        self._events.sort()

    def react(self, items: list[Output]) -> None:
        for item in items:
            if isinstance(item, OfferCall):
                self.at(self.h.now + self.answer_after, "answer", item.call_id, item.operator)
            elif isinstance(item, CallAnswered):
                self.at(self.h.now + self.talk, "end", item.call_id)

    def run(self, until: float) -> None:
        engine = self.h.engine
        while True:
            timer = engine.get_timer()
            event_at = self._events[0][0] if self._events else None
            candidates = [t for t in (timer, event_at) if t is not None and t <= until]
            if not candidates:
                break
            self.h.now = max(self.h.now, min(candidates))
            if event_at is not None and event_at <= self.h.now:
                _, _, action, call_id, operator = self._events.pop(0)
                self._perform(action, call_id, operator)
            else:
                engine.handle_timer(now=self.h.now)
            self.react(self.h.drain())
        self.h.now = until

    def _perform(self, action: str, call_id: str, operator: str) -> None:
        engine, now = self.h.engine, self.h.now
        if action == "answer":
            engine.offer_answered(call_id, operator, now=now)
        elif action == "end":
            engine.call_ended(call_id, now=now)
        elif action == "arrive":
            engine.enqueue(call_id, "q", caller=f"+39{call_id}", now=now)
        elif action == "hangup":
            engine.caller_hung_up(call_id, now=now)
