"""Monthly SLA reports from the stored event log alone (DOMAIN.md, SLAs; docs/kpi.md).

`build_report` replays events through a fresh `KpiEngine` and returns, per service, Tm, P
and Q against their targets, the counts by outcome and the half-hour profile (the month's
slots grouped by local time of day).  Renderers live in `metrics.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from metrics.kpi import KPI_KINDS, Fact, InWindow, KpiConfig, KpiEngine
from metrics.store import EventStore
from metrics.tally import Calendar, Figures, Tally, figures_from, month_bounds

Progress = Callable[[int, int | None], None]
"""`progress(events_done, events_total_or_None)`: the CLI draws its bar from it."""

PROGRESS_EVERY = 10_000
# Events before the month that may belong to its calls (arrival before a 00:00 queue entry),
# and after it (a disposition typed after the call): replayed, then only the month is kept.
LEAD_IN = timedelta(hours=6)


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    """The tender's targets (DOMAIN.md, SLAs)."""

    tm_max: float = 16.0
    p_max: float = 3.0
    q_min: float = 75.0
    tm_social_max: float = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One KPI against its target; `passed` is None when the KPI has no data."""

    kpi: str
    value: float | None
    unit: str
    target: str
    passed: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileRow:
    """One half-hour of the day (local 'HH:MM'), summed over the month."""

    slot: str
    figures: Figures


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceReport:
    """A service's month: figures, verdicts, profile and per-sub-service figures."""

    service: str
    figures: Figures
    verdicts: tuple[Verdict, ...]
    profile: tuple[ProfileRow, ...]
    sub_services: Mapping[str, Figures]

    @property
    def passed(self) -> bool:
        """True when no KPI with data misses its target."""
        return all(v.passed is not False for v in self.verdicts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The SLA report of one month."""

    month: str
    timezone: str
    unknown_disposition: str
    services: tuple[ServiceReport, ...]
    events: int


def build_report(
    events: Iterable[Fact],
    month: str,
    service: str | None = None,
    *,
    in_window: InWindow,
    targets: Targets | None = None,
    config: KpiConfig | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> Report:
    """Replay `events` (`CallEvent`s or `EventFact`s, in `seq` order); report `month`.

    `month` is 'YYYY-MM' in local time; `progress(done, total)` is called every
    `PROGRESS_EVERY` events and once at the end.
    """
    engine = KpiEngine(in_window=in_window, config=config)
    month_bounds(month, engine.calendar.tz)  # validates the month before the long replay
    done = 0
    for done, event in enumerate(events, 1):
        engine.receive_event(event)
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)
    names = [service] if service else _services_in(engine, month)
    reports = tuple(_service_report(engine, name, month, targets or Targets()) for name in names)
    return Report(
        month=month,
        timezone=engine.config.timezone,
        unknown_disposition=engine.config.unknown_disposition,
        services=reports,
        events=done,
    )


def report_from_store(
    store: EventStore,
    month: str,
    service: str | None = None,
    *,
    in_window: InWindow,
    targets: Targets | None = None,
    config: KpiConfig | None = None,
    progress: Progress | None = None,
) -> Report:
    """`build_report` over the stored events of `month`, with the margins it needs."""
    config = config or KpiConfig()
    start, end = month_bounds(month, Calendar(config.timezone).tz)
    start, end = start - LEAD_IN, end + timedelta(seconds=config.retention)
    total = store.count(start, end, kinds=KPI_KINDS) if progress is not None else None
    return build_report(
        store.replay_facts(start, end, KPI_KINDS),
        month,
        service,
        in_window=in_window,
        targets=targets,
        config=config,
        progress=progress,
        total=total,
    )


def _services_in(engine: KpiEngine, month: str) -> list[str]:
    return [s for s in engine.services() if engine.slots(s, month)]


def _service_report(engine: KpiEngine, service: str, month: str, targets: Targets) -> ServiceReport:
    period = ("month", month)
    figures = engine.figures(service, period)
    subs = {
        sub: engine.figures(service, period, sub_service=sub)
        for sub in engine.sub_services(service)
    }
    return ServiceReport(
        service=service,
        figures=figures,
        verdicts=verdicts(figures, targets),
        profile=_profile(engine, service, month),
        sub_services={k: v for k, v in subs.items() if _has_calls(v)},
    )


def verdicts(f: Figures, t: Targets) -> tuple[Verdict, ...]:
    """Tm <= 16 s, P <= 3 %, Q >= 75 %, social Tm <= 20 s (targets configurable)."""
    return (
        _verdict("Tm", f.tm, "s", f"<= {t.tm_max:g} s", lambda v: v <= t.tm_max),
        _verdict("P", f.p, "%", f"<= {t.p_max:g} %", lambda v: v <= t.p_max),
        _verdict("Q", f.q, "%", f">= {t.q_min:g} %", lambda v: v >= t.q_min),
        _verdict(
            "Tm social",
            f.tm_social,
            "s",
            f"<= {t.tm_social_max:g} s",
            lambda v: v <= t.tm_social_max,
        ),
    )


def _verdict(
    kpi: str, value: float | None, unit: str, target: str, ok: Callable[[float], bool]
) -> Verdict:
    passed = None if value is None else ok(value)
    return Verdict(kpi=kpi, value=value, unit=unit, target=target, passed=passed)


def _profile(engine: KpiEngine, service: str, month: str) -> tuple[ProfileRow, ...]:
    by_time: dict[str, Tally] = {}
    for start in engine.slots(service, month):
        label = f"{start:%H:%M}"
        by_time.setdefault(label, Tally()).add(engine.tally(service, ("slot", start)))
    policy = engine.config.unknown_disposition
    return tuple(
        ProfileRow(slot=label, figures=figures_from(tally, policy))
        for label, tally in sorted(by_time.items())
    )


def _has_calls(f: Figures) -> bool:
    return sum(f.counts.values()) + f.social_answered > 0
