"""The event record and its stable JSON form (docs/events.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.events import (
    CallEvent,
    EventFormatError,
    EventKind,
    from_json,
    to_json,
    us_to_wall,
    wall_to_us,
)

WALL = datetime(2026, 11, 24, 8, 0, 1, 250000, tzinfo=UTC)


def test_json_is_the_documented_line() -> None:
    event = CallEvent(
        kind=EventKind.DIGIT,
        call_id="c1",
        service="td",
        wall=WALL,
        mono=12.5,
        data={"digit": "2"},
        seq=7,
    )
    assert to_json(event) == (
        '{"call_id":"c1","data":{"digit":"2"},"kind":"digit","mono":12.5,"operator":null,'
        '"queue":null,"seq":7,"service":"td","sub_service":null,'
        '"v":1,"wall":"2026-11-24T08:00:01.250000Z"}'
    )


def test_wall_is_normalised_to_utc() -> None:
    rome = timezone(timedelta(hours=1))
    event = CallEvent(kind="queued", wall=WALL.astimezone(rome), mono=0.0)  # type: ignore[arg-type]
    assert event.kind is EventKind.QUEUED
    assert event.wall.tzinfo is UTC and event.wall == WALL


@given(
    kind=st.sampled_from(EventKind),
    us=st.integers(min_value=0, max_value=4_102_444_800_000_000),
    mono=st.floats(allow_nan=False, allow_infinity=False),
    text=st.none() | st.text(max_size=8),
    data=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    seq=st.integers(min_value=0, max_value=2**62),
)
def test_json_round_trip(
    kind: EventKind, us: int, mono: float, text: str | None, data: dict[str, str], seq: int
) -> None:
    event = CallEvent(
        kind=kind, wall=us_to_wall(us), mono=mono, call_id=text, operator=text, data=data, seq=seq
    )
    again = from_json(to_json(event))
    assert again == event
    assert wall_to_us(again.wall) == us
    assert to_json(again) == to_json(event)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"kind":"nope","wall":"2026-11-24T08:00:00Z","mono":1}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00","mono":1}',
        '{"kind":"ended","wall":"yesterday","mono":1}',
        '{"kind":"ended","mono":1}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00Z","mono":"x"}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00Z","mono":1,"data":{"a":1}}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00Z","mono":1,"service":5}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00Z","mono":1,"v":2}',
        '{"kind":"ended","wall":"2026-11-24T08:00:00Z","mono":1,"seq":-1}',
    ],
)
def test_bad_input_raises_event_format_error(text: str) -> None:
    with pytest.raises(EventFormatError):
        from_json(text)


def test_naive_wall_is_rejected() -> None:
    with pytest.raises(EventFormatError):
        CallEvent(kind=EventKind.ENDED, wall=datetime(2026, 1, 1), mono=0.0)


def test_data_is_read_only() -> None:
    event = CallEvent(kind=EventKind.ENDED, wall=WALL, mono=0.0, data={"reason": "bye"})
    with pytest.raises(TypeError):
        event.data["reason"] = "x"  # type: ignore[index]
    assert json.loads(to_json(event))["data"] == {"reason": "bye"}
