"""The call event record: the one stable fact format the KPIs are computed from.

Every call and operator fact the runtime observes becomes a `CallEvent`. The record is
append-only: the KPI engine (`metrics.kpi`), the SQLite store (`metrics.store`), the
Prometheus exporter and the Asterisk `queue_log` export all read this one shape.
The JSON form is documented field by field in docs/events.md and versioned (`"v": 1`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EMPTY_DATA: Mapping[str, str] = MappingProxyType({})


class EventFormatError(ValueError):
    """An event (or its JSON) does not follow the documented format."""


class EventKind(StrEnum):
    """What happened; the values are the stable wire names (docs/events.md)."""

    ARRIVED = "arrived"
    IVR_ENTERED = "ivr_entered"
    WELCOME_FINISHED = "welcome_finished"
    DIGIT = "digit"
    CHOICE = "choice"
    QUEUED = "queued"
    OFFERED = "offered"
    RINGING = "ringing"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    TRANSFERRED = "transferred"
    DISPOSITION = "disposition"
    ENDED = "ended"
    AFTER_HOURS = "after_hours"
    OPERATOR_STATE = "operator_state"


class Disposition(StrEnum):
    """How the operator qualified a taken call (the Q numerator and denominator)."""

    RESOLVED = "resolved"
    ESCALATED = "escalated"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """One fact about a call or an operator.

    `wall` is the UTC instant (aware); `mono` the runtime's monotonic seconds, used for
    durations because it never jumps.  `seq` is the global order of emission, assigned
    by `EventStore.append` when left at 0; replays are ordered by it.
    """

    kind: EventKind
    wall: datetime
    mono: float
    call_id: str | None = None
    service: str | None = None
    sub_service: str | None = None
    queue: str | None = None
    operator: str | None = None
    data: Mapping[str, str] = field(default_factory=lambda: EMPTY_DATA)
    seq: int = 0

    wall_us: int = field(init=False, repr=False, compare=False)
    """Microseconds since the Unix epoch (UTC): the stored, exact form of `wall`."""

    def __post_init__(self) -> None:
        # Validation runs for every replayed row too, so the common cases take the
        # cheapest checks first (exact types, the shared empty data mapping).
        if type(self.kind) is not EventKind:
            object.__setattr__(self, "kind", parse_kind(self.kind))
        object.__setattr__(self, "wall", _utc(self.wall))
        object.__setattr__(self, "wall_us", wall_to_us(self.wall))
        if not _finite_number(self.mono):
            raise EventFormatError("mono must be a finite number")
        if not isinstance(self.seq, int) or self.seq < 0:
            raise EventFormatError("seq must be a non-negative integer")
        if self.data is not EMPTY_DATA:
            object.__setattr__(self, "data", _frozen_data(self.data))
        for value in (self.call_id, self.service, self.sub_service, self.queue, self.operator):
            if value is not None and type(value) is not str:
                raise EventFormatError(
                    "call_id, service, sub_service, queue and operator must be strings or null"
                )


class EventFact(NamedTuple):
    """The fields the KPI engine reads: a cheap stand-in for `CallEvent` on bulk replays.

    Built by `EventStore.replay_facts` from trusted rows, without `CallEvent`'s checks.
    """

    kind: EventKind
    call_id: str | None
    wall_us: int
    mono: float
    service: str | None
    sub_service: str | None
    data: Mapping[str, str]


def parse_kind(value: object) -> EventKind:
    """The `EventKind` named by `value`, or `EventFormatError`."""
    try:
        return EventKind(str(value))
    except ValueError:
        raise EventFormatError(f"unknown event kind {value!r}") from None


def _utc(wall: object) -> datetime:
    if not isinstance(wall, datetime) or wall.utcoffset() is None:
        raise EventFormatError("wall must be an aware datetime")
    return wall if wall.tzinfo is UTC else wall.astimezone(UTC)


def _finite_number(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except TypeError:
        return False


def _frozen_data(data: object) -> Mapping[str, str]:
    if not isinstance(data, Mapping):
        raise EventFormatError("data must be a mapping of strings")
    if not data:
        return EMPTY_DATA
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise EventFormatError("data keys and values must be strings")
    return MappingProxyType(dict(sorted(data.items())))


def wall_to_us(wall: datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding)."""
    delta = wall - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_to_wall(wall_us: int) -> datetime:
    """The aware UTC datetime for `wall_us` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=wall_us)


def to_dict(event: CallEvent) -> dict[str, Any]:
    """The documented JSON object for `event` (docs/events.md)."""
    return {
        "v": FORMAT_VERSION,
        "seq": event.seq,
        "kind": event.kind.value,
        "wall": event.wall.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "mono": event.mono,
        "call_id": event.call_id,
        "service": event.service,
        "sub_service": event.sub_service,
        "queue": event.queue,
        "operator": event.operator,
        "data": dict(event.data),
    }


def to_json(event: CallEvent) -> str:
    """One line of JSON, keys sorted, no spaces: byte-stable for equal events."""
    return json.dumps(to_dict(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_dict(obj: object) -> CallEvent:
    """Parse the documented JSON object; `EventFormatError` on anything else."""
    if not isinstance(obj, Mapping):
        raise EventFormatError("an event must be a JSON object")
    if obj.get("v", FORMAT_VERSION) != FORMAT_VERSION:
        raise EventFormatError(f"unsupported event format version {obj.get('v')!r}")
    try:
        return CallEvent(
            kind=parse_kind(obj["kind"]),
            wall=_parse_wall(obj["wall"]),
            mono=obj["mono"],
            call_id=obj.get("call_id"),
            service=obj.get("service"),
            sub_service=obj.get("sub_service"),
            queue=obj.get("queue"),
            operator=obj.get("operator"),
            data=obj.get("data") or {},
            seq=obj.get("seq", 0),
        )
    except KeyError as exc:
        raise EventFormatError(f"missing field {exc.args[0]!r}") from None
    except TypeError as exc:
        raise EventFormatError(str(exc)) from None


def from_json(text: str | bytes) -> CallEvent:
    """Parse one JSON line produced by `to_json`."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventFormatError(f"invalid JSON: {exc}") from None
    return from_dict(obj)


def _parse_wall(value: object) -> datetime:
    if not isinstance(value, str):
        raise EventFormatError("wall must be an ISO 8601 string")
    try:
        wall = datetime.fromisoformat(value)
    except ValueError:
        raise EventFormatError(f"invalid wall time {value!r}") from None
    if wall.utcoffset() is None:
        raise EventFormatError("wall must carry a UTC offset ('Z')")
    return wall
