"""Scripted call events for the metrics tests: explicit instants, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from metrics.events import CallEvent, EventKind

ROME = ZoneInfo("Europe/Rome")
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def rome(y: int, mo: int, d: int, h: int, mi: int, s: float = 0.0, *, fold: int = 0) -> datetime:
    """An aware UTC instant given as Europe/Rome wall-clock time."""
    whole = int(s)
    micro = round((s - whole) * 1_000_000)
    local = datetime(y, mo, d, h, mi, whole, micro, tzinfo=ROME, fold=fold)
    return local.astimezone(UTC)


def office_hours(service: str, local: datetime) -> bool:
    """A stand-in calendar: Monday to Friday, 08:00 <= t < 17:00 local."""
    return local.weekday() < 5 and 8 <= local.hour < 17


def always_open(service: str, local: datetime) -> bool:
    return True


@dataclass
class Script:
    """Builds an ordered event list; `mono` is seconds since BASE, so durations are exact."""

    events: list[CallEvent] = field(default_factory=list)

    def add(self, kind: EventKind, call_id: str | None, wall: datetime, **kw: object) -> None:
        mono = (wall - BASE).total_seconds()
        event = CallEvent(kind=kind, call_id=call_id, wall=wall, mono=mono, **kw)  # type: ignore[arg-type]
        self.events.append(event)

    def call(
        self,
        call_id: str,
        arrive: datetime,
        *,
        service: str = "td",
        sub_service: str | None = None,
        ivr: float = 0.0,
        wait: float | None = None,
        answer: bool = True,
        disposition: str | None = "resolved",
        talk: float = 180.0,
        channel: str | None = None,
    ) -> None:
        """One call: arrival, `ivr` s of welcome/IVR, queue, then answer or hang-up."""
        common = {"service": service, "sub_service": sub_service}
        data = {"channel": channel} if channel else {}
        self.add(EventKind.ARRIVED, call_id, arrive, service=service, data=data)
        if wait is None:
            self.add(EventKind.ABANDONED, call_id, arrive + timedelta(seconds=ivr), **common)
            return
        queued = arrive + timedelta(seconds=ivr)
        self.add(EventKind.QUEUED, call_id, queued, queue=service, **common)
        done = queued + timedelta(seconds=wait)
        if not answer:
            self.add(EventKind.ABANDONED, call_id, done, queue=service, **common)
            return
        self.add(EventKind.ANSWERED, call_id, done, queue=service, operator="op1", **common)
        end = done + timedelta(seconds=talk)
        self.add(EventKind.ENDED, call_id, end, **common)
        if disposition:
            self.add(
                EventKind.DISPOSITION,
                call_id,
                end + timedelta(seconds=30),
                data={"disposition": disposition},
                **common,
            )

    def sorted(self) -> list[CallEvent]:
        """Events in time order (how the runtime would have emitted them)."""
        return sorted(self.events, key=lambda e: e.wall)
