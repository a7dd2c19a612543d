"""Golden vectors for Tm, P and Q, computed by hand (DOMAIN.md, SLAs; docs/kpi.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from _metrics_helpers import ROME, Script, always_open, office_hours, rome

from metrics.events import CallEvent, EventKind
from metrics.kpi import CallCounted, IvrMeasured, KpiConfig, KpiEngine
from metrics.tally import KpiError, Outcome


def run(script: Script, config: KpiConfig | None = None, window=office_hours) -> KpiEngine:
    engine = KpiEngine(in_window=window, config=config)
    for event in script.sorted():
        engine.receive_event(event)
    return engine


# 2026-11-24 is a Tuesday.
DAY = date(2026, 11, 24)


def test_hangups_at_9_9_and_10_1_seconds_after_queue_entry() -> None:
    s = Script()
    s.call("short", rome(2026, 11, 24, 9, 0), ivr=20, wait=9.9, answer=False)
    s.call("long", rome(2026, 11, 24, 9, 1), ivr=20, wait=10.1, answer=False)
    s.call("ok", rome(2026, 11, 24, 9, 2), ivr=20, wait=20)
    f = run(s).figures("td", ("day", DAY))
    assert f.counts["short_abandoned"] == 1
    assert f.counts["abandoned"] == 1
    assert f.abandoned == 1 and f.taken == 1
    assert f.p == pytest.approx(50.0)  # 1 / (1 + 1); the 9.9 s call is in neither term
    assert f.tm == pytest.approx(20.0)


def test_exactly_ten_seconds_is_not_an_abandon() -> None:
    s = Script()
    s.call("edge", rome(2026, 11, 24, 9, 0), wait=10.0, answer=False)
    # Monotonic readings whose float difference is 10.00000000000091, not 10.0.
    queued, hung_up = s.events[1], s.events[2]
    s.events[1:3] = [replace(queued, mono=8184.809515), replace(hung_up, mono=8194.809515)]
    f = run(s).figures("td", ("day", DAY))
    assert f.counts["short_abandoned"] == 1 and f.abandoned == 0
    assert f.p is None  # no Mi and no Ni: P is undefined, not 0


def test_threshold_and_reference_point_are_configurable() -> None:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), ivr=5, wait=9.9, answer=False)
    from_arrival = run(s, KpiConfig(abandon_reference="arrived")).figures("td", ("day", DAY))
    assert from_arrival.abandoned == 1  # 14.9 s after arrival
    lower = run(s, KpiConfig(abandon_threshold=5.0)).figures("td", ("day", DAY))
    assert lower.abandoned == 1
    assert run(s).figures("td", ("day", DAY)).abandoned == 0


def test_ivr_and_welcome_are_excluded_from_tm() -> None:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), ivr=40, wait=12)
    s.call("b", rome(2026, 11, 24, 9, 5), ivr=3, wait=18)
    f = run(s).figures("td", ("month", "2026-11"))
    assert f.tm == pytest.approx(15.0)  # (12 + 18) / 2, not (52 + 21) / 2


def test_call_crossing_a_half_hour_boundary_counts_in_its_queue_entry_slot() -> None:
    s = Script()
    s.call("x", rome(2026, 11, 24, 9, 29, 40), ivr=10, wait=30)  # queued 09:29:50
    engine = run(s)
    first = engine.figures("td", ("slot", datetime(2026, 11, 24, 9, 15, tzinfo=ROME)))
    second = engine.figures("td", ("slot", datetime(2026, 11, 24, 9, 30)))  # naive = local
    assert first.taken == 1 and first.tm == pytest.approx(30.0)
    assert second.taken == 0 and second.tm is None
    assert engine.slots("td", "2026-11") == [datetime(2026, 11, 24, 9, 0, tzinfo=ROME)]


def test_calls_before_eight_and_from_seventeen_are_after_hours() -> None:
    s = Script()
    s.call("early", rome(2026, 11, 24, 7, 59, 59), ivr=5, wait=30)  # answered 08:00:34
    s.call("late", rome(2026, 11, 24, 17, 0), wait=30, answer=False)
    s.call("last", rome(2026, 11, 24, 16, 59, 59), ivr=5, wait=20)  # answered after 17:00
    f = run(s).figures("td", ("day", DAY))
    assert f.counts["after_hours"] == 2
    assert f.taken == 1 and f.abandoned == 0
    assert f.tm == pytest.approx(20.0)


def test_after_hours_event_classifies_the_call() -> None:
    s = Script()
    s.add(EventKind.ARRIVED, "h", rome(2026, 11, 24, 10, 0), service="td")
    s.add(EventKind.AFTER_HOURS, "h", rome(2026, 11, 24, 10, 0, 1), service="td")
    s.add(EventKind.ENDED, "h", rome(2026, 11, 24, 10, 0, 30), service="td")
    f = run(s).figures("td", ("day", DAY))
    assert f.counts == {**_zero(), "after_hours": 1}


def test_transfer_to_referent_counts_as_escalated_unless_a_later_disposition() -> None:
    s = Script()
    t = rome(2026, 11, 24, 10, 0)
    s.call("esc", t, wait=5, disposition=None)
    s.add(EventKind.TRANSFERRED, "esc", t + timedelta(seconds=60), data={"to": "referent"})
    s.call("res", t, wait=5, disposition="resolved")
    s.call("back", t, wait=5, disposition=None)
    s.add(EventKind.TRANSFERRED, "back", t + timedelta(seconds=60), data={"to": "referent"})
    s.add(
        EventKind.DISPOSITION, "back", t + timedelta(seconds=900), data={"disposition": "resolved"}
    )
    s.call("queue", t, wait=5, disposition=None)
    s.add(EventKind.TRANSFERRED, "queue", t + timedelta(seconds=60), data={"to": "queue"})
    counted = run(s).figures("td", ("month", "2026-11"))
    assert (counted.resolved, counted.escalated, counted.unknown) == (2, 1, 1)
    assert counted.q == pytest.approx(50.0)  # 2 / 4
    excluded = run(s, KpiConfig(unknown_disposition="exclude")).figures("td", ("month", "2026-11"))
    assert excluded.q == pytest.approx(200 / 3)  # 2 / 3


def test_month_boundary_is_local_time() -> None:
    s = Script()
    s.call("oct", rome(2026, 10, 31, 23, 59), wait=4)  # 22:59 UTC
    s.call("nov", rome(2026, 11, 1, 0, 30), wait=6)  # 23:30 UTC, 31 Oct
    engine = run(s, window=always_open)
    assert engine.figures("td", ("month", "2026-10")).tm == pytest.approx(4.0)
    assert engine.figures("td", ("month", "2026-11")).tm == pytest.approx(6.0)
    assert engine.figures("td", ("day", date(2026, 11, 1))).taken == 1


def test_spring_forward_wait_is_real_elapsed_time() -> None:
    s = Script()
    # 2026-03-29: 02:00 local jumps to 03:00. Queued 01:50, answered 03:05 local: 15 min.
    s.call("dst", rome(2026, 3, 29, 1, 50), wait=15 * 60)
    engine = run(s, window=always_open)
    assert engine.figures("td", ("day", date(2026, 3, 29))).tm == pytest.approx(900.0)


def test_autumn_repeated_hour_gives_two_slots() -> None:
    s = Script()
    s.call("first", rome(2026, 10, 25, 2, 40, fold=0), wait=3)
    s.call("second", rome(2026, 10, 25, 2, 40, fold=1), wait=7)
    engine = run(s, window=always_open)
    a = engine.figures("td", ("slot", datetime(2026, 10, 25, 2, 30, tzinfo=ROME, fold=0)))
    b = engine.figures("td", ("slot", datetime(2026, 10, 25, 2, 30, tzinfo=ROME, fold=1)))
    assert (a.tm, b.tm) == (pytest.approx(3.0), pytest.approx(7.0))
    assert engine.figures("td", ("day", date(2026, 10, 25))).taken == 2
    assert len(engine.slots("td", "2026-10")) == 2


def test_daytime_slots_follow_summer_time() -> None:
    s = Script()
    s.call("fri", rome(2026, 3, 27, 8, 10), wait=1)  # 07:10 UTC
    s.call("mon", rome(2026, 3, 30, 8, 10), wait=1)  # 06:10 UTC
    starts = run(s).slots("td", "2026-03")
    assert [(t.day, t.hour, t.minute) for t in starts] == [(27, 8, 0), (30, 8, 0)]


def test_requeue_keeps_first_queue_entry_and_overflow_is_in_neither_term() -> None:
    s = Script()
    t = rome(2026, 11, 24, 11, 0)
    s.add(EventKind.ARRIVED, "r", t, service="td")
    s.add(EventKind.QUEUED, "r", t + timedelta(seconds=5), service="td", queue="q1")
    s.add(EventKind.OVERFLOWED, "r", t + timedelta(seconds=65), service="td", queue="q1")
    s.add(EventKind.QUEUED, "r", t + timedelta(seconds=66), service="td", queue="q2")
    s.add(EventKind.ANSWERED, "r", t + timedelta(seconds=75), service="td", operator="o")
    s.add(EventKind.ARRIVED, "v", t, service="td")
    s.add(EventKind.QUEUED, "v", t + timedelta(seconds=5), service="td", queue="q1")
    s.add(
        EventKind.OVERFLOWED, "v", t + timedelta(seconds=65), service="td", data={"to": "voicemail"}
    )
    s.add(EventKind.ENDED, "v", t + timedelta(seconds=120), service="td")
    f = run(s).figures("td", ("day", DAY))
    assert f.tm == pytest.approx(70.0)
    assert f.counts["overflowed"] == 1 and f.counts["answered"] == 1
    assert f.p == pytest.approx(0.0)


def test_ivr_hangup_and_sub_services() -> None:
    s = Script()
    t = rome(2026, 11, 24, 12, 0)
    s.call("i", t, ivr=30, wait=None)
    s.add(EventKind.CHOICE, "c", t, service="td", sub_service="cps", data={"digit": "2"})
    s.call("c", t, sub_service="cps", wait=8)
    s.call("m", t, sub_service="mepat", wait=2)
    engine = run(s)
    assert engine.figures("td", ("day", DAY)).counts["ivr_hangup"] == 1
    assert engine.figures("td", ("day", DAY), sub_service="cps").tm == pytest.approx(8.0)
    assert engine.sub_services("td") == ["cps", "mepat"]
    assert engine.figures(None, ("day", DAY)).taken == 2


def test_services_are_separate() -> None:
    s = Script()
    t = rome(2026, 11, 24, 9, 0)
    s.call("a", t, service="td", wait=10)
    s.call("b", t, service="uru", wait=30)
    engine = run(s)
    assert engine.services() == ["td", "uru"]
    assert engine.figures("uru", ("day", DAY)).tm == pytest.approx(30.0)
    assert engine.figures(None, ("day", DAY)).tm == pytest.approx(20.0)


def test_social_tm_is_separate_from_voice() -> None:
    s = Script()
    t = rome(2026, 11, 24, 9, 0)
    s.call("chat", t, ivr=120, wait=14, channel="chat")  # 120 s with the virtual agent
    s.call("voice", t, wait=10)
    f = run(s).figures("td", ("day", DAY))
    assert f.tm_social == pytest.approx(14.0)
    assert f.tm == pytest.approx(10.0) and f.taken == 1


def test_outputs_feed_the_exporter() -> None:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), ivr=7, wait=12)
    engine = KpiEngine(in_window=office_hours, outputs=True)
    for event in s.sorted():
        engine.receive_event(event)
    out = []
    while (o := engine.next_event()) is not None:
        out.append(o)
    assert out == [
        IvrMeasured(service="td", channel="voice", seconds=pytest.approx(7.0), at=out[0].at),  # type: ignore[union-attr]
        CallCounted(
            service="td",
            sub_service=None,
            outcome=Outcome.ANSWERED,
            channel="voice",
            wait=pytest.approx(12.0),
            at=out[1].at,  # type: ignore[union-attr]
        ),
    ]


def test_late_disposition_after_retention_is_ignored() -> None:
    s = Script()
    t = rome(2026, 11, 24, 9, 0)
    s.call("a", t, wait=5, disposition=None)
    s.add(EventKind.DISPOSITION, "a", t + timedelta(hours=2), data={"disposition": "resolved"})
    s.call("b", t + timedelta(hours=3), wait=5, disposition=None)
    s.add(EventKind.DISPOSITION, "a", t + timedelta(hours=4), data={"disposition": "escalated"})
    f = run(s, KpiConfig(retention=3 * 3600.0)).figures("td", ("day", DAY))
    assert (f.resolved, f.escalated, f.unknown) == (1, 0, 1)


@pytest.mark.parametrize(
    "period",
    [("week", DAY), ("month", "2026-13"), ("day", "2026-11-24"), ("slot", DAY), "day"],
)
def test_invalid_periods_raise_kpi_error(period: object) -> None:
    with pytest.raises(KpiError):
        run(Script()).figures("td", period)  # type: ignore[arg-type]


def test_invalid_disposition_is_ignored() -> None:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), wait=5, disposition="maybe")
    f = run(s).figures("td", ("day", DAY))
    assert (f.resolved, f.unknown) == (0, 1)


def _zero() -> dict[str, int]:
    return {o.value: 0 for o in Outcome}


def test_load_replays_without_outputs_then_live_outputs_resume() -> None:
    s = Script()
    s.call("old", rome(2026, 11, 24, 9, 0), wait=5)
    s.call("new", rome(2026, 11, 24, 9, 30), wait=7)
    events = s.sorted()
    engine = KpiEngine(in_window=office_hours, outputs=True)
    assert engine.load(events[:4]) == 4  # arrived, queued, answered, ended of "old"
    assert engine.next_event() is None
    for event in events[4:]:
        engine.receive_event(event)
    outs = []
    while (o := engine.next_event()) is not None:
        outs.append(o)
    assert [type(o).__name__ for o in outs] == ["IvrMeasured", "CallCounted"]
    assert engine.figures("td", ("day", DAY)).taken == 2


def test_forget_before_drops_old_periods_only() -> None:
    s = Script()
    s.call("oct", rome(2026, 10, 30, 9, 0), wait=5)
    s.call("nov1", rome(2026, 11, 23, 9, 0), wait=6)
    s.call("nov2", rome(2026, 11, 24, 9, 0), wait=7)
    engine = run(s)
    engine.forget_before(DAY)
    assert engine.figures("td", ("month", "2026-10")).taken == 0
    assert engine.slots("td", "2026-10") == []
    assert engine.slots("td", "2026-11") == [datetime(2026, 11, 24, 9, 0, tzinfo=ROME)]
    assert engine.figures("td", ("day", date(2026, 11, 23))).taken == 0
    assert engine.figures("td", ("month", "2026-11")).taken == 2
    assert engine.figures("td", ("day", DAY)).tm == pytest.approx(7.0)
    assert engine.figures("td", ("slot", datetime(2026, 11, 24, 9, 0))).taken == 1


def test_ended_while_waiting_is_a_hangup_and_answer_without_queue_counts_from_arrival() -> None:
    s = Script()
    t = rome(2026, 11, 24, 10, 0)
    s.add(EventKind.ARRIVED, "gone", t, service="td")
    s.add(EventKind.QUEUED, "gone", t + timedelta(seconds=2), service="td")
    s.add(EventKind.ENDED, "gone", t + timedelta(seconds=40), service="td", data={"by": "caller"})
    s.add(EventKind.ARRIVED, "direct", t, service="td")
    s.add(EventKind.ANSWERED, "direct", t + timedelta(seconds=3), service="td", operator="o")
    f = run(s).figures("td", ("day", DAY))
    assert f.abandoned == 1
    assert f.taken == 1 and f.tm == pytest.approx(3.0)


def test_late_facts_never_open_a_call() -> None:
    s = Script()
    t = rome(2026, 11, 24, 20, 0)  # after hours: opening a call here would count it
    s.add(EventKind.DISPOSITION, "x", t, service="td", data={"disposition": "resolved"})
    s.add(EventKind.ENDED, "y", t, service="td")
    s.add(EventKind.OPERATOR_STATE, None, t, operator="o", data={"state": "available"})
    f = run(s).figures("td", ("day", DAY))
    assert sum(f.counts.values()) == 0


def test_a_callback_restored_after_a_reboot_is_timed_by_wall_clock() -> None:
    """Queued at 10:00 in one process; the machine reboots (its monotonic clock starts
    again near 0); the callback is restored and the citizen answers at 10:25 by wall
    clock. Ti is 25 min: by `mono` it would be negative."""
    s = Script()
    t = rome(2026, 11, 24, 10, 0)
    s.add(EventKind.ARRIVED, "cb", t, service="td")
    s.add(EventKind.QUEUED, "cb", t + timedelta(seconds=5), service="td", queue="td")
    s.add(EventKind.QUEUED, "cb", t + timedelta(seconds=30), service="td", queue="td",
          data={"callback": "requested"})  # fmt: skip
    rebooted = [
        (EventKind.QUEUED, timedelta(minutes=20), {"callback": "restored"}),
        (EventKind.ANSWERED, timedelta(minutes=25, seconds=5), {"callback": "true"}),
    ]
    for kind, after, data in rebooted:
        wall = t + after
        s.events.append(
            CallEvent(kind=kind, call_id="cb", service="td", queue="td", wall=wall,
                      mono=12.0 + after.total_seconds() - 1200, data=data)
        )  # fmt: skip
    f = run(s).figures("td", ("day", DAY))
    assert f.taken == 1 and f.tm == pytest.approx(25 * 60.0)
    assert f.abandoned == 0 and f.counts.get("short_abandoned", 0) == 0


def test_without_a_restart_durations_ignore_wall_clock_steps() -> None:
    """An NTP step of +1 h between queue entry and answer: Ti stays the monotonic 8 s."""
    s = Script()
    t = rome(2026, 11, 24, 10, 0)
    s.add(EventKind.ARRIVED, "c", t, service="td")
    s.add(EventKind.QUEUED, "c", t, service="td", queue="td")
    stepped = CallEvent(
        kind=EventKind.ANSWERED, call_id="c", service="td", queue="td",
        wall=t + timedelta(hours=1, seconds=8), mono=s.events[-1].mono + 8.0,
    )  # fmt: skip
    s.events.append(stepped)
    assert run(s).figures("td", ("day", DAY)).tm == pytest.approx(8.0)
