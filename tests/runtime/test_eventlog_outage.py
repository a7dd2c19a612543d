"""The runtime event log when its store cannot be written: PostgreSQL stopped under a
running `EventLog`.  Nothing recorded is lost: the events wait in memory (and on
`/metrics` as `centralino_events_pending`), a shutdown during the outage saves them in
`events.unsent.jsonl`, and the next start writes them before anything else.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pgserver import running_server
from prometheus_client.parser import text_string_to_metric_families

from metrics.events import EventKind, from_json
from metrics.store import Row, SqliteEventStore, StoreError
from routing.calendar import Calendar
from server.eventlog import UNSENT_FILE, EventLog
from server.pgstore import PostgresEventStore


def gauges(log: EventLog) -> dict[str, float]:
    text = log.exporter.render().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in ("centralino_events_pending", "centralino_event_write_errors_total")
    }


def stored_calls(dsn: str) -> list[tuple[int, str | None, str]]:
    now = datetime.now(UTC)
    with PostgresEventStore(dsn, writer=False) as reader:
        events = reader.replay(now - timedelta(days=40), now + timedelta(days=1))
        return [(e.seq, e.call_id, e.kind.value) for e in events]


async def test_an_outage_then_a_shutdown_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.eventlog")
    with running_server() as server:
        dsn = server.dsn()
        log = EventLog(PostgresEventStore(dsn), Calendar({}), data_dir=tmp_path, mono0=0.0)
        log(EventKind.ARRIVED, at=1.0, call_id="a", service="td")
        assert await log.flush()
        server.stop()
        log(EventKind.QUEUED, at=2.0, call_id="a", service="td", queue="td")
        log(EventKind.ARRIVED, at=3.0, call_id="b", service="td")
        assert not await log.flush()
        assert not await log.flush()  # still down: retried, logged once
        assert gauges(log) == {
            "centralino_events_pending": 2.0,
            "centralino_event_write_errors_total": 2.0,
        }
        failures = [r for r in caplog.records if "write failed" in r.getMessage()]
        assert len(failures) == 1 and failures[0].levelno == logging.ERROR
        await log.close()  # shutdown during the outage

        unsent = tmp_path / UNSENT_FILE
        assert unsent.stat().st_mode & 0o777 == 0o600  # call data: the owner's only
        saved = [from_json(line) for line in unsent.read_text(encoding="utf-8").splitlines()]
        assert [(e.seq, e.call_id, e.kind) for e in saved] == [
            (2, "a", EventKind.QUEUED),
            (3, "b", EventKind.ARRIVED),
        ]

        server.start()
        again = EventLog(PostgresEventStore(dsn), Calendar({}), data_dir=tmp_path, mono0=0.0)
        assert not unsent.exists()
        again(EventKind.ENDED, at=4.0, call_id="b", service="td")
        await again.close()
        assert stored_calls(dsn) == [
            (1, "a", "arrived"),
            (2, "a", "queued"),
            (3, "b", "arrived"),
            (4, "b", "ended"),
        ]
        assert any("unsent events written" in r.getMessage() for r in caplog.records)


async def test_writes_resume_by_themselves_when_the_server_is_back(tmp_path: Path) -> None:
    with running_server() as server:
        log = EventLog(PostgresEventStore(server.dsn()), Calendar({}), data_dir=tmp_path, mono0=0)
        server.stop()
        log(EventKind.ARRIVED, at=1.0, call_id="x", service="td")
        assert not await log.flush()
        server.start()
        assert await log.flush()
        assert gauges(log)["centralino_events_pending"] == 0.0
        await log.close()
        assert not (tmp_path / UNSENT_FILE).exists()
        assert stored_calls(server.dsn()) == [(1, "x", "arrived")]


async def test_a_server_that_stops_answering_has_its_connection_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A frozen server keeps its TCP connection open, so keepalives see nothing wrong:
    the commit watchdog cuts the connection, and a shutdown during the freeze is bounded
    and saves the batch, written exactly once at the next start."""
    with running_server() as server:
        dsn = server.dsn()
        log = EventLog(
            PostgresEventStore(dsn), Calendar({}), data_dir=tmp_path, mono0=0.0, commit_timeout=1
        )
        log(EventKind.ARRIVED, at=1.0, call_id="a", service="td")
        assert await log.flush()
        server.pause()
        log(EventKind.QUEUED, at=2.0, call_id="a", service="td", queue="td")
        started = time.monotonic()
        assert not await asyncio.wait_for(log.flush(), 10)
        assert 1 <= time.monotonic() - started < 5
        assert any("commit hung" in r.getMessage() for r in caplog.records)
        assert gauges(log)["centralino_events_pending"] == 1.0
        await asyncio.wait_for(log.close(), 15)  # reconnecting fails in connect_timeout
        unsent = tmp_path / UNSENT_FILE
        saved = [from_json(line).seq for line in unsent.read_text(encoding="utf-8").splitlines()]
        assert saved == [2]

        server.resume()  # the frozen backend may still commit what it had received
        await asyncio.wait_for(_until(lambda: _centralino_sessions(dsn) == 0), 10)
        again = EventLog(PostgresEventStore(dsn), Calendar({}), data_dir=tmp_path, mono0=0.0)
        await again.close()
        assert not unsent.exists()
        assert stored_calls(dsn) == [(1, "a", "arrived"), (2, "a", "queued")]


def _centralino_sessions(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'centralino'"
        ).fetchone()
    return int(row[0]) if row else 0


class SlowStore(SqliteEventStore):
    """A real SQLite store whose commits take a while, counting overlapping commits."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writing = 0
        self.most_at_once = 0
        self.guard = threading.Lock()

    def _write(self, sql: str, rows: list[Row]) -> None:
        with self.guard:
            self.writing += 1
            self.most_at_once = max(self.most_at_once, self.writing)
        time.sleep(0.2)  # a slow disk or database, in the worker thread
        super()._write(sql, rows)
        with self.guard:
            self.writing -= 1


async def test_close_during_a_commit_waits_for_it_and_loses_nothing(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "events.sqlite3")
    log = EventLog(store, Calendar({}), data_dir=tmp_path, mono0=0.0, flush_interval=0.05)
    log.start()
    log(EventKind.ARRIVED, at=1.0, call_id="a", service="td")
    await asyncio.wait_for(_until(lambda: store.writing == 1), 5)  # a commit in flight
    log(EventKind.QUEUED, at=2.0, call_id="a", service="td", queue="td")
    await asyncio.wait_for(log.close(), 10)
    assert store.most_at_once == 1  # never two commits at once
    with SqliteEventStore(tmp_path / "events.sqlite3") as reader:
        kinds = [e.kind for e in reader.replay_after(0)]
    assert kinds == [EventKind.ARRIVED, EventKind.QUEUED]
    assert not (tmp_path / UNSENT_FILE).exists()


class EndlessStore(SqliteEventStore):
    """A real SQLite store whose first commit runs a query that never ends."""

    stuck = True

    def _write(self, sql: str, rows: list[Row]) -> None:
        if self.stuck:
            self.stuck = False
            endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)"
            try:
                self._conn.execute(f"{endless} SELECT count(*) FROM n").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc
        super()._write(sql, rows)


async def test_a_hung_sqlite_commit_is_interrupted_and_retried(tmp_path: Path) -> None:
    store = EndlessStore(tmp_path / "events.sqlite3")
    log = EventLog(store, Calendar({}), data_dir=tmp_path, mono0=0.0, commit_timeout=0.2)
    log(EventKind.ARRIVED, at=1.0, call_id="a", service="td")
    assert not await asyncio.wait_for(log.flush(), 5)  # interrupted, batch kept
    assert store.pending == 1 and gauges(log)["centralino_event_write_errors_total"] == 1.0
    assert await log.flush()
    await log.close()
    with SqliteEventStore(tmp_path / "events.sqlite3") as reader:
        assert [e.call_id for e in reader.replay_after(0)] == ["a"]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
