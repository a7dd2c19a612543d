"""The KPI engine's inputs, outputs and configuration (the engine is in `metrics.kpi`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from metrics.events import EventKind
from metrics.tally import Outcome, UnknownPolicy


class Fact(Protocol):
    """What the engine reads from an event: a `CallEvent` or an `EventFact`."""

    @property
    def kind(self) -> EventKind: ...
    @property
    def call_id(self) -> str | None: ...
    @property
    def wall_us(self) -> int: ...
    @property
    def mono(self) -> float: ...
    @property
    def service(self) -> str | None: ...
    @property
    def sub_service(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, str]: ...


InWindow = Callable[[str, datetime], bool]
"""`in_window(service, local_datetime)`: is the service open then (the calendar decides)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiConfig:
    """The configurable interpretations (docs/kpi.md)."""

    abandon_threshold: float = 10.0
    abandon_reference: Literal["queued", "arrived"] = "queued"
    unknown_disposition: UnknownPolicy = "count"
    timezone: str = "Europe/Rome"
    social_channel: str = "chat"
    retention: float = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCounted:
    """A call's outcome became final (feeds `centralino_calls_total`)."""

    service: str
    sub_service: str | None
    outcome: Outcome
    channel: str
    wait: float | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrMeasured:
    """A call reached its first queue: seconds spent in welcome and IVR before it."""

    service: str
    channel: str
    seconds: float
    at: float


EngineOutput = CallCounted | IvrMeasured
