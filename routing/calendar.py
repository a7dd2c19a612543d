"""Service calendar: is a service open at a given instant?

Tender §3.1.3: Monday to Friday 08:00–17:00 Europe/Rome, excluding public holidays;
San Vigilio (26 June, patron of Trento) is NOT a holiday, so the national Italian
calendar of the ``holidays`` package is used without any subdivision (its ``TN``
subdivision adds San Vigilio). Windows are compared in local wall time after
converting the instant with ``zoneinfo``, so DST changes need no special case.

Overrides force a service open or closed until an aware instant (Saturday openings
by agreement, Io Partecipo's campaigns). :class:`Overrides` is the pure model the
HTTP API persists: it is plain data with a JSON round trip.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import holidays
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

logger = logging.getLogger(__name__)

TIMEZONE = "Europe/Rome"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ClosedReason = Literal["after_hours", "holiday", "closure", "override"]


class CalendarError(ValueError):
    """A calendar question that cannot be answered (unknown service, naive instant)."""


class Window(BaseModel):
    """One weekly opening window: on ``days``, from ``start`` (included) to ``end`` (excluded)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    days: list[Weekday]
    start: dt.time = Field(alias="from")
    end: dt.time = Field(alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020.
        if isinstance(value, int):
            raise ValueError("write times as quoted strings, e.g. '17:00'")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> Window:
        if self.start >= self.end:
            raise ValueError(f"window start {self.start} is not before its end {self.end}")
        return self

    def contains(self, local: dt.datetime) -> bool:
        """Whether a local (Europe/Rome) wall time falls inside this window."""
        day = WEEKDAYS[local.weekday()]
        return day in self.days and self.start <= local.time().replace(tzinfo=None) < self.end


def _office_hours() -> list[Window]:
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    return [Window.model_validate({"days": weekdays, "from": "08:00", "to": "17:00"})]


class Override(BaseModel):
    """Force a service ``open`` or ``closed`` until an aware instant (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["open", "closed"]
    until: AwareDatetime

    def active(self, at_utc: dt.datetime) -> bool:
        return at_utc < self.until


class CalendarConfig(BaseModel):
    """A service's calendar as written in the ``services:`` configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: list[Window] = Field(default_factory=_office_hours)
    public_holidays: bool = True
    closures: list[dt.date] = Field(default_factory=list)
    override: Override | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Open:
    """The service is open."""

    overridden: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Closed:
    """The service is closed, and why."""

    reason: ClosedReason


State = Open | Closed

_OVERRIDES = TypeAdapter(dict[str, Override])


class Overrides:
    """Runtime overrides per service: a pure model the HTTP API persists as JSON."""

    def __init__(self, initial: Mapping[str, Override] | None = None) -> None:
        self._by_service: dict[str, Override] = dict(initial or {})

    def set(self, service: str, override: Override) -> None:
        self._by_service[service] = override

    def clear(self, service: str) -> bool:
        """Remove a service's override; return whether there was one."""
        return self._by_service.pop(service, None) is not None

    def active(self, service: str, at_utc: dt.datetime) -> Override | None:
        """The override in force at ``at_utc``; an expired one counts as absent."""
        override = self._by_service.get(service)
        return override if override is not None and override.active(at_utc) else None

    def expire(self, at_utc: dt.datetime) -> list[str]:
        """Drop overrides that ended before ``at_utc``; return their services."""
        ended = [s for s, o in self._by_service.items() if not o.active(at_utc)]
        for service in ended:
            del self._by_service[service]
        return ended

    def to_json(self) -> bytes:
        return _OVERRIDES.dump_json(self._by_service)

    @classmethod
    def from_json(cls, data: bytes | str) -> Overrides:
        """Load persisted overrides; raises pydantic's ``ValidationError`` on bad data."""
        return cls(_OVERRIDES.validate_json(data))

    def __contains__(self, service: object) -> bool:
        return service in self._by_service


class Calendar:
    """Answers ``state(service, at_utc)`` for every configured service."""

    def __init__(
        self,
        services: Mapping[str, CalendarConfig],
        *,
        overrides: Overrides | None = None,
        timezone: str = TIMEZONE,
        country: str = "IT",
    ) -> None:
        self._services = dict(services)
        self._zone = ZoneInfo(timezone)
        # No subdivision on purpose: IT-TN would add San Vigilio (26 June).
        self._holidays = holidays.country_holidays(country)
        self.overrides = overrides if overrides is not None else Overrides()
        for service, config in services.items():
            if config.override is not None and service not in self.overrides:
                self.overrides.set(service, config.override)

    def state(self, service: str, at_utc: dt.datetime) -> State:
        """Open or Closed(reason) for ``service`` at the aware instant ``at_utc``.

        Precedence: a runtime override, then a closure day, then a public holiday,
        then the weekly windows.
        """
        config = self._config(service)
        if at_utc.tzinfo is None or at_utc.utcoffset() is None:
            raise CalendarError(f"naive datetime {at_utc!r}: pass an aware instant")
        override = self.overrides.active(service, at_utc)
        if override is not None:
            return Open(overridden=True) if override.state == "open" else Closed(reason="override")
        return self._scheduled(config, at_utc.astimezone(self._zone))

    def _scheduled(self, config: CalendarConfig, local: dt.datetime) -> State:
        if local.date() in config.closures:
            return Closed(reason="closure")
        if config.public_holidays and local.date() in self._holidays:
            return Closed(reason="holiday")
        if any(window.contains(local) for window in config.hours):
            return Open()
        return Closed(reason="after_hours")

    def holiday_name(self, day: dt.date) -> str | None:
        """The public holiday's name on ``day`` (for announcements and reports)."""
        name = self._holidays.get(day)
        return str(name) if name is not None else None

    def _config(self, service: str) -> CalendarConfig:
        try:
            return self._services[service]
        except KeyError:
            raise CalendarError(f"unknown service {service!r}") from None
