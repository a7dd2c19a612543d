"""The SQLite event store: schema, batched commits, ordered replay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrics.events import CallEvent, EventKind
from metrics.store import SqliteEventStore, StoreError

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


def test_bad_paths_and_bounds_raise_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteEventStore(tmp_path / "missing" / "e.db")
    with SqliteEventStore(tmp_path / "e.db") as store, pytest.raises(StoreError):
        list(store.replay(datetime(2026, 1, 1), T0))
