"""Counters behind the tender's KPIs and the figures computed from them (docs/kpi.md).

A `Tally` holds only integers (waits in microseconds), so sums are exact and do not
depend on the order calls were added: a replay and the live engine agree to the bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

SLOT_MINUTES = 30
ALL = "*"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class KpiError(ValueError):
    """A query or configuration the KPI engine cannot answer."""


class Outcome(StrEnum):
    """How a call ended, for counting (the `outcome` label of `centralino_calls_total`)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"
    OVERFLOWED = "overflowed"
    IVR_HANGUP = "ivr_hangup"
    AFTER_HOURS = "after_hours"


UnknownPolicy = Literal["count", "exclude"]


@dataclass(slots=True)
class Tally:
    """Counts for one (service, sub-service, period) bucket."""

    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    ivr_hangup: int = 0
    after_hours: int = 0
    wait_us: int = 0
    social_answered: int = 0
    social_wait_us: int = 0
    resolved: int = 0
    escalated: int = 0
    unknown: int = 0

    def add(self, other: Tally) -> None:
        """Add `other` into this tally, field by field."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """Tm (seconds), P and Q (percent) and the counts they come from.

    A KPI with an empty denominator is None (no call of that kind in the period).
    """

    tm: float | None
    p: float | None
    q: float | None
    tm_social: float | None
    counts: Mapping[str, int]
    taken: int
    abandoned: int
    resolved: int
    escalated: int
    unknown: int
    social_answered: int


def figures_from(tally: Tally, unknown: UnknownPolicy) -> Figures:
    """Tm = ΣTi/N, P = ΣMi/Σ(Mi+Ni)·100, Q = Ci/Cr·100 (DOMAIN.md, SLAs)."""
    taken, mi = tally.answered, tally.abandoned
    q_den = tally.resolved + tally.escalated + (tally.unknown if unknown == "count" else 0)
    return Figures(
        tm=tally.wait_us / taken / 1e6 if taken else None,
        p=100.0 * mi / (mi + taken) if mi + taken else None,
        q=100.0 * tally.resolved / q_den if q_den else None,
        tm_social=(
            tally.social_wait_us / tally.social_answered / 1e6 if tally.social_answered else None
        ),
        counts={o.value: getattr(tally, o.value) for o in Outcome},
        taken=taken,
        abandoned=mi,
        resolved=tally.resolved,
        escalated=tally.escalated,
        unknown=tally.unknown,
        social_answered=tally.social_answered,
    )


PeriodKey = tuple[str, object]


class Calendar:
    """Local-time bucketing: half-hour slot, day and month of an instant."""

    def __init__(self, timezone: str) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ValueError, KeyError) as exc:
            raise KpiError(f"unknown time zone {timezone!r}") from exc

    def local(self, wall: datetime) -> datetime:
        """`wall` (aware) in local time; a naive datetime is taken as local already."""
        if wall.utcoffset() is None:
            return wall.replace(tzinfo=self.tz)
        return wall.astimezone(self.tz)

    def slot_start(self, wall: datetime) -> datetime:
        """The aware local start of the half-hour slot holding `wall`.

        Flooring the local wall clock keeps `fold`, so the repeated 02:00-03:00 hour of
        the autumn DST change gives two distinct slots, as the UTC instants differ.
        """
        local = self.local(wall)
        minute = local.minute - local.minute % SLOT_MINUTES
        floored = local.replace(minute=minute, second=0, microsecond=0)
        return floored.astimezone(self.tz)

    def periods(self, wall: datetime) -> tuple[PeriodKey, PeriodKey, PeriodKey]:
        """The slot (UTC epoch seconds of its start), local day and local month."""
        local = self.local(wall)
        slot = int(self.slot_start(local).timestamp())
        return ("slot", slot), ("day", local.date()), ("month", f"{local:%Y-%m}")

    def period_key(self, period: tuple[str, object]) -> PeriodKey:
        """Normalise a query period: ('slot', datetime), ('day', date), ('month', 'YYYY-MM')."""
        if not isinstance(period, tuple) or len(period) != 2:
            raise KpiError("period must be a (kind, value) pair")
        kind, value = period
        if kind == "slot" and isinstance(value, datetime):
            return ("slot", int(self.slot_start(value).timestamp()))
        if kind == "day" and isinstance(value, date) and not isinstance(value, datetime):
            return ("day", value)
        if kind == "month" and isinstance(value, str) and _MONTH.match(value):
            return ("month", value)
        raise KpiError(f"invalid period {period!r}")

    def slot_datetime(self, slot_epoch: int) -> datetime:
        """The aware local datetime of a slot key."""
        return datetime.fromtimestamp(slot_epoch, self.tz)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The aware local [start, end) of month 'YYYY-MM'."""
    match = _MONTH.match(month)
    if match is None:
        raise KpiError(f"invalid month {month!r} (expected YYYY-MM)")
    year, mon = int(match[1]), int(match[2])
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return start, end
