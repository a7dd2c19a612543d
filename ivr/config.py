"""Configuration models for services and their IVR trees (the ``services:`` section).

A service is a set of numbers, a calendar, its languages and an IVR: a flat mapping
of node id -> node, entered at ``entry``. Nodes name each other by id, so a key path
such as ``services.trentino-digitale.ivr.menu.options.7`` locates any reference; the
references themselves are checked by :func:`ivr.check.check_services`, because a
problem report naming every mistake at once beats pydantic stopping at the first.

Adding a service, a number or a menu option is configuration only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from routing.calendar import CalendarConfig

# RFC 4733 DTMF events 0–9, *, # (A–D are not on a citizen's phone).
Digit = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
NodeId = Annotated[str, StringConstraints(min_length=1)]
PromptId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Prompts = list[PromptId]


class ServiceConfigError(ValueError):
    """The ``services:`` section does not match the models; ``problems`` lists each issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _digit_keys(value: object) -> object:
    """YAML reads an unquoted ``1:`` as the integer 1; a digit key means the digit."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int) and 0 <= k <= 9 else k: v for k, v in value.items()}
    return value


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlayNode(_Node):
    """Play prompts, then go to ``next``. A welcome also accepts the language digits."""

    type: Literal["play"]
    prompts: Annotated[Prompts, Field(min_length=1)]
    next: NodeId
    barge_in: bool = False
    welcome: bool = False


class MenuNode(_Node):
    """Offer a choice: the menu is played at most ``1 + retries`` times.

    Each invalid digit or silence of ``timeout`` seconds after the prompt counts as one
    failure and plays the matching prompts; after the last failure the caller goes to
    ``default``.
    """

    type: Literal["menu"]
    prompts: Annotated[Prompts, Field(min_length=1)]
    options: dict[Digit, NodeId] = Field(min_length=1)
    default: NodeId
    timeout: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=9)
    invalid_prompts: Prompts = Field(default_factory=list)
    timeout_prompts: Prompts = Field(default_factory=list)
    barge_in: bool = True

    _options_digits = field_validator("options", mode="before")(_digit_keys)


class LanguageNode(_Node):
    """Switch the call's language, then go to ``next``."""

    type: Literal["language"]
    language: Language
    next: NodeId


class ScheduleNode(_Node):
    """Branch on the service calendar; ``holiday`` defaults to ``closed``."""

    type: Literal["schedule"]
    open: NodeId
    closed: NodeId
    holiday: NodeId | None = None


class NoticeNode(_Node):
    """Play the service's current outage notice, if any (set at runtime), then ``next``."""

    type: Literal["notice"]
    next: NodeId
    prompts: Prompts = Field(default_factory=list)
    barge_in: bool = False


class VoicemailNode(_Node):
    """Play ``prompts`` (the introduction), then record into ``mailbox``."""

    type: Literal["voicemail"]
    mailbox: Annotated[str, StringConstraints(min_length=1)]
    max_seconds: int = Field(default=120, gt=0, le=600)
    prompts: Prompts = Field(default_factory=list)


class QueueNode(_Node):
    """Leave the IVR for an ACD queue; ``skill`` defaults to the queue name."""

    type: Literal["queue"]
    queue: Annotated[str, StringConstraints(min_length=1)]
    skill: str | None = None
    priority: int = Field(default=0, ge=0, le=9)
    prompts: Prompts = Field(default_factory=list)


class TransferNode(_Node):
    """Transfer the call to an external number via the trunk."""

    type: Literal["transfer"]
    number: Annotated[str, StringConstraints(min_length=1)]
    prompts: Prompts = Field(default_factory=list)


class HangupNode(_Node):
    """Play ``prompts`` (e.g. goodbye), then hang up with ``reason``."""

    type: Literal["hangup"]
    reason: str = "normal"
    prompts: Prompts = Field(default_factory=list)


Node = Annotated[
    PlayNode
    | MenuNode
    | LanguageNode
    | ScheduleNode
    | NoticeNode
    | VoicemailNode
    | QueueNode
    | TransferNode
    | HangupNode,
    Field(discriminator="type"),
]


class LanguageConfig(BaseModel):
    """Languages of a service: Italian by default, others reachable by a welcome digit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Language = "it"
    available: list[Language] = Field(default_factory=lambda: ["it", "en"], min_length=1)
    switch: dict[Digit, Language] = Field(default_factory=lambda: {"9": "en"})

    _switch_digits = field_validator("switch", mode="before")(_digit_keys)


class ServiceConfig(BaseModel):
    """One service: its numbers, calendar, languages and IVR tree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    numbers: list[str] = Field(default_factory=list)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    languages: LanguageConfig = Field(default_factory=LanguageConfig)
    entry: NodeId = "start"
    ivr: dict[NodeId, Node] = Field(min_length=1)

    @field_validator("numbers", mode="before")
    @classmethod
    def _quoted_numbers(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 0461400133 as an octal integer: refuse to guess.
        if isinstance(value, list) and any(isinstance(item, int) for item in value):
            raise ValueError('write numbers as quoted strings, e.g. "800 228040"')
        return value


ServiceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]


class ServicesSection(BaseModel):
    """The ``services:`` section of a deployment's YAML file."""

    model_config = ConfigDict(extra="allow", frozen=True)

    services: dict[ServiceId, ServiceConfig]


def load_services(data: Mapping[str, Any]) -> dict[str, ServiceConfig]:
    """Validate a parsed YAML document holding ``services:``; other keys are ignored.

    Raises :class:`ServiceConfigError` naming each bad key path.
    """
    try:
        return dict(ServicesSection.model_validate(data).services)
    except ValidationError as error:
        raise ServiceConfigError([_describe(item) for item in error.errors()]) from None


def _describe(item: Mapping[str, Any]) -> str:
    loc = [str(part) for part in item["loc"]]
    if len(loc) > 4 and loc[0] == "services" and loc[2] == "ivr":
        del loc[4]  # the node type pydantic inserts for a discriminated union
    return f"{'.'.join(loc)}: {item['msg']}"
