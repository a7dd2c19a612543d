"""Counters behind the tender's KPIs and the figures computed from them (docs/kpi.md).

A `Tally` holds only integers (waits in microseconds), so sums are exact and do not
depend on the order calls were added: a replay and the live engine agree to the bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from metrics.events import us_to_wall

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


class F(IntEnum):
    """Index of each counter in `Tally.v`; the first six are the `Outcome` counts."""

    ANSWERED = 0
    ABANDONED = 1
    SHORT_ABANDONED = 2
    OVERFLOWED = 3
    IVR_HANGUP = 4
    AFTER_HOURS = 5
    WAIT_US = 6
    SOCIAL_ANSWERED = 7
    SOCIAL_WAIT_US = 8
    RESOLVED = 9
    ESCALATED = 10
    UNKNOWN = 11


class Tally:
    """Counts for one (service, sub-service, period) bucket, indexed by `F`.

    A plain list: the engine adds to 3 to 9 tallies per call, and list indexing is the
    cheapest update Python offers (a month report replays 100,000 calls).
    """

    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v = [0] * len(F)

    def add(self, other: Tally) -> None:
        """Add `other` into this tally, counter by counter."""
        mine = self.v
        for i, value in enumerate(other.v):
            mine[i] += value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tally) and self.v == other.v

    def __repr__(self) -> str:
        return f"Tally({', '.join(f'{f.name.lower()}={self.v[f]}' for f in F)})"

    __hash__ = None  # type: ignore[assignment]


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
    v = tally.v
    taken, mi, resolved = v[F.ANSWERED], v[F.ABANDONED], v[F.RESOLVED]
    q_den = resolved + v[F.ESCALATED] + (v[F.UNKNOWN] if unknown == "count" else 0)
    social = v[F.SOCIAL_ANSWERED]
    return Figures(
        tm=v[F.WAIT_US] / taken / 1e6 if taken else None,
        p=100.0 * mi / (mi + taken) if mi + taken else None,
        q=100.0 * resolved / q_den if q_den else None,
        tm_social=v[F.SOCIAL_WAIT_US] / social / 1e6 if social else None,
        counts={o.value: v[F[o.name]] for o in Outcome},
        taken=taken,
        abandoned=mi,
        resolved=resolved,
        escalated=v[F.ESCALATED],
        unknown=v[F.UNKNOWN],
        social_answered=social,
    )


PeriodKey = tuple[str, object]


class Calendar:
    """Local-time bucketing: half-hour slot, day and month of an instant."""

    def __init__(self, timezone: str) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ValueError, KeyError) as exc:
            raise KpiError(f"unknown time zone {timezone!r}") from exc
        self._cache: dict[int, tuple[PeriodKey, PeriodKey, PeriodKey]] = {}

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

    def periods_us(self, wall_us: int) -> tuple[PeriodKey, PeriodKey, PeriodKey]:
        """`periods` of an instant in epoch microseconds, cached per UTC quarter-hour.

        Every zone offset and DST change falls on a quarter-hour, so one UTC quarter-hour
        never straddles two local half-hour slots.
        """
        quarter = wall_us // 900_000_000
        found = self._cache.get(quarter)
        if found is None:
            found = self._cache[quarter] = self.periods(us_to_wall(quarter * 900_000_000))
        return found

    def forget_before(self, epoch: int) -> None:
        """Drop cached periods of instants before `epoch` (seconds)."""
        limit = epoch // 900
        for quarter in [q for q in self._cache if q < limit]:
            del self._cache[quarter]

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
