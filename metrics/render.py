"""Report renderers: plain-text table, CSV, JSON and XLSX (`RENDERERS[format](report)`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from metrics.report import Report, ServiceReport, Verdict
from metrics.tally import Figures, Outcome
from metrics.xlsx import Cell, workbook

METRICS = ("tm", "p", "q", "tm_social")
DETAIL = ("resolved", "escalated", "unknown", "social_answered")


def render_table(report: Report) -> str:
    """A terminal-friendly text report."""
    lines = [
        f"Centralino SLA report {report.month} ({report.timezone}), inside the service window",
        f"events replayed: {report.events}; unknown dispositions: {report.unknown_disposition}",
    ]
    if not report.services:
        lines.append("no calls in this month")
    for service in report.services:
        lines += ["", *_service_table(service)]
    return "\n".join(lines) + "\n"


def _service_table(s: ServiceReport) -> list[str]:
    verdict = "PASS" if s.passed else "FAIL"
    lines = [f"Service {s.service}: {verdict}", f"  {'KPI':<10} {'value':>9}  {'target':<9} result"]
    lines += [f"  {v.kpi:<10} {_value(v):>9}  {v.target:<9} {_result(v)}" for v in s.verdicts]
    f = s.figures
    lines.append("  calls: " + ", ".join(f"{k} {v}" for k, v in f.counts.items()))
    lines.append(f"  Q detail: resolved {f.resolved}, escalated {f.escalated}, unknown {f.unknown}")
    for name, sub in s.sub_services.items():
        lines.append(
            f"  sub-service {name}: Tm {_num(sub.tm, 's')}, P {_num(sub.p, '%')}, "
            f"Q {_num(sub.q, '%')}, taken {sub.taken}"
        )
    lines.append(
        f"  {'slot':<6} {'taken':>6} {'aband.':>6} {'short':>6} {'after':>6} {'Tm':>8} {'P':>8}"
    )
    for row in s.profile:
        p = row.figures
        lines.append(
            f"  {row.slot:<6} {p.taken:>6} {p.abandoned:>6} "
            f"{p.counts['short_abandoned']:>6} {p.counts['after_hours']:>6} "
            f"{_num(p.tm, 's'):>8} {_num(p.p, '%'):>8}"
        )
    return lines


def _value(v: Verdict) -> str:
    return _num(v.value, v.unit)


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if unit == "s" else f"{value:.2f} %"


def _result(v: Verdict) -> str:
    return {True: "pass", False: "FAIL", None: "no data"}[v.passed]


def render_csv(report: Report) -> str:
    """Long ("tidy") CSV: service, sub_service, slot ('month' or 'HH:MM'), metric, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["month", "service", "sub_service", "slot", "metric", "value", "target", "result"]
    )
    for s in report.services:
        targets = {v.kpi.lower().replace(" ", "_"): v for v in s.verdicts}
        for metric, value in _flat(s.figures):
            v = targets.get(metric)
            verdict = [v.target, _result(v)] if v else ["", ""]
            writer.writerow([report.month, s.service, "", "month", metric, _csv(value), *verdict])
        for name, sub in s.sub_services.items():
            for metric, value in _flat(sub):
                writer.writerow(
                    [report.month, s.service, name, "month", metric, _csv(value), "", ""]
                )
        for row in s.profile:
            for metric, value in _flat(row.figures):
                writer.writerow(
                    [report.month, s.service, "", row.slot, metric, _csv(value), "", ""]
                )
    return out.getvalue()


def _flat(f: Figures) -> list[tuple[str, float | int | None]]:
    values: list[tuple[str, float | int | None]] = [(m, getattr(f, m)) for m in METRICS]
    values += [(o.value, f.counts[o.value]) for o in Outcome]
    values += [(d, getattr(f, d)) for d in DETAIL]
    return values


def _csv(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6f}"


def render_json(report: Report) -> str:
    """JSON with every figure; KPIs without data are null."""
    return json.dumps(report_dict(report), indent=2, sort_keys=True) + "\n"


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data."""
    return {
        "month": report.month,
        "timezone": report.timezone,
        "unknown_disposition": report.unknown_disposition,
        "events": report.events,
        "services": [_service_dict(s) for s in report.services],
    }


def _service_dict(s: ServiceReport) -> dict[str, Any]:
    return {
        "service": s.service,
        "passed": s.passed,
        "figures": _figures_dict(s.figures),
        "verdicts": [
            {"kpi": v.kpi, "value": v.value, "target": v.target, "passed": v.passed}
            for v in s.verdicts
        ],
        "sub_services": {k: _figures_dict(v) for k, v in s.sub_services.items()},
        "profile": [{"slot": r.slot, **_figures_dict(r.figures)} for r in s.profile],
    }


def _figures_dict(f: Figures) -> dict[str, Any]:
    return {
        **{m: getattr(f, m) for m in METRICS},
        "counts": dict(f.counts),
        "taken": f.taken,
        **{d: getattr(f, d) for d in DETAIL},
    }


def render_xlsx(report: Report) -> bytes:
    """A workbook with a Summary sheet (one row per service) and a Profile sheet."""
    head: list[Cell] = ["service", "sub_service", "Tm s", "P %", "Q %", "Tm social s", "result"]
    head += [o.value for o in Outcome] + list(DETAIL)
    summary: list[list[Cell]] = [[f"SLA report {report.month} ({report.timezone})"], head]
    profile: list[list[Cell]] = [
        ["service", "slot", "taken", "abandoned", "short_abandoned", "Tm s", "P %"]
    ]
    for s in report.services:
        summary.append(_summary_row(s.service, None, s.figures, "PASS" if s.passed else "FAIL"))
        summary += [_summary_row(s.service, k, v, "") for k, v in s.sub_services.items()]
        for r in s.profile:
            f = r.figures
            profile.append(
                [s.service, r.slot, f.taken, f.abandoned, f.counts["short_abandoned"], f.tm, f.p]
            )
    return workbook([("Summary", summary), ("Profile", profile)])


def _summary_row(service: str, sub: str | None, f: Figures, result: str) -> list[Cell]:
    row: list[Cell] = [service, sub, f.tm, f.p, f.q, f.tm_social, result]
    row += [f.counts[o.value] for o in Outcome]
    return row + [getattr(f, d) for d in DETAIL]


RENDERERS: dict[str, Callable[[Report], str | bytes]] = {
    "table": render_table,
    "csv": render_csv,
    "json": render_json,
    "xlsx": render_xlsx,
}
