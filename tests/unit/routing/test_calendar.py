"""Service calendar: the hours and holiday table, DST, closures and overrides."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from routing.calendar import (
    Calendar,
    CalendarConfig,
    CalendarError,
    Closed,
    Open,
    Override,
    Overrides,
    State,
    Window,
)

ROME = ZoneInfo("Europe/Rome")
UTC = dt.UTC


def rome(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> dt.datetime:
    """A Rome wall time as an aware UTC instant (what the runtime passes in)."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=ROME).astimezone(UTC)


@pytest.fixture
def calendar() -> Calendar:
    return Calendar(
        {
            "office": CalendarConfig(),
            "closing": CalendarConfig(closures=[dt.date(2026, 12, 24)]),
            "always": CalendarConfig.model_validate(
                {
                    "hours": [
                        {
                            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                            "from": "02:00",
                            "to": "03:00",
                        }
                    ],
                    "public_holidays": False,
                }
            ),
        }
    )


OPEN = Open()
AFTER = Closed(reason="after_hours")
HOLIDAY = Closed(reason="holiday")

TABLE: list[tuple[str, dt.datetime, State]] = [
    ("Saturday", rome(2026, 11, 28, 10), AFTER),
    ("Sunday", rome(2026, 11, 29, 10), AFTER),
    ("ordinary Thursday", rome(2026, 11, 26, 10), OPEN),
    ("1 November (All Saints, a Sunday in 2026)", rome(2026, 11, 1, 10), HOLIDAY),
    ("1 November 2027 (a Monday)", rome(2027, 11, 1, 10), HOLIDAY),
    ("San Vigilio 26 June 2026 (Friday) is a working day", rome(2026, 6, 26, 10), OPEN),
    ("San Vigilio 26 June 2028 (Monday) is a working day", rome(2028, 6, 26, 10), OPEN),
    ("07:59", rome(2026, 11, 26, 7, 59), AFTER),
    ("08:00", rome(2026, 11, 26, 8, 0), OPEN),
    ("16:59", rome(2026, 11, 26, 16, 59), OPEN),
    ("17:00", rome(2026, 11, 26, 17, 0), AFTER),
    ("Easter Monday 2026", rome(2026, 4, 6, 10), HOLIDAY),
    ("Easter Monday 2027", rome(2027, 3, 29, 10), HOLIDAY),
    ("8 December 2026 (Tuesday)", rome(2026, 12, 8, 10), HOLIDAY),
    ("25 December 2026 (Friday)", rome(2026, 12, 25, 10), HOLIDAY),
    ("26 December 2027 (Sunday)", rome(2027, 12, 26, 10), HOLIDAY),
    ("24 December 2026 is an ordinary Thursday", rome(2026, 12, 24, 10), OPEN),
    # DST starts on Sunday 29 March 2026 and 28 March 2027 (closed: Sundays).
    ("DST start day 2026", rome(2026, 3, 29, 10), AFTER),
    ("DST start day 2027 is also Easter Sunday", rome(2027, 3, 28, 10), HOLIDAY),
    # DST ends on Sunday 25 October 2026 and 31 October 2027.
    ("DST end day 2026", rome(2026, 10, 25, 10), AFTER),
    ("DST end day 2027", rome(2027, 10, 31, 10), AFTER),
]


@pytest.mark.parametrize(("label", "at", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_hours_and_holidays_table(
    calendar: Calendar, label: str, at: dt.datetime, expected: State
) -> None:
    assert calendar.state("office", at) == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # Monday after DST starts (CEST, UTC+2): 08:00 Rome is 06:00 UTC.
        (dt.datetime(2026, 3, 30, 5, 59, tzinfo=UTC), AFTER),
        (dt.datetime(2026, 3, 30, 6, 0, tzinfo=UTC), OPEN),
        (dt.datetime(2026, 3, 30, 14, 59, tzinfo=UTC), OPEN),
        (dt.datetime(2026, 3, 30, 15, 0, tzinfo=UTC), AFTER),
        # Friday before DST starts (CET, UTC+1): 08:00 Rome is 07:00 UTC.
        (dt.datetime(2026, 3, 27, 6, 59, tzinfo=UTC), AFTER),
        (dt.datetime(2026, 3, 27, 7, 0, tzinfo=UTC), OPEN),
        # Monday after DST ends 2026 and 2027 (CET again).
        (dt.datetime(2026, 10, 26, 6, 30, tzinfo=UTC), AFTER),
        (dt.datetime(2026, 10, 26, 7, 0, tzinfo=UTC), OPEN),
        (dt.datetime(2026, 10, 26, 15, 59, tzinfo=UTC), OPEN),
        (dt.datetime(2026, 10, 26, 16, 0, tzinfo=UTC), AFTER),
        (dt.datetime(2027, 11, 2, 6, 59, tzinfo=UTC), AFTER),
        (dt.datetime(2027, 11, 2, 7, 0, tzinfo=UTC), OPEN),
        (dt.datetime(2027, 3, 29, 6, 0, tzinfo=UTC), HOLIDAY),  # Easter Monday 2027
        (dt.datetime(2027, 3, 30, 6, 0, tzinfo=UTC), OPEN),  # first CEST working day
    ],
)
def test_utc_instants_around_dst_changes(
    calendar: Calendar, utc: dt.datetime, expected: State
) -> None:
    assert calendar.state("office", utc) == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # 29 March 2026: 02:00–03:00 Rome does not exist; 01:00 UTC is 03:00 CEST.
        (dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC), AFTER),  # 01:59 CET
        (dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC), AFTER),  # 03:00 CEST
        # 25 October 2026: 02:00–03:00 Rome happens twice (two UTC hours).
        (dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC), OPEN),  # 02:00 CEST
        (dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), OPEN),  # 02:30 CET
        (dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC), AFTER),  # 03:00 CET
        (dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC), OPEN),  # 02:30 CEST
        (dt.datetime(2027, 10, 31, 1, 30, tzinfo=UTC), OPEN),  # 02:30 CET
    ],
)
def test_wall_clock_window_across_the_missing_and_repeated_hour(
    calendar: Calendar, utc: dt.datetime, expected: State
) -> None:
    assert calendar.state("always", utc) == expected


def test_closure_day_from_config(calendar: Calendar) -> None:
    assert calendar.state("closing", rome(2026, 12, 24, 10)) == Closed(reason="closure")
    assert calendar.state("closing", rome(2026, 12, 23, 10)) == OPEN


def test_no_trento_holiday_sneaks_in(calendar: Calendar) -> None:
    for year in range(2026, 2031):
        assert calendar.holiday_name(dt.date(year, 6, 26)) is None
    assert calendar.holiday_name(dt.date(2026, 12, 25)) is not None


def test_override_opens_a_closed_service_at_once_and_expires(calendar: Calendar) -> None:
    saturday = rome(2026, 11, 28, 10)
    assert calendar.state("office", saturday) == AFTER
    until = rome(2026, 11, 28, 13)
    calendar.overrides.set("office", Override(state="open", until=until))
    assert calendar.state("office", saturday) == Open(overridden=True)
    assert calendar.state("office", until - dt.timedelta(seconds=1)) == Open(overridden=True)
    assert calendar.state("office", until) == AFTER
    assert calendar.overrides.expire(until) == ["office"]
    assert "office" not in calendar.overrides


def test_override_closes_an_open_service_and_can_be_cleared(calendar: Calendar) -> None:
    weekday = rome(2026, 11, 26, 10)
    until = rome(2026, 11, 27, 17)
    calendar.overrides.set("office", Override(state="closed", until=until))
    assert calendar.state("office", weekday) == Closed(reason="override")
    assert calendar.overrides.clear("office") is True
    assert calendar.overrides.clear("office") is False
    assert calendar.state("office", weekday) == OPEN


def test_override_on_a_holiday(calendar: Calendar) -> None:
    christmas = rome(2026, 12, 25, 9)
    calendar.overrides.set("office", Override(state="open", until=rome(2026, 12, 25, 12)))
    assert calendar.state("office", christmas) == Open(overridden=True)
    assert calendar.state("office", rome(2026, 12, 25, 12)) == HOLIDAY


def test_override_in_config_is_loaded() -> None:
    config = CalendarConfig.model_validate(
        {"override": {"state": "open", "until": "2026-11-28T13:00:00+01:00"}}
    )
    calendar = Calendar({"office": config})
    assert calendar.state("office", rome(2026, 11, 28, 12, 59)) == Open(overridden=True)
    assert calendar.state("office", rome(2026, 11, 28, 13, 0)) == AFTER


def test_overrides_round_trip_through_json() -> None:
    until = dt.datetime(2026, 12, 1, 17, tzinfo=ROME)
    overrides = Overrides({"io-partecipo": Override(state="open", until=until)})
    loaded = Overrides.from_json(overrides.to_json())
    active = loaded.active("io-partecipo", until - dt.timedelta(minutes=1))
    assert active is not None and active.until == until and active.state == "open"


def test_override_needs_an_aware_until() -> None:
    with pytest.raises(ValidationError):
        Override.model_validate({"state": "open", "until": "2026-12-01T17:00:00"})


def test_unknown_service_and_naive_instant_are_clear_errors(calendar: Calendar) -> None:
    with pytest.raises(CalendarError, match="unknown service"):
        calendar.state("nope", rome(2026, 11, 26))
    with pytest.raises(CalendarError, match="naive"):
        calendar.state("office", dt.datetime(2026, 11, 26, 10))


def test_unquoted_yaml_time_is_refused() -> None:
    # YAML 1.1 turns an unquoted 17:00 into 1020; it must not become 00:17.
    with pytest.raises(ValidationError, match="quoted"):
        Window.model_validate({"days": ["mon"], "from": "08:00", "to": 1020})


def test_window_must_start_before_it_ends() -> None:
    with pytest.raises(ValidationError):
        Window.model_validate({"days": ["mon"], "from": "17:00", "to": "08:00"})
