"""Monthly SLA reports and their renderers."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import pytest
from _metrics_helpers import Script, office_hours, rome

from metrics.events import CallEvent, EventKind
from metrics.kpi import KpiConfig
from metrics.render import RENDERERS, render_csv, render_json, render_table, render_xlsx
from metrics.report import Report, Targets, build_report, report_from_store
from metrics.store import SqliteEventStore
from metrics.tally import KpiError
from metrics.xlsx import column_letter, workbook

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def month_script() -> list[CallEvent]:
    s = Script()
    # td, November 2026 (Tuesday 24th and Wednesday 25th)
    s.call("a", rome(2026, 11, 24, 8, 10), ivr=20, wait=10, disposition="resolved")
    s.call("b", rome(2026, 11, 24, 8, 40), wait=14, disposition="resolved")
    s.call("c", rome(2026, 11, 25, 8, 15), wait=30, disposition="escalated")
    s.call("d", rome(2026, 11, 25, 8, 20), wait=12.5, answer=False)
    s.call("e", rome(2026, 11, 25, 8, 21), wait=3, answer=False)
    s.call("f", rome(2026, 11, 25, 20, 0), wait=3)
    # uru: one good call in November, one in October that must not count
    s.call("g", rome(2026, 11, 24, 10, 0), service="uru", sub_service="x", wait=5)
    s.call("h", rome(2026, 10, 30, 10, 0), service="uru", wait=500)
    return [replace(e, seq=i + 1) for i, e in enumerate(s.sorted())]


def report(**kw: object) -> Report:
    return build_report(month_script(), "2026-11", in_window=office_hours, **kw)  # type: ignore[arg-type]


def test_figures_and_verdicts_per_service() -> None:
    r = report()
    assert [s.service for s in r.services] == ["td", "uru"]
    td = r.services[0]
    assert td.figures.tm == pytest.approx((10 + 14 + 30) / 3)
    assert td.figures.p == pytest.approx(25.0)  # 1 abandoned of 4; the 3 s hang-up is short
    assert td.figures.q == pytest.approx(200 / 3)
    assert [(v.kpi, v.passed) for v in td.verdicts] == [
        ("Tm", False),
        ("P", False),
        ("Q", False),
        ("Tm social", None),
    ]
    assert not td.passed
    uru = r.services[1]
    assert uru.figures.tm == pytest.approx(5.0) and uru.passed
    assert set(uru.sub_services) == {"x"}


def test_targets_are_configurable() -> None:
    td = report(targets=Targets(tm_max=20.0, p_max=30.0, q_min=60.0)).services[0]
    assert td.passed


def test_half_hour_profile_groups_days_by_time_of_day() -> None:
    td = report().services[0]
    rows = {row.slot: row.figures for row in td.profile}
    assert set(rows) == {"08:00", "08:30", "20:00"}
    assert rows["08:00"].taken == 2  # a on the 24th (queued 08:10:20), c on the 25th
    assert rows["08:00"].abandoned == 1 and rows["08:00"].counts["short_abandoned"] == 1
    assert rows["08:30"].tm == pytest.approx(14.0)
    assert rows["20:00"].counts["after_hours"] == 1


def test_single_service_and_bad_month() -> None:
    assert [s.service for s in report(service="uru").services] == ["uru"]
    with pytest.raises(KpiError):
        build_report([], "2026-13", in_window=office_hours)


def test_progress_hook_is_called_with_counts() -> None:
    calls: list[tuple[int, int | None]] = []
    events = month_script() * 700  # duplicates are ignored by the engine but counted
    build_report(
        events,
        "2026-11",
        in_window=office_hours,
        progress=lambda d, t: calls.append((d, t)),
        total=len(events),
    )
    assert calls[0] == (10_000, len(events))
    assert calls[-1] == (len(events), len(events))
    assert len(calls) == len(events) // 10_000 + 1


def test_report_from_store_matches_the_in_memory_report(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as store:
        store.extend(month_script())
        store.flush()
        seen: list[int] = []
        stored = report_from_store(
            store, "2026-11", in_window=office_hours, progress=lambda d, t: seen.append(d)
        )
    memory = report()
    assert stored.services == memory.services
    assert seen[-1] == stored.events


def test_month_boundary_margin_keeps_late_dispositions(tmp_path: Path) -> None:
    s = Script()
    t = rome(2026, 11, 30, 16, 50)
    s.call("late", t, wait=5, disposition=None)
    resolved = {"disposition": "resolved"}
    s.add(EventKind.DISPOSITION, "late", rome(2026, 12, 1, 9, 0), data=resolved)
    with SqliteEventStore(tmp_path / "e.db") as store:
        store.extend(s.sorted())
        store.flush()
        r = report_from_store(store, "2026-11", in_window=office_hours)
    assert r.services[0].figures.resolved == 1


def test_unknown_policy_is_reported() -> None:
    r = report(config=KpiConfig(unknown_disposition="exclude"))
    assert r.unknown_disposition == "exclude"
    assert "unknown dispositions: exclude" in render_table(r)


def test_table_rendering() -> None:
    text = render_table(report())
    assert "Service td: FAIL" in text
    assert "  Tm            18.0 s  <= 16 s   FAIL" in text
    assert "  08:00       2      1      1      0   20.0 s  33.33 %" in text
    assert "  20:00       0      0      0      1        -        -" in text
    assert "Service uru: PASS" in text


def test_csv_rendering_round_trips() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report()))))
    tm = next(
        r for r in rows if r["service"] == "td" and r["slot"] == "month" and r["metric"] == "tm"
    )
    assert float(tm["value"]) == pytest.approx(18.0)
    assert (tm["target"], tm["result"]) == ("<= 16 s", "FAIL")
    social = next(r for r in rows if r["service"] == "td" and r["metric"] == "tm_social")
    assert social["value"] == "" and social["result"] == "no data"
    short = [r for r in rows if r["slot"] == "08:00" and r["metric"] == "short_abandoned"]
    assert [r["value"] for r in short] == ["1"]


def test_json_rendering() -> None:
    data = json.loads(render_json(report()))
    td = data["services"][0]
    assert td["figures"]["counts"]["abandoned"] == 1
    assert td["verdicts"][3] == {
        "kpi": "Tm social",
        "value": None,
        "target": "<= 20 s",
        "passed": None,
    }
    assert [p["slot"] for p in td["profile"]] == ["08:00", "08:30", "20:00"]


def test_xlsx_rendering_is_a_valid_workbook() -> None:
    blob = render_xlsx(report())
    assert blob == render_xlsx(report())  # deterministic bytes
    archive = zipfile.ZipFile(io.BytesIO(blob))
    assert "[Content_Types].xml" in archive.namelist()
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    assert [s.get("name") for s in book.iter(f"{{{NS['m']}}}sheet")] == ["Summary", "Profile"]
    sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    cells = {c.get("r"): c for c in sheet.iter(f"{{{NS['m']}}}c")}
    assert cells["A3"].findtext("m:is/m:t", namespaces=NS) == "td"
    assert float(cells["C3"].findtext("m:v", namespaces=NS) or "nan") == pytest.approx(18.0)
    assert "F3" not in cells  # no social Tm: an empty cell, not 0


def test_renderers_registry() -> None:
    assert set(RENDERERS) == {"table", "csv", "json", "xlsx"}
    empty = build_report([], "2026-11", in_window=office_hours)
    assert "no calls in this month" in render_table(empty)


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters(index: int, letters: str) -> None:
    assert column_letter(index) == letters


def test_xlsx_escapes_text_and_sheet_names() -> None:
    blob = workbook([("a/b:c" * 10, [["x<y & z\x01", 3, 2.5, None, float("nan")]])])
    archive = zipfile.ZipFile(io.BytesIO(blob))
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    (sheet,) = list(book.iter(f"{{{NS['m']}}}sheet"))
    name = sheet.get("name") or ""
    assert len(name) == 31 and "/" not in name and ":" not in name
    cells = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    values = {c.get("r"): c for c in cells.iter(f"{{{NS['m']}}}c")}
    assert values["A1"].findtext("m:is/m:t", namespaces=NS) == "x<y & z"
    assert values["B1"].findtext("m:v", namespaces=NS) == "3"
    assert values["C1"].findtext("m:v", namespaces=NS) == "2.5"
    assert set(values) == {"A1", "B1", "C1"}
