"""The SQLite event store: schema, batched commits, ordered replay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrics.events import CallEvent, EventKind
from metrics.store import Row, SqliteEventStore, StoreError

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def ev(i: int, *, service: str = "td", seq: int = 0) -> CallEvent:
    return CallEvent(
        kind=EventKind.QUEUED,
        call_id=f"c{i}",
        service=service,
        wall=T0 + timedelta(seconds=i),
        mono=float(i),
        data={"n": str(i)},
        seq=seq,
    )


def test_append_buffers_and_flush_writes_one_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    stored = [store.append(ev(i)) for i in range(3)]
    assert [e.seq for e in stored] == [1, 2, 3]
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT COUNT(*) FROM call_event").fetchone()[0] == 0
    assert store.pending == 3
    assert store.flush() == 3 and store.pending == 0
    assert reader.execute("SELECT COUNT(*) FROM call_event").fetchone()[0] == 3
    assert store.flush() == 0
    store.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SqliteEventStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM centralino_meta").fetchall() == [("1",)]


def test_replay_is_ordered_filtered_and_exact(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as store:
        for i in (5, 1, 3):  # written out of order, seq given by the producer
            store.append(ev(i, seq=i, service="uru" if i == 3 else "td"))
            store.flush()
        store.append(ev(2, seq=2))
        store.flush()
        everything = list(store.replay(T0, T0 + timedelta(hours=1)))
        assert [e.seq for e in everything] == [1, 2, 3, 5]
        assert everything[0] == ev(1, seq=1)
        assert [
            e.seq for e in store.replay(T0 + timedelta(seconds=2), T0 + timedelta(seconds=5))
        ] == [2, 3]
        assert [e.seq for e in store.replay(T0, T0 + timedelta(hours=1), service="uru")] == [3]
        assert store.count(T0, T0 + timedelta(hours=1), service="td") == 3


def test_reopen_continues_the_sequence_and_close_flushes(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = SqliteEventStore(path)
    store.append(ev(1))
    store.close()
    again = SqliteEventStore(path)
    assert again.append(ev(2)).seq == 2
    again.close()
    with SqliteEventStore(path) as third:
        assert [e.seq for e in third.replay(T0, T0 + timedelta(days=1))] == [1, 2]


def test_rewriting_a_batch_is_idempotent(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as store:
        store.append(ev(1, seq=1))
        store.flush()
        store.append(ev(1, seq=1))
        store.flush()
        assert store.count(T0, T0 + timedelta(days=1)) == 1


def test_failed_flush_keeps_the_batch(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "e.db")
    store.append(ev(1))
    store._conn.execute("DROP TABLE call_event")
    with pytest.raises(StoreError):
        store.flush()
    assert store.pending == 1
    store._conn.close()


class SmallCommits(SqliteEventStore):
    """Transactions of two events; the third commit fails once when `fail_third`."""

    COMMIT_ROWS = 2
    fail_third = True

    def _write(self, sql: str, rows: list[Row]) -> None:
        if self.commits == 2 and self.fail_third:
            self.fail_third = False
            raise StoreError("disk full")
        super()._write(sql, rows)


def test_flush_commits_in_bounded_transactions_and_keeps_what_failed(tmp_path: Path) -> None:
    store = SmallCommits(tmp_path / "e.db")
    store.extend(ev(i) for i in range(7))
    with pytest.raises(StoreError, match="cannot write 2 events"):
        store.flush()
    assert store.commits == 2 and store.pending == 3  # two transactions of two landed
    assert store.flush() == 3 and store.commits == 4  # 2 + 1, retried in order
    with store:
        assert [e.seq for e in store.replay(T0, T0 + timedelta(days=1))] == list(range(1, 8))


def test_bad_paths_and_bounds_raise_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteEventStore(tmp_path / "missing" / "e.db")
    with SqliteEventStore(tmp_path / "e.db") as store, pytest.raises(StoreError):
        list(store.replay(datetime(2026, 1, 1), T0))
