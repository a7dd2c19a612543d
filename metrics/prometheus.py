"""The Prometheus exporter: call counters, wait histograms, queue and SLA gauges.

Everything lives in a private `CollectorRegistry` (never the process-global one), so two
servers in one test process do not collide.  Labels carry only configured names
(service, queue, operator state, period): never a call id or another unbounded value.
The runtime serves `render()` on `/metrics` and feeds the exporter three ways:
`observe(engine output)`, the queue/operator gauge setters, and `update_sla(engine, today=)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from metrics.kpi import EngineOutput, IvrMeasured, KpiEngine
from metrics.tally import Outcome

# Buckets bracket the 16 s Tm target so the share answered within it is exact.
ANSWER_WAIT_BUCKETS = (2.0, 4.0, 8.0, 12.0, 16.0, 20.0, 30.0, 60.0, 120.0)
IVR_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0)
# The ACD's operator states (acd.operator.OperatorState values), always exported.
OPERATOR_STATES = ("logged_out", "available", "offered", "on_call", "wrap_up", "paused")
PERIODS = ("today", "month")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exporter:
    """The `centralino_*` metrics of one server."""

    def __init__(self, *, voice_only: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._voice_only = voice_only
        self._services: set[str] = set()
        self._queues: set[str] = set()
        r = self.registry
        self.calls = Counter(
            "centralino_calls", "Calls by final outcome", ["service", "outcome"], registry=r
        )
        self.answer_wait = Histogram(
            "centralino_answer_wait_seconds",
            "Queue entry to operator answer (IVR and welcome excluded)",
            ["service"],
            buckets=ANSWER_WAIT_BUCKETS,
            registry=r,
        )
        self.ivr = Histogram(
            "centralino_ivr_seconds",
            "Arrival to first queue entry (welcome and IVR)",
            ["service"],
            buckets=IVR_BUCKETS,
            registry=r,
        )
        self.queue_calls = Gauge(
            "centralino_queue_calls", "Calls waiting in the queue now", ["queue"], registry=r
        )
        self.queue_longest = Gauge(
            "centralino_queue_longest_wait_seconds",
            "Wait of the longest-waiting call in the queue now",
            ["queue"],
            registry=r,
        )
        self.operators = Gauge(
            "centralino_operators", "Operators by state now", ["state"], registry=r
        )
        self._sla_gauges(r)
        self._store_metrics(r)
        self.set_operators({})

    def _store_metrics(self, r: CollectorRegistry) -> None:
        self.events_pending = Gauge(
            "centralino_events_pending",
            "Call events recorded but not yet committed to the event store",
            registry=r,
        )
        self.event_write_errors = Counter(
            "centralino_event_write_errors",
            "Commits to the event store that failed (the events are kept and retried)",
            registry=r,
        )

    def _sla_gauges(self, r: CollectorRegistry) -> None:
        labels = ["service", "period"]
        self.sla_tm = Gauge(
            "centralino_sla_answer_wait_seconds",
            "Tm: mean answer wait inside the service window (NaN: no answered call)",
            labels,
            registry=r,
        )
        self.sla_p = Gauge(
            "centralino_sla_abandon_ratio",
            "P as a ratio 0-1: abandoned / (abandoned + taken), short abandons excluded",
            labels,
            registry=r,
        )
        self.sla_q = Gauge(
            "centralino_sla_resolved_ratio",
            "Q as a ratio 0-1: resolved at first level / taken",
            labels,
            registry=r,
        )

    # -- fed from the KPI engine ----------------------------------------------------------

    def observe(self, output: EngineOutput) -> None:
        """Account for one `KpiEngine.next_event()` output."""
        if self._voice_only and output.channel != "voice":
            return
        if isinstance(output, IvrMeasured):
            self.ivr.labels(service=output.service).observe(max(output.seconds, 0.0))
            return
        self._know_service(output.service)
        self.calls.labels(service=output.service, outcome=output.outcome.value).inc()
        if output.outcome is Outcome.ANSWERED and output.wait is not None:
            self.answer_wait.labels(service=output.service).observe(max(output.wait, 0.0))

    def drain(self, engine: KpiEngine) -> int:
        """Observe every pending engine output; return how many."""
        n = 0
        while (output := engine.next_event()) is not None:
            self.observe(output)
            n += 1
        return n

    def update_sla(self, engine: KpiEngine, *, today: date) -> None:
        """Set the SLA gauges for `today` (local date) and its month, for every service."""
        periods = {"today": ("day", today), "month": ("month", f"{today:%Y-%m}")}
        for service in sorted(self._services | set(engine.services())):
            self._know_service(service)
            for name, period in periods.items():
                f = engine.figures(service, period)
                self.sla_tm.labels(service=service, period=name).set(_nan(f.tm))
                self.sla_p.labels(service=service, period=name).set(_ratio(f.p))
                self.sla_q.labels(service=service, period=name).set(_ratio(f.q))

    def _know_service(self, service: str) -> None:
        # Create every outcome series at 0 so rate() and increase() see the first call.
        if service in self._services:
            return
        self._services.add(service)
        for outcome in Outcome:
            self.calls.labels(service=service, outcome=outcome.value)
        self.answer_wait.labels(service=service)

    # -- gauge setters the runtime calls --------------------------------------------------

    def set_queue(self, queue: str, *, waiting: int, longest_wait: float) -> None:
        """The queue's waiting calls and the wait of its oldest call, now."""
        self._queues.add(queue)
        self.queue_calls.labels(queue=queue).set(waiting)
        self.queue_longest.labels(queue=queue).set(longest_wait if waiting else 0.0)

    def set_queues(self, queues: Iterable[str]) -> None:
        """Declare the configured queues (at 0) and drop series of removed ones."""
        wanted = set(queues)
        for gone in self._queues - wanted:
            self.queue_calls.remove(gone)
            self.queue_longest.remove(gone)
        for queue in wanted - self._queues:
            self.set_queue(queue, waiting=0, longest_wait=0.0)
        self._queues = wanted

    def set_operators(self, counts: Mapping[str, int]) -> None:
        """Operators per state; the standard states missing from `counts` are set to 0."""
        for state in (*OPERATOR_STATES, *counts):
            self.operators.labels(state=state).set(counts.get(state, 0))

    def render(self) -> bytes:
        """The text exposition format for `/metrics` (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _ratio(percent: float | None) -> float:
    return math.nan if percent is None else percent / 100.0


__all__ = ["CONTENT_TYPE", "Exporter"]
