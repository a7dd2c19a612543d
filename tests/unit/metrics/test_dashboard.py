"""The Grafana dashboard queries exactly the metrics the exporter exposes."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from _metrics_helpers import Script, office_hours, rome
from prometheus_client.parser import text_string_to_metric_families

from metrics.kpi import KpiEngine
from metrics.prometheus import Exporter

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboards" / "grafana-centralino.json"


def exposed() -> tuple[set[str], set[str]]:
    s = Script()
    s.call("a", rome(2026, 11, 24, 9, 0), ivr=5, wait=10)
    engine, exporter = KpiEngine(in_window=office_hours, outputs=True), Exporter()
    for event in s.sorted():
        engine.receive_event(event)
    exporter.drain(engine)
    exporter.update_sla(engine, today=date(2026, 11, 24))
    exporter.set_queue("td", waiting=1, longest_wait=3.0)
    families = list(text_string_to_metric_families(exporter.render().decode()))
    return {f.name for f in families}, {s.name for f in families for s in f.samples}


def queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return exprs


def test_every_dashboard_metric_exists() -> None:
    _, samples = exposed()
    used = {m for e in queries() for m in re.findall(r"centralino_[a-z_]+", e)}
    assert used and used <= samples


def test_every_exported_family_is_on_the_dashboard() -> None:
    families, _ = exposed()
    text = " ".join(queries())
    # prometheus_client adds a `<name>_created` timestamp per counter/histogram: not a KPI.
    assert {f for f in families if f not in text and not f.endswith("_created")} == set()


def test_sla_panels_use_the_tender_thresholds() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    steps = {
        p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        for p in dash["panels"]
        if p["type"] == "stat"
    }
    assert steps["Tm today"] == [None, 16] and steps["P month"] == [None, 0.03]
    assert steps["Q month"] == [None, 0.75]
