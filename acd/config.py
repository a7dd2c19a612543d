"""ACD configuration: queues, operators and pause reasons (pydantic v2 models).

Loaded from the deployment YAML by the runtime; `parse_acd_config` turns any
validation failure into one `AcdConfigError` naming every bad field, for example
``queues.0.ring_timeout: Input should be greater than 0``.

Times are seconds. Skill levels are proficiencies from 1 to 10, higher is better
(the `skill-level` strategy rings the best first). Operators' passwords are the
registrar's business and are not part of this model.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from acd.errors import AcdConfigError
from acd.strategy import DEFAULT_STRATEGY, STRATEGIES

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]
Seconds = Annotated[float, Field(gt=0)]
Delay = Annotated[float, Field(ge=0)]
Level = Annotated[int, Field(ge=1, le=10)]


class OverflowKind(StrEnum):
    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    MESSAGE_AND_HANGUP = "message-and-hangup"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OverflowAction(_Model):
    """Where a call goes when its queue is full, it waited too long, or nobody is
    logged in: another queue (target: its name), a voicemail box (target: mailbox) or
    a message then hang-up (target: the prompt, None for the default one)."""

    action: OverflowKind
    target: str | None = None

    @model_validator(mode="after")
    def _queue_needs_target(self) -> Self:
        if self.action is OverflowKind.QUEUE and not self.target:
            raise ValueError("overflow to a queue needs the target queue's name")
        return self


class QueueConfig(_Model):
    """One queue, served by the operators having `skill`.

    `busy_delay`, `decline_delay` and `unreachable_delay` keep an operator who refused
    an offer out of the next offers for that long, without pausing them (FreeSWITCH's
    busy/reject delay times); a ring with no answer within `ring_timeout` pauses the
    operator with reason "no answer" when `pause_on_no_answer` (Asterisk's autopause),
    else (and always with `ring-all`) skips them for `no_answer_delay` (Asterisk's retry).

    Other fields: `wrapup`, the after-call work time (0: none; the operator may end it
    early with `*44`); `max_wait`, seconds in this queue before `on_overflow`; `max_len`,
    places in the queue (callbacks hold one too) before new calls take `on_overflow`;
    `on_no_operator`, where new callers go when no operator of the skill is logged in
    (None: they wait); `announce_interval`, seconds between position and expected-wait
    announcements, the first one an interval after joining; `callback_digit`, the digit
    a waiting caller presses to be called back (None: no callback), with
    `callback_attempts` tries `callback_retry_delay` seconds apart;
    `default_handle_time`, the talk time assumed by the wait estimate before any call
    has ended (DOMAIN.md: about 3 minutes).
    """

    name: Name
    skill: Name
    strategy: str = DEFAULT_STRATEGY
    ring_timeout: Seconds = 15.0
    pause_on_no_answer: bool = True
    no_answer_delay: Delay = 5.0
    busy_delay: Delay = 10.0
    decline_delay: Delay = 5.0
    unreachable_delay: Delay = 30.0
    wrapup: Delay = 0.0
    max_wait: Seconds | None = None
    max_len: Annotated[int, Field(ge=1)] | None = None
    on_overflow: OverflowAction = OverflowAction(action=OverflowKind.MESSAGE_AND_HANGUP)
    on_no_operator: OverflowAction | None = None
    announce_interval: Seconds | None = None
    callback_digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = None
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    callback_retry_delay: Delay = 300.0
    default_handle_time: Seconds = 180.0

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise ValueError(f"unknown strategy {value!r} (known: {known})")
        return value


class OperatorConfig(_Model):
    id: Name
    name: str = ""
    skills: dict[Name, Level] = Field(default_factory=dict)


class AcdConfig(_Model):
    """All queues and operators. `pause_reasons` maps the digits dialed after `*42`
    to a reason ("1" -> "break")."""

    queues: list[QueueConfig] = Field(default_factory=list)
    operators: list[OperatorConfig] = Field(default_factory=list)
    pause_reasons: dict[Annotated[str, Field(pattern=r"^[0-9]{1,4}$")], str] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique("queue name", [q.name for q in self.queues])
        _unique("operator id", [o.id for o in self.operators])
        names = {q.name for q in self.queues}
        for queue in self.queues:
            for target in _queue_targets(queue):
                if target not in names:
                    raise ValueError(f"queue {queue.name!r} overflows to unknown queue {target!r}")
        _check_acyclic(self.queues)
        return self

    def queue(self, name: str) -> QueueConfig | None:
        return next((q for q in self.queues if q.name == name), None)


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def _queue_targets(queue: QueueConfig) -> list[str]:
    actions = (queue.on_overflow, queue.on_no_operator)
    return [a.target for a in actions if a and a.action is OverflowKind.QUEUE and a.target]


def _check_acyclic(queues: list[QueueConfig]) -> None:
    """Overflow between queues must end somewhere, or a call could bounce forever."""
    edges = {q.name: _queue_targets(q) for q in queues}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ValueError(f"overflow between queues loops: {cycle}")
        if name not in done:
            for target in edges.get(name, []):
                visit(target, [*path, name])
            done.add(name)

    for name in edges:
        visit(name, [])


def parse_acd_config(data: object) -> AcdConfig:
    """Validate raw (YAML-loaded) data; raise `AcdConfigError` listing every problem."""
    try:
        return AcdConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise AcdConfigError("invalid ACD configuration:\n  " + "\n  ".join(problems)) from None
