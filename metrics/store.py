"""The append-only call event log: the common store, and its SQLite (WAL) backend.

`append` only buffers (a `collections.deque`, whose append and popleft are atomic, so the
event-loop thread may append while one writer thread flushes).  `flush` drains the buffer
in transactions of at most `COMMIT_ROWS` events.  The schema (docs/events.md) uses only
types and statements that PostgreSQL accepts unchanged (BIGINT, DOUBLE PRECISION, TEXT,
ON CONFLICT DO NOTHING): the PostgreSQL backend (`server.pgstore`) shares it, and
everything above the connection (buffering, `seq`, queries, row decoding) lives here in
`EventStore`.

Threading contract: one thread appends; one thread at a time calls `flush`, `replay`,
`count` or `close` (the runtime's writer thread); `abort` may come from any thread.
Reports open their own store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from metrics.events import (
    EMPTY_DATA,
    CallEvent,
    EventFact,
    EventFormatError,
    EventKind,
    parse_kind,
    us_to_wall,
    wall_to_us,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS call_event (
        seq BIGINT PRIMARY KEY,
        wall_us BIGINT NOT NULL,
        mono DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT,
        service TEXT,
        sub_service TEXT,
        queue TEXT,
        operator TEXT,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS call_event_wall ON call_event (wall_us)",
    "CREATE INDEX IF NOT EXISTS call_event_call ON call_event (call_id)",
    """CREATE TABLE IF NOT EXISTS centralino_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)
_COLUMNS = "seq, wall_us, mono, kind, call_id, service, sub_service, queue, operator, data"
_KINDS = {kind.value: kind for kind in EventKind}
_FACT_COLUMNS = "kind, call_id, wall_us, mono, service, sub_service, data"
Row = tuple[int, int, float, str, str | None, str | None, str | None, str | None, str | None, str]


class StoreError(Exception):
    """The event store could not be opened, written or read."""


class EventStore(ABC):
    """The append-only call event log; a backend supplies the connection.

    A backend sets `placeholder` (its DB-API parameter marker) and implements `_write`
    (one transaction), `_rows` (a streamed query), `_scalar`, `_close` and `where`; it
    calls `_start` once connected.  Its driver's errors must come out as `StoreError`.
    """

    placeholder: ClassVar[str] = "?"
    # A transaction stays short even after a long outage (a few hundred milliseconds), so
    # the runtime can tell a slow catch-up (commits go on) from a hung server (none do).
    COMMIT_ROWS: ClassVar[int] = 10_000

    def __init__(self, *, fetch_size: int = 5000) -> None:
        self._buffer: deque[CallEvent] = deque()
        self._fetch_size = fetch_size
        self._next_seq = 1
        self.commits = 0
        """Transactions committed so far (read by the runtime's watchdog)."""

    def _start(self) -> None:
        """Continue the sequence after what is stored (the backend is connected)."""
        self._next_seq = self.last_seq() + 1

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the log is, for messages (never a password)."""

    @abstractmethod
    def _write(self, sql: str, rows: list[Row]) -> None:
        """Insert `rows` in one transaction; StoreError on failure."""

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[object]) -> Iterator[Sequence[Any]]:
        """The rows of a query, fetched `fetch_size` at a time; StoreError on failure."""

    @abstractmethod
    def _scalar(self, sql: str, params: Sequence[object]) -> int | None:
        """The integer in the first row and column (None for NULL); StoreError on failure."""

    @abstractmethod
    def _close(self) -> None:
        """Release the connection."""

    @abstractmethod
    def abort(self) -> None:
        """Interrupt a write that does not return (called from another thread); the
        write then fails and keeps its batch."""

    @property
    def pending(self) -> int:
        """Events appended but not yet written (what a crash now would lose)."""
        return len(self._buffer)

    def append(self, event: CallEvent) -> CallEvent:
        """Buffer `event`; give it the next `seq` if it has none.  Never touches the disk."""
        if event.seq == 0:
            event = replace(event, seq=self._next_seq)
        self._next_seq = max(self._next_seq, event.seq + 1)
        self._buffer.append(event)
        return event

    def drain(self, limit: int | None = None) -> list[CallEvent]:
        """Take the buffered events (the oldest `limit` of them) out without writing them."""
        taken: list[CallEvent] = []
        while self._buffer and (limit is None or len(taken) < limit):
            taken.append(self._buffer.popleft())
        return taken

    def flush(self) -> int:
        """Write every buffered event, in transactions of at most `COMMIT_ROWS` events;
        return how many were written."""
        written = 0
        while batch := self.drain(self.COMMIT_ROWS):
            self._commit(batch)
            written += len(batch)
        return written

    def _commit(self, batch: list[CallEvent]) -> None:
        mark = self.placeholder
        insert = (
            f"INSERT INTO call_event ({_COLUMNS}) VALUES ({', '.join([mark] * 10)})"
            " ON CONFLICT (seq) DO NOTHING"
        )
        try:
            self._write(insert, [_to_row(e) for e in batch])
        except StoreError as exc:
            # Put the batch back in front, in order, so the next flush retries it.
            self._buffer.extendleft(reversed(batch))
            raise StoreError(f"cannot write {len(batch)} events to {self.where}: {exc}") from exc
        self.commits += 1

    def replay(
        self, start: datetime, end: datetime, service: str | None = None
    ) -> Iterator[CallEvent]:
        """Stored events with `start <= wall < end` (aware datetimes), in `seq` order."""
        sql, params = self._range_query(_COLUMNS, start, end, service)
        for row in self._rows(sql + " ORDER BY seq", params):
            yield _from_row(row)

    def last_seq(self) -> int:
        """The highest stored `seq` (0 for an empty log)."""
        return self._scalar("SELECT MAX(seq) FROM call_event", ()) or 0

    def replay_after(self, seq: int) -> Iterator[CallEvent]:
        """Stored events numbered after `seq`, in order (to follow a log being written)."""
        sql = f"SELECT {_COLUMNS} FROM call_event WHERE seq > {self.placeholder} ORDER BY seq"
        for row in self._rows(sql, (seq,)):
            yield _from_row(row)

    def replay_facts(
        self, start: datetime, end: datetime, kinds: Iterable[EventKind] | None = None
    ) -> Iterator[EventFact]:
        """Like `replay`, as light `EventFact`s, optionally only some kinds (for reports)."""
        sql, params = self._range_query(_FACT_COLUMNS, start, end, None, kinds)
        for row in self._rows(sql + " ORDER BY seq", params):
            try:
                yield _fact(row)
            except (ValueError, KeyError) as exc:
                raise StoreError(f"corrupt event in {self.where}: {exc}") from exc

    def count(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        kinds: Iterable[EventKind] | None = None,
    ) -> int:
        """How many stored events `replay` (or `replay_facts`) would yield."""
        sql, params = self._range_query("COUNT(*)", start, end, service, kinds)
        return self._scalar(sql, params) or 0

    def extend(self, events: Iterable[CallEvent]) -> None:
        """Append several events (a convenience for imports and tests)."""
        for event in events:
            self.append(event)

    def close(self) -> None:
        """Flush what is buffered and release the connection (called on shutdown)."""
        try:
            self.flush()
        finally:
            self._close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _range_query(
        self,
        what: str,
        start: datetime,
        end: datetime,
        service: str | None,
        kinds: Iterable[EventKind] | None = None,
    ) -> tuple[str, tuple[object, ...]]:
        if start.utcoffset() is None or end.utcoffset() is None:
            raise StoreError("replay bounds must be aware datetimes")
        mark = self.placeholder
        sql = f"SELECT {what} FROM call_event WHERE wall_us >= {mark} AND wall_us < {mark}"
        params: tuple[object, ...] = (wall_to_us(start), wall_to_us(end))
        if service is not None:
            sql += f" AND service = {mark}"
            params += (service,)
        if kinds is not None:
            wanted = sorted(k.value for k in kinds)
            sql += f" AND kind IN ({', '.join([mark] * len(wanted))})"
            params += tuple(wanted)
        return sql, params


class SqliteEventStore(EventStore):
    """The log in one SQLite file (the default: `<data_dir>/events.sqlite3`)."""

    def __init__(self, path: str | Path, *, fetch_size: int = 5000) -> None:
        super().__init__(fetch_size=fetch_size)
        self._path = str(path)
        try:
            self._conn = sqlite3.connect(self._path, check_same_thread=False)
            self._create_schema()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event store {self._path}: {exc}") from exc
        self._start()

    @property
    def where(self) -> str:
        return self._path

    def _create_schema(self) -> None:
        # WAL lets a report read while the runtime writes; NORMAL syncs only at checkpoints,
        # so a power loss may drop the last commits but never corrupts the file.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            for statement in SCHEMA:
                self._conn.execute(statement)
            self._conn.execute(
                "INSERT INTO centralino_meta (name, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (name) DO NOTHING",
                (SCHEMA_VERSION,),
            )

    def _write(self, sql: str, rows: list[Row]) -> None:
        try:
            with self._conn:
                self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def _rows(self, sql: str, params: Sequence[object]) -> Iterator[Sequence[Any]]:
        try:
            cursor = self._conn.execute(sql, params)
            while rows := cursor.fetchmany(self._fetch_size):
                yield from rows
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read events: {exc}") from exc

    def _scalar(self, sql: str, params: Sequence[object]) -> int | None:
        try:
            row = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read events: {exc}") from exc
        return None if row is None or row[0] is None else int(row[0])

    def abort(self) -> None:
        # The one sqlite3 call meant for another thread: the running statement stops
        # with "interrupted" and its transaction rolls back.
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
            self._conn.interrupt()

    def _close(self) -> None:
        self._conn.close()


def _to_row(event: CallEvent) -> Row:
    data = json.dumps(dict(event.data), sort_keys=True, separators=(",", ":"))
    return (
        event.seq,
        event.wall_us,
        float(event.mono),
        event.kind.value,
        event.call_id,
        event.service,
        event.sub_service,
        event.queue,
        event.operator,
        data,
    )


def _fact(row: Sequence[Any]) -> EventFact:
    kind, call_id, wall_us, mono, service, sub_service, data = row
    mapping = EMPTY_DATA if data == "{}" else json.loads(data)
    return EventFact(_KINDS[kind], call_id, wall_us, mono, service, sub_service, mapping)


def _from_row(row: Sequence[Any]) -> CallEvent:
    seq, wall_us, mono, kind, call_id, service, sub_service, queue, operator, data = row
    try:
        return CallEvent(
            kind=_KINDS.get(kind) or parse_kind(kind),
            wall=us_to_wall(wall_us),
            mono=mono,
            call_id=call_id,
            service=service,
            sub_service=sub_service,
            queue=queue,
            operator=operator,
            data=EMPTY_DATA if data == "{}" else json.loads(data),
            seq=seq,
        )
    except (ValueError, EventFormatError) as exc:
        raise StoreError(f"corrupt event seq={seq}: {exc}") from exc
