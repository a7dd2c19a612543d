"""Replaying the stored log gives exactly the live figures (DOMAIN.md: reproducible)."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _metrics_helpers import ROME, Script, office_hours
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.events import CallEvent, EventKind
from metrics.kpi import KPI_KINDS, KpiEngine
from metrics.store import SqliteEventStore
from metrics.tally import Tally

# A Friday before the end of October 2026, through the DST change and the month boundary.
START = datetime(2026, 10, 23, 5, 0, tzinfo=UTC)
SPAN = 10 * 86_400

call_spec = st.fixed_dictionaries(
    {
        # Mostly around office hours (07:00-18:00 local), some at any time of day or night.
        "offset": st.one_of(
            st.builds(
                lambda day, sec: day * 86_400 + sec,
                st.integers(min_value=0, max_value=9),
                st.integers(min_value=0, max_value=11 * 3600),
            ),
            st.integers(min_value=0, max_value=SPAN),
        ),
        "service": st.sampled_from(["td", "uru"]),
        "sub": st.sampled_from([None, "cps", "mepat"]),
        "ivr": st.integers(min_value=0, max_value=600).map(lambda x: x / 10),
        "wait": st.none() | st.integers(min_value=0, max_value=400).map(lambda x: x / 10),
        "answer": st.booleans(),
        "disposition": st.sampled_from([None, "resolved", "escalated", "unknown"]),
        "referent": st.booleans(),
        "channel": st.sampled_from([None, None, "chat"]),
    }
)


def build(specs: list[dict[str, object]]) -> list[CallEvent]:
    s = Script()
    for n, spec in enumerate(specs):
        arrive = START + timedelta(seconds=int(spec["offset"]))  # type: ignore[call-overload]
        s.call(
            f"c{n}",
            arrive,
            service=str(spec["service"]),
            sub_service=spec["sub"],  # type: ignore[arg-type]
            ivr=spec["ivr"],  # type: ignore[arg-type]
            wait=spec["wait"],  # type: ignore[arg-type]
            answer=bool(spec["answer"]),
            disposition=spec["disposition"],  # type: ignore[arg-type]
            channel=spec["channel"],  # type: ignore[arg-type]
        )
        if spec["referent"]:
            s.add(
                EventKind.TRANSFERRED,
                f"c{n}",
                arrive + timedelta(seconds=200),
                data={"to": "referent"},
            )
    return [replace(e, seq=i + 1) for i, e in enumerate(s.sorted())]


def snapshot(engine: KpiEngine) -> dict[object, object]:
    out: dict[object, object] = {}
    for service in [None, *engine.services()]:
        for month in ("2026-10", "2026-11"):
            out[(service, month)] = engine.figures(service, ("month", month))
            for slot in engine.slots(service, month):
                out[(service, slot)] = engine.figures(service, ("slot", slot))
                out[(service, slot.date())] = engine.figures(service, ("day", slot.date()))
        for sub in engine.sub_services(service or ""):
            out[(service, sub)] = engine.figures(service, ("month", "2026-10"), sub_service=sub)
    return out


@settings(max_examples=40, deadline=None)
@given(
    specs=st.lists(call_spec, min_size=1, max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_replay_from_store_in_any_batch_order_equals_live(
    specs: list[dict[str, object]], cuts: list[int], order: object
) -> None:
    events = build(specs)
    live = KpiEngine(in_window=office_hours)
    for event in events:
        live.receive_event(event)
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
    order.shuffle(batches)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        with SqliteEventStore(Path(tmp) / "events.db") as store:
            for batch in batches:
                store.extend(batch)
                store.flush()
        bounds_ = (START - timedelta(days=1), START + timedelta(days=12))
        with SqliteEventStore(Path(tmp) / "events.db") as store:
            replayed = KpiEngine(in_window=office_hours)
            for event in store.replay(*bounds_):
                replayed.receive_event(event)
            fast = KpiEngine(in_window=office_hours)  # the report's path: light facts
            for fact in store.replay_facts(*bounds_, KPI_KINDS):
                fast.receive_event(fact)
    assert snapshot(replayed) == snapshot(live)
    assert snapshot(fast) == snapshot(live)
    assert replayed.services() == live.services()
    assert_periods_are_sums_of_slots(live)


def assert_periods_are_sums_of_slots(engine: KpiEngine) -> None:
    for service in [None, *engine.services()]:
        for month in ("2026-10", "2026-11"):
            whole, days = Tally(), {}
            for slot in engine.slots(service, month):
                part = engine.tally(service, ("slot", slot))
                whole.add(part)
                days.setdefault(slot.date(), Tally()).add(part)
            assert engine.tally(service, ("month", month)) == whole
            for day, tally in days.items():
                assert engine.tally(service, ("day", day)) == tally


def expected_month(specs: list[dict[str, object]]) -> dict[tuple[str, str], dict[str, object]]:
    """A batch oracle written from the call specs, not from the events (docs/kpi.md)."""
    out: dict[tuple[str, str], dict[str, object]] = {}
    for spec in specs:
        arrive = START + timedelta(seconds=int(spec["offset"]))  # type: ignore[call-overload]
        ivr, wait = float(spec["ivr"]), spec["wait"]  # type: ignore[arg-type]
        chat = spec["channel"] == "chat"
        ref = arrive if wait is None else arrive + timedelta(seconds=ivr)
        month = f"{ref.astimezone(ROME):%Y-%m}"
        if not office_hours("", arrive.astimezone(ROME)):
            month = f"{arrive.astimezone(ROME):%Y-%m}"
        acc = out.setdefault(
            (str(spec["service"]), month),
            {"waits": [], "social": [], "abandoned": 0, "short": 0, "q": [0, 0, 0], "other": 0},
        )
        if not office_hours("", arrive.astimezone(ROME)) or wait is None:
            acc["other"] += 0 if chat else 1  # type: ignore[operator]
        elif not spec["answer"]:
            if not chat:
                key = "abandoned" if float(wait) > 10 else "short"  # type: ignore[arg-type]
                acc[key] += 1  # type: ignore[operator]
        elif chat:
            acc["social"].append(wait)  # type: ignore[attr-defined]
        else:
            acc["waits"].append(wait)  # type: ignore[attr-defined]
            final = spec["disposition"] or ("escalated" if spec["referent"] else "unknown")
            acc["q"][["resolved", "escalated", "unknown"].index(str(final))] += 1  # type: ignore[index]
    return out


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(call_spec, min_size=1, max_size=30))
def test_live_figures_match_a_batch_oracle(specs: list[dict[str, object]]) -> None:
    engine = KpiEngine(in_window=office_hours)
    for event in build(specs):
        engine.receive_event(event)
    for (service, month), acc in expected_month(specs).items():
        f = engine.figures(service, ("month", month))
        waits, social = acc["waits"], acc["social"]
        assert f.taken == len(waits)  # type: ignore[arg-type]
        assert f.tm == (pytest.approx(sum(waits) / len(waits)) if waits else None)  # type: ignore[arg-type]
        assert f.tm_social == (pytest.approx(sum(social) / len(social)) if social else None)  # type: ignore[arg-type]
        assert (f.abandoned, f.counts["short_abandoned"]) == (acc["abandoned"], acc["short"])
        assert (f.resolved, f.escalated, f.unknown) == tuple(acc["q"])  # type: ignore[arg-type]
        others = f.counts["ivr_hangup"] + f.counts["after_hours"]
        assert others == acc["other"]
        mi, ni = acc["abandoned"], len(waits)  # type: ignore[arg-type]
        assert f.p == (pytest.approx(100 * mi / (mi + ni)) if mi + ni else None)  # type: ignore[operator]
