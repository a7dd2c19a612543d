"""The event store's contract on both backends: SQLite (a file) and PostgreSQL (a real
server, tests/pgserver.py).  The same events give the same replay, the same counts and
the same month report, whichever backend holds them; PostgreSQL adds one writer per
database, a reconnection after the server went away, and DSNs whose password never shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pgserver import PgServer, free_tcp_port, running_server

from metrics.events import CallEvent, EventKind
from metrics.kpi import KPI_KINDS
from metrics.render import render_json
from metrics.report import report_from_store
from metrics.store import EventStore, SqliteEventStore, StoreError
from server.pgstore import PostgresEventStore, is_dsn, open_event_store, redact_dsn

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")
Opener = Callable[..., EventStore]


def ev(
    i: int, *, kind: EventKind = EventKind.QUEUED, service: str = "td", seq: int = 0
) -> CallEvent:
    return CallEvent(
        kind=kind,
        call_id=f"c{i}",
        service=service,
        sub_service="cps" if service == "td" else None,
        queue=service,
        wall=T0 + timedelta(seconds=i),
        mono=i + 0.25,
        data={"n": str(i), "note": "perché ☎"},
        seq=seq,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens stores on one fresh location of the parametrized backend."""
    if request.param == "sqlite":
        return lambda **kw: open_event_store(tmp_path, None, **kw)
    dsn: str = request.getfixturevalue("pg_dsn")
    return lambda **kw: open_event_store(tmp_path, dsn, **kw)


def test_flush_replay_filters_and_count(opener: Opener) -> None:
    with opener() as store:
        for i in (5, 1, 3):  # written out of order, seq given by the producer
            store.append(ev(i, seq=i, service="uru" if i == 3 else "td"))
            store.flush()
        store.append(ev(2, seq=2, kind=EventKind.ANSWERED))
        assert store.pending == 1
        assert store.flush() == 1 and store.pending == 0 and store.flush() == 0
        hour = T0 + timedelta(hours=1)
        everything = list(store.replay(T0, hour))
        assert [e.seq for e in everything] == [1, 2, 3, 5]
        assert everything[0] == ev(1, seq=1)  # every field, the accents and ☎ included
        window = store.replay(T0 + timedelta(seconds=2), T0 + timedelta(seconds=5))
        assert [e.seq for e in window] == [2, 3]
        assert [e.seq for e in store.replay(T0, hour, service="uru")] == [3]
        assert store.count(T0, hour, service="td") == 3
        answered = list(store.replay_facts(T0, hour, [EventKind.ANSWERED]))
        assert [(f.kind, f.call_id, f.mono) for f in answered] == [(EventKind.ANSWERED, "c2", 2.25)]
        assert store.count(T0, hour, kinds=[EventKind.QUEUED]) == 3


def test_reopen_continues_the_sequence_and_rewrites_are_idempotent(opener: Opener) -> None:
    store = opener()
    store.extend([ev(1), ev(2)])
    store.close()  # close flushes
    with opener() as again:
        assert again.append(ev(3)).seq == 3
        again.append(ev(3, seq=3))  # the same event twice (a retried batch): stored once
    with opener() as third:
        assert [e.seq for e in third.replay(T0, T0 + timedelta(days=1))] == [1, 2, 3]


def test_following_the_log_by_seq(opener: Opener) -> None:
    writer = opener()
    assert writer.last_seq() == 0
    writer.extend([ev(1), ev(2)])
    writer.flush()
    reader = opener(writer=False)
    mark = reader.last_seq()
    assert mark == 2 and list(reader.replay_after(mark)) == []
    writer.extend([ev(3, kind=EventKind.ANSWERED), ev(4)])
    assert list(reader.replay_after(mark)) == []  # appended, not committed yet
    writer.flush()
    assert [(e.seq, e.kind) for e in reader.replay_after(mark)] == [
        (3, EventKind.ANSWERED),
        (4, EventKind.QUEUED),
    ]
    reader.close()
    writer.close()


def test_a_long_replay_is_streamed_in_order(opener: Opener) -> None:
    with opener() as store:
        for i in range(12_000):
            store.append(ev(i % 3600, seq=i + 1))
        store.flush()
    with opener(writer=False) as reader:
        reader._fetch_size = 1000
        seqs = [e.seq for e in reader.replay(T0, T0 + timedelta(days=1))]
    assert seqs == list(range(1, 12_001))


def random_month(rng: random.Random, calls: int) -> list[CallEvent]:
    """Calls spread over November 2026: answered, abandoned (long and short), qualified."""
    events: list[tuple[datetime, CallEvent]] = []
    for n in range(calls):
        local = datetime(2026, 11, rng.randint(2, 27), tzinfo=ROME) + timedelta(
            hours=rng.uniform(7.0, 18.0)
        )
        arrive = local.astimezone(UTC)
        wait = rng.uniform(0.0, 40.0)
        steps = [(0.0, EventKind.ARRIVED, {}), (8.0, EventKind.QUEUED, {})]
        if rng.random() < 0.3:
            steps.append((8.0 + wait, EventKind.ABANDONED, {}))
        else:
            steps.append((8.0 + wait, EventKind.ANSWERED, {}))
            outcome = rng.choice(["resolved", "escalated", "unknown"])
            steps.append((60.0 + wait, EventKind.DISPOSITION, {"disposition": outcome}))
        for offset, kind, data in steps:
            wall = arrive + timedelta(seconds=offset)
            event = CallEvent(
                kind=kind,
                call_id=f"m{n}",
                service=rng.choice(["td", "lavoro"]) if offset == 0 else "td",
                wall=wall,
                mono=wall.timestamp(),
                data=data,
            )
            events.append((wall, event))
    events.sort(key=lambda pair: pair[0])
    return [event for _, event in events]


def office_hours(service: str, local: datetime) -> bool:
    return local.weekday() < 5 and 8 <= local.hour < 17


def test_both_backends_give_the_same_replay_and_report(tmp_path: Path, pg_dsn: str) -> None:
    month = random_month(random.Random(6), 400)
    stores = [SqliteEventStore(tmp_path / "e.sqlite3"), PostgresEventStore(pg_dsn)]
    start, end = datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    replays, reports = [], []
    for store in stores:
        with store:
            store.extend(month)
            store.flush()
            replays.append(list(store.replay_facts(start, end, KPI_KINDS)))
            report = report_from_store(store, "2026-11", in_window=office_hours)
            reports.append(render_json(report))
    assert len(replays[0]) == len(month) and replays[0] == replays[1]
    assert reports[0] == reports[1]
    assert '"taken"' in reports[0]


# -- PostgreSQL only --------------------------------------------------------------------


def test_one_writer_per_database_readers_welcome(pg_dsn: str) -> None:
    writer = PostgresEventStore(pg_dsn)
    writer.append(ev(1))
    writer.flush()
    with pytest.raises(StoreError, match="one writing switch per database"):
        PostgresEventStore(pg_dsn)
    with PostgresEventStore(pg_dsn, writer=False) as reader:  # a report while it runs
        assert reader.count(T0, T0 + timedelta(days=1)) == 1
    writer.close()
    with PostgresEventStore(pg_dsn) as successor:  # the lock went with the session
        assert successor.append(ev(2)).seq == 2


def test_a_reader_of_an_empty_database_says_there_is_no_log(pg_dsn: str) -> None:
    with pytest.raises(StoreError) as err:
        PostgresEventStore(pg_dsn, writer=False)
    assert str(err.value) == f"{pg_dsn}: no event log here (no call_event table)"


def test_server_gone_and_back_loses_nothing() -> None:
    with running_server() as server:
        store = PostgresEventStore(server.dsn())
        store.append(ev(1))
        store.flush()
        server.stop()
        store.extend([ev(2), ev(3)])
        with pytest.raises(StoreError, match="cannot write 2 events"):
            store.flush()
        assert store.pending == 2  # kept, in order, for the next commit
        store.append(ev(4))
        with pytest.raises(StoreError, match="cannot connect"):
            store.flush()
        assert store.pending == 3
        server.start()
        assert store.flush() == 3  # a new connection, the writer's lock taken again
        with PostgresEventStore(server.dsn(), writer=False) as reader:
            replayed = list(reader.replay(T0, T0 + timedelta(days=1)))
        assert [(e.seq, e.call_id) for e in replayed] == [(n, f"c{n}") for n in (1, 2, 3, 4)]
        store.close()


def test_dsn_passwords_never_show(pg_server: PgServer) -> None:
    assert redact_dsn("postgresql://cc:s3cret@db.example:5432/centralino") == (
        "postgresql://cc:***@db.example:5432/centralino"
    )
    assert redact_dsn("postgresql://cc@db/centralino") == "postgresql://cc@db/centralino"
    assert is_dsn("postgres://db/x") and not is_dsn("var/events.sqlite3")
    closed = f"postgresql://cc:s3cret@127.0.0.1:{free_tcp_port()}/centralino"
    with pytest.raises(StoreError) as err:
        PostgresEventStore(closed)
    assert "s3cret" not in str(err.value) and "cc:***@127.0.0.1" in str(err.value)
    with pytest.raises(StoreError) as err:
        PostgresEventStore(pg_server.dsn("no_such_database", password="s3cret"))
    assert "s3cret" not in str(err.value) and "no_such_database" in str(err.value)


def test_the_schema_is_the_documented_one(pg_dsn: str) -> None:
    PostgresEventStore(pg_dsn).close()
    with psycopg.connect(pg_dsn) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'call_event' ORDER BY ordinal_position"
        ).fetchall()
        version = conn.execute("SELECT value FROM centralino_meta").fetchall()
    assert columns[:4] == [
        ("seq", "bigint"),
        ("wall_us", "bigint"),
        ("mono", "double precision"),
        ("kind", "text"),
    ]
    assert [name for name, _ in columns[4:]] == [
        "call_id", "service", "sub_service", "queue", "operator", "data",
    ]  # fmt: skip
    assert version == [("1",)]


def test_a_server_that_wants_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCRAM-SHA-256 on loopback, as in production: the password in the DSN works, so
    does libpq's PGPASSWORD with none in the DSN (the way to keep it out of the file),
    and a wrong one is refused with the server's reason and without the password."""
    with running_server(password="right-horse-battery") as server:
        with PostgresEventStore(server.dsn()) as store:
            store.append(ev(1))
        bare = server.dsn(password="").replace("postgres:@", "postgres@")
        monkeypatch.setenv("PGPASSWORD", "right-horse-battery")
        with PostgresEventStore(bare, writer=False) as reader:
            assert reader.count(T0, T0 + timedelta(days=1)) == 1
        monkeypatch.delenv("PGPASSWORD")
        with pytest.raises(StoreError) as err:
            PostgresEventStore(server.dsn(password="wrong-staple"))
        assert "password authentication failed" in str(err.value)
        assert "wrong-staple" not in str(err.value) and "postgres:***@" in str(err.value)
