"""The /metrics exposition: names, labels, values, parsed back from the text."""

from __future__ import annotations

import math
from datetime import date

import pytest
from _metrics_helpers import Script, office_hours, rome
from prometheus_client.parser import text_string_to_metric_families

from metrics.kpi import KpiEngine
from metrics.prometheus import Exporter

DAY = date(2026, 11, 24)


def samples(exporter: Exporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = exporter.render().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def fed() -> tuple[Exporter, KpiEngine]:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), ivr=12, wait=10, disposition="resolved")
    s.call("b", rome(2026, 11, 24, 9, 5), ivr=3, wait=30, disposition="escalated")
    s.call("c", rome(2026, 11, 24, 9, 6), wait=25, answer=False)
    s.call("d", rome(2026, 11, 24, 9, 7), wait=4, answer=False)
    s.call("e", rome(2026, 11, 24, 18, 0), wait=4)
    s.call("f", rome(2026, 11, 24, 10, 0), wait=3, channel="chat")
    s.call("g", rome(2026, 11, 3, 10, 0), service="uru", wait=3)
    engine = KpiEngine(in_window=office_hours, outputs=True)
    exporter = Exporter()
    for event in s.sorted():
        engine.receive_event(event)
        exporter.drain(engine)
    exporter.update_sla(engine, today=DAY)
    return exporter, engine


def test_calls_total_by_outcome() -> None:
    got = samples(fed()[0])

    def calls(outcome: str) -> float:
        return got[("centralino_calls_total", (("outcome", outcome), ("service", "td")))]

    assert calls("answered") == 2  # the chat call is not a voice call
    assert calls("abandoned") == 1 and calls("short_abandoned") == 1
    assert calls("after_hours") == 1 and calls("overflowed") == 0


def test_answer_wait_histogram_brackets_sixteen_seconds() -> None:
    got = samples(fed()[0])

    def bucket(le: str) -> float:
        return got[("centralino_answer_wait_seconds_bucket", (("le", le), ("service", "td")))]

    assert bucket("12.0") == 1 and bucket("16.0") == 1 and bucket("30.0") == 2
    assert got[("centralino_answer_wait_seconds_sum", (("service", "td"),))] == pytest.approx(40)
    ivr = got[("centralino_ivr_seconds_sum", (("service", "td"),))]
    assert ivr == pytest.approx(12 + 3)
    # a, b, c, d reached the queue; e was after hours, f is a chat, g is another service
    assert got[("centralino_ivr_seconds_count", (("service", "td"),))] == 4


def test_sla_gauges_today_and_month() -> None:
    got = samples(fed()[0])

    def g(name: str, service: str, period: str) -> float:
        return got[(name, (("period", period), ("service", service)))]

    assert g("centralino_sla_answer_wait_seconds", "td", "today") == pytest.approx(20.0)
    assert g("centralino_sla_abandon_ratio", "td", "today") == pytest.approx(1 / 3)
    assert g("centralino_sla_resolved_ratio", "td", "month") == pytest.approx(0.5)
    assert g("centralino_sla_answer_wait_seconds", "uru", "month") == pytest.approx(3.0)
    assert math.isnan(g("centralino_sla_answer_wait_seconds", "uru", "today"))


def test_queue_and_operator_gauges_and_no_call_ids_in_labels() -> None:
    exporter = fed()[0]
    exporter.set_queues(["td", "uru"])
    exporter.set_queue("td", waiting=3, longest_wait=42.5)
    exporter.set_operators({"available": 2, "on_call": 5})
    got = samples(exporter)
    assert got[("centralino_queue_calls", (("queue", "td"),))] == 3
    assert got[("centralino_queue_longest_wait_seconds", (("queue", "td"),))] == 42.5
    assert got[("centralino_queue_calls", (("queue", "uru"),))] == 0
    assert got[("centralino_operators", (("state", "on_call"),))] == 5
    assert got[("centralino_operators", (("state", "paused"),))] == 0
    exporter.set_queues(["td"])
    assert ("centralino_queue_calls", (("queue", "uru"),)) not in samples(exporter)
    values = {v for _, labels in samples(exporter) for _, v in labels}
    assert not values & {"a", "b", "c", "d", "e", "f", "g"}


def test_exporters_do_not_share_a_registry() -> None:
    one, two = Exporter(), Exporter()
    one.set_queue("q", waiting=1, longest_wait=1.0)
    assert ("centralino_queue_calls", (("queue", "q"),)) not in samples(two)
