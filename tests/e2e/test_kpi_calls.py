"""End to end: the tender's KPIs (Tm, P, Q) from real calls driven by SIPp, read on
`/metrics` and in `centralino report --format json` (docs/kpi.md).

One switch, an always-open service (acd_helpers.write_config: a 0.5 s welcome, then the
queue), two SIPp operators' phones that ring a known time before answering, and four
trunk callers:

- A and B wait and are answered, one by each phone: Ti ≈ 3 s and ≈ 5 s (the rings);
- C hangs up 12 s after its queue entry while both operators talk: abandoned (Mi);
- D hangs up 4 s after its queue entry: a short abandon, in neither term of P;
- the operators qualify A as resolved and B as escalated over the HTTP API.

So Tm = mean(Ti) ≈ 4 s, P = 1 / (1 + 2), Q = 1 / 2.  The scene runs twice: with the log
in the data folder's SQLite file, and in a PostgreSQL database (`events.dsn`, a real
server from tests/pgserver.py); each time the switch is then restarted and must give the
same SLA figures from the stored log alone.  Every wait is bounded and every process is
ended by PID.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml
from acd_helpers import SERVICE, Processes, Sipp, processes, wait_for, wait_registered
from acd_helpers import write_config as write_acd_config
from conftest import CENTRALINO, ROOT, Switch, need, start_switch, stop_process
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

RINGS_MS = {"1001": 3000, "1002": 5000}  # how long each phone rings before answering
TALK_MS = 22000  # long enough that no operator is free while C and D wait
WELCOME_S = 0.5  # the beep before the queue (acd_helpers.write_config)
LONG_WAIT_S, SHORT_WAIT_S = 12.0, 4.0  # C and D hang up this long after queue entry
THRESHOLD_S = 10.0  # docs/kpi.md: abandoned only *more than* 10 s after queue entry
DESIGNED_TM = sum(RINGS_MS.values()) / len(RINGS_MS) / 1000
TOLERANCE_S = 1.5  # scheduling on a shared machine, SIP round trips, the 0.5 s commits


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    need("sipp")
    with processes(tmp_path) as p:
        yield p


@dataclass(frozen=True)
class Row:
    """One stored event, with the fields the KPIs are computed from."""

    kind: str
    call_id: str | None
    operator: str | None
    mono: float
    data: dict[str, str]


QUERY = "SELECT kind, call_id, operator, mono, data FROM call_event ORDER BY seq"
Reader = Callable[[], list[tuple[Any, ...]]]


def sqlite_reader(data_dir: Path) -> Reader:
    def read() -> list[tuple[Any, ...]]:
        path = data_dir / "events.sqlite3"
        if not path.exists():
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(QUERY).fetchall()

    return read


def postgres_reader(dsn: str) -> Reader:
    def read() -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, connect_timeout=5) as db:
            exists = db.execute("SELECT to_regclass('call_event')").fetchone()
            return db.execute(QUERY).fetchall() if exists and exists[0] else []

    return read


READ: dict[int, Reader] = {}  # how to read each running switch's log, by its SIP port


def stored(switch: Switch) -> list[Row]:
    """The event log as committed so far (the switch commits every 0.5 s)."""
    rows = READ[switch.sip_port]()
    return [Row(r[0], r[1], r[2], float(r[3]), json.loads(r[4] or "{}")) for r in rows]


def first(log: list[Row], kind: str) -> dict[str, Row]:
    """The first event of `kind` of each call."""
    found: dict[str, Row] = {}
    for row in log:
        if row.kind == kind and row.call_id is not None:
            found.setdefault(row.call_id, row)
    return found


def count(switch: Switch, kind: str) -> int:
    return sum(1 for row in stored(switch) if row.kind == kind)


def settled(switch: Switch, kind: str, n: int, timeout: float = 20.0) -> None:
    """Wait until the log holds `n` events of `kind`; say what it holds if not."""
    try:
        wait_for(f"{n} {kind}", lambda: count(switch, kind) >= n, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose(switch)}") from None


def diagnose(switch: Switch, *sipps: Sipp) -> str:
    lines = [f"{r.mono:.3f} {r.kind} {r.call_id} {r.operator} {r.data}" for r in stored(switch)]
    tails = "".join(f"\n--- {s.name} ---\n{s.output()[-1500:]}" for s in sipps)
    return "\n".join(lines) + f"\n--- switch log ---\n{switch.log()[-3000:]}" + tails


def post_json(switch: Switch, path: str, body: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def scrape(switch: Switch) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`/metrics` as {(sample name, sorted labels): value}."""
    status, body = switch.http_get("/metrics")
    assert status == 200, body
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def sample(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in metrics, f"{name}{labels} missing from /metrics"
    return metrics[key]


def sla(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, period: str
) -> float:
    return sample(metrics, f"centralino_sla_{name}", service=SERVICE, period=period)


def report_json(tmp: Path, config: Path, month: str, dsn: str | None) -> dict[str, Any]:
    """`centralino report --format json` for `month`, as a user runs it (bounded); the
    PostgreSQL log is found through the configuration's `events.dsn`."""
    args = [str(CENTRALINO), "report", "--month", month, "--config", str(config)]
    args += ["--format", "json"] + ([] if dsn else ["--data", str(tmp / "var")])
    done = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    (service,) = [s for s in json.loads(done.stdout)["services"] if s["service"] == SERVICE]
    return dict(service["figures"])


@pytest.fixture(params=["sqlite", "postgres"])
def events_dsn(request: pytest.FixtureRequest) -> str | None:
    """Where the switch keeps its log: None for the SQLite file, or a PostgreSQL DSN."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("pg_dsn"))


def start(tmp: Path, config: Path, dsn: str | None) -> Switch:
    switch = start_switch(tmp, config)
    READ[switch.sip_port] = postgres_reader(dsn) if dsn else sqlite_reader(switch.data_dir)
    return switch


def sla_figures(switch: Switch) -> dict[str, float]:
    metrics = scrape(switch)
    names = ("answer_wait_seconds", "abandon_ratio", "resolved_ratio")
    return {f"{n} {p}": sla(metrics, n, p) for n in names for p in ("today", "month")}


def test_answered_abandoned_and_short_abandoned_calls_give_tm_p_q(
    tmp_path: Path, procs: Processes, events_dsn: str | None
) -> None:
    config = write_acd_config(tmp_path, ring_timeout=15.0)
    if events_dsn is not None:
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        settings["events"] = {"dsn": events_dsn}
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    switch = start(tmp_path, config, events_dsn)
    try:
        phones = [
            procs.phone(switch, op, ring_ms=ring, talk_ms=TALK_MS, life_ms=60000)
            for op, ring in RINGS_MS.items()
        ]
        wait_registered(switch, 2)
        answered = procs.callers(switch, "caller-wait.xml", 2, rate=5.0)
        settled(switch, "answered", 2)
        # Both operators are now talking for TALK_MS: nobody is free for C and D.
        long_ms, short_ms = (int((s + WELCOME_S) * 1000) for s in (LONG_WAIT_S, SHORT_WAIT_S))
        gives_up = procs.callers(switch, "caller-abandon.xml", 1, wait_ms=str(long_ms))
        quits = procs.callers(switch, "caller-abandon.xml", 1, wait_ms=str(short_ms))
        for caller in (gives_up, quits, answered):
            assert caller.wait(60) == 0, diagnose(switch, caller, *phones)
        settled(switch, "ended", 4)

        log = stored(switch)
        queued, picked = first(log, "queued"), first(log, "answered")
        hung_up = {r.call_id: r for r in log if r.kind in ("abandoned", "ended")}
        assert len(queued) == 4 and len(picked) == 2, diagnose(switch)
        assert sorted(r.operator or "" for r in picked.values()) == sorted(RINGS_MS)
        waits = {c: picked[c].mono - queued[c].mono for c in picked}
        rings = {c: RINGS_MS[picked[c].operator or ""] / 1000 for c in picked}
        for call_id, wait in waits.items():  # the log itself shows the designed rings
            assert wait == pytest.approx(rings[call_id], abs=TOLERANCE_S), diagnose(switch)
        arrived = first(log, "arrived")
        for call_id, entry in queued.items():  # the welcome is before queue entry
            assert entry.mono - arrived[call_id].mono >= WELCOME_S - 0.1
        gave_up = {c: hung_up[c].mono - queued[c].mono for c in queued if c not in picked}
        long_wait, short_wait = sorted(gave_up.values())[::-1]
        assert long_wait == pytest.approx(LONG_WAIT_S, abs=TOLERANCE_S), diagnose(switch)
        assert short_wait == pytest.approx(SHORT_WAIT_S, abs=TOLERANCE_S), diagnose(switch)
        assert short_wait < THRESHOLD_S < long_wait  # the design holds on this run
        assert not {r.call_id for r in log if r.kind == "offered"} - set(picked), diagnose(switch)

        before = scrape(switch)  # no disposition yet: both taken calls are "unknown"
        assert sla(before, "resolved_ratio", "month") == 0.0

        resolved, escalated = sorted(picked, key=lambda c: picked[c].mono)
        for call_id, disposition in ((resolved, "resolved"), (escalated, "escalated")):
            path = f"/api/calls/{urllib.parse.quote(call_id, safe='')}/disposition"
            status, body = post_json(switch, path, {"disposition": disposition})
            assert status == 200, body
            assert body == {"call_id": call_id, "disposition": disposition}
        settled(switch, "disposition", 2)

        metrics = scrape(switch)
        expected_tm = sum(waits.values()) / len(waits)
        for period in ("today", "month"):
            tm = sla(metrics, "answer_wait_seconds", period)
            assert tm == pytest.approx(expected_tm, abs=1e-3)  # exactly the log's mean
            assert tm == pytest.approx(DESIGNED_TM, abs=TOLERANCE_S)
            # A short abandon counted as abandoned would give 2 / 4.
            assert sla(metrics, "abandon_ratio", period) == pytest.approx(1 / 3)
            assert sla(metrics, "resolved_ratio", period) == pytest.approx(0.5)
        outcomes = {"answered": 2, "abandoned": 1, "short_abandoned": 1}
        outcomes |= {"overflowed": 0, "ivr_hangup": 0, "after_hours": 0}
        for outcome, n in outcomes.items():
            calls = sample(metrics, "centralino_calls_total", service=SERVICE, outcome=outcome)
            assert calls == n, f"{outcome}: {calls} != {n}"
        histogram = sample(metrics, "centralino_answer_wait_seconds_sum", service=SERVICE)
        assert histogram == pytest.approx(sum(waits.values()), abs=1e-3)

        month = f"{datetime.now(UTC).astimezone(ZoneInfo('Europe/Rome')):%Y-%m}"
        figures = report_json(tmp_path, config, month, events_dsn)
        assert figures["tm"] == pytest.approx(sla(metrics, "answer_wait_seconds", "month"))
        assert figures["p"] / 100 == pytest.approx(sla(metrics, "abandon_ratio", "month"))
        assert figures["q"] / 100 == pytest.approx(sla(metrics, "resolved_ratio", "month"))
        assert {k: figures["counts"][k] for k in outcomes} == outcomes
        assert figures["taken"] == 2
        assert (figures["resolved"], figures["escalated"], figures["unknown"]) == (1, 1, 0)
        assert not math.isnan(figures["tm"])

        before_restart = sla_figures(switch)
        assert stop_process(switch.process) == 0
        switch = start(tmp_path, config, events_dsn)  # the figures come from the log alone
        assert sla_figures(switch) == pytest.approx(before_restart, abs=1e-9)
        if events_dsn is not None:  # and nothing was written in the data folder
            assert not (switch.data_dir / "events.sqlite3").exists()
    finally:
        stop_process(switch.process)
