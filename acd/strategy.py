"""Distribution strategies, registered by name.

A strategy gets the operators eligible for a queue's skill (free, registered, not
cooling down) and returns those to ring: one operator, or all of them for `ring-all`.
Ties are broken by the order of the operators in the configuration, so a run is
reproducible.

| name           | rings                                                            |
| -------------- | ---------------------------------------------------------------- |
| `longest-idle` | the operator free for the longest time (default)                 |
| `least-calls`  | the operator who answered the fewest calls, then longest idle    |
| `skill-level`  | the best level in the queue's skill (higher is better), then     |
|                | longest idle                                                     |
| `ring-all`     | every eligible operator; the first to answer wins, the others    |
|                | get `CancelOffer`                                                |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from acd.errors import AcdConfigError


class Candidate(Protocol):
    """What a strategy may read of an operator."""

    @property
    def id(self) -> str: ...
    @property
    def idle_since(self) -> float: ...
    @property
    def calls_answered(self) -> int: ...
    @property
    def skills(self) -> dict[str, int]: ...


Strategy = Callable[[Sequence[Candidate], str], list[Candidate]]

STRATEGIES: dict[str, Strategy] = {}
RING_ALL = "ring-all"
DEFAULT_STRATEGY = "longest-idle"


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    """Decorator adding a strategy to `STRATEGIES` under `name`."""

    def add(strategy: Strategy) -> Strategy:
        STRATEGIES[name] = strategy
        return strategy

    return add


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise AcdConfigError(f"unknown strategy {name!r} (known: {known})") from None


def _pick(
    candidates: Sequence[Candidate], key: Callable[[Candidate], tuple[float, ...]]
) -> list[Candidate]:
    # min() keeps the first of equal keys, that is the configuration order.
    return [min(candidates, key=key)] if candidates else []


@register_strategy("longest-idle")
def longest_idle(candidates: Sequence[Candidate], skill: str) -> list[Candidate]:
    return _pick(candidates, lambda op: (op.idle_since,))


@register_strategy("least-calls")
def least_calls(candidates: Sequence[Candidate], skill: str) -> list[Candidate]:
    return _pick(candidates, lambda op: (op.calls_answered, op.idle_since))


@register_strategy("skill-level")
def skill_level(candidates: Sequence[Candidate], skill: str) -> list[Candidate]:
    return _pick(candidates, lambda op: (-op.skills.get(skill, 0), op.idle_since))


@register_strategy(RING_ALL)
def ring_all(candidates: Sequence[Candidate], skill: str) -> list[Candidate]:
    return list(candidates)
