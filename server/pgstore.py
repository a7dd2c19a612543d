"""The event log in PostgreSQL (`events.dsn`), with the SQLite file as the default.

The table, the queries, the buffering and `seq` are `metrics.store.EventStore`'s; this
backend adds the connection: autocommit, one transaction per batch, server-side cursors
for replays (a month of a large site does not fit in memory at once), and a reconnection
on the next flush after the server went away, the unwritten batch kept in front.

`seq` is given by the writer from `MAX(seq) + 1`, so a database has one writer: the
switch takes a session advisory lock, and a second switch pointed at the same database
stops at start with a clear error instead of interleaving its numbers.  Reports open the
store as readers and take no lock.

A DSN may hold a password: messages show `where` (the DSN with the password replaced by
`***`), never the DSN itself.  libpq's own `PGPASSWORD` and `~/.pgpass` keep it out of
the configuration file altogether.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo

from metrics.store import (
    SCHEMA,
    SCHEMA_VERSION,
    EventStore,
    Row,
    SqliteEventStore,
    StoreError,
)

log = logging.getLogger(__name__)

DSN_SCHEMES = ("postgresql", "postgres")
WRITER_LOCK = 0x63656E7472616C  # pg_advisory_lock key held by the one writing switch
# A server that vanishes without closing the connection (a cable, a firewall) must fail a
# commit within seconds, not after TCP's retransmissions: the flusher would stall, and
# with it the shutdown.  libpq's keepalives and TCP_USER_TIMEOUT bound it to ~10 s.
CONNECTION_OPTIONS: dict[str, str | int] = {
    "connect_timeout": 5,
    "application_name": "centralino",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
SQLITE_FILE = "events.sqlite3"


def is_dsn(location: str | Path) -> bool:
    """True for a `postgresql://` (or `postgres://`) URI."""
    return isinstance(location, str) and urlsplit(location).scheme in DSN_SCHEMES


def redact_dsn(dsn: str) -> str:
    """`dsn` with its password, if any, replaced by `***`."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_event_store(data_dir: Path, dsn: str | None, *, writer: bool = True) -> EventStore:
    """The configured log: PostgreSQL at `dsn`, else `<data_dir>/events.sqlite3`."""
    if dsn is not None:
        return PostgresEventStore(dsn, writer=writer)
    return SqliteEventStore(data_dir / SQLITE_FILE)


class PostgresEventStore(EventStore):
    """The append-only call event log in a PostgreSQL database."""

    placeholder = "%s"

    def __init__(self, dsn: str, *, writer: bool = True, fetch_size: int = 5000) -> None:
        if not is_dsn(dsn):
            raise StoreError("expected a postgresql:// DSN")
        super().__init__(fetch_size=fetch_size)
        self._dsn = dsn
        self._where = redact_dsn(dsn)
        self._writer = writer
        self._conn: psycopg.Connection[Any] | None = None
        conn = self._connection()
        if writer:
            self._start()
            return
        try:
            row = conn.execute("SELECT to_regclass('call_event')").fetchone()
        except psycopg.Error as exc:
            raise self._failed("read events", exc) from exc
        if row is None or row[0] is None:
            self._close()
            raise StoreError(f"{self._where}: no event log here (no call_event table)")

    @property
    def where(self) -> str:
        return self._where

    def _reason(self, exc: BaseException) -> str:
        """The driver's message, one line, with no trace of the password."""
        diag = getattr(exc, "diag", None)
        primary = diag.message_primary if diag is not None else None
        text = primary or " ".join(str(exc).split()) or type(exc).__name__
        secret = urlsplit(self._dsn).password
        return text.replace(secret, "***") if secret else text

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, or a new one (taking the writer's lock and the schema)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._close()
        try:
            conninfo = make_conninfo(self._dsn, **CONNECTION_OPTIONS)
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self._where}: {self._reason(exc)}") from exc
        try:
            if self._writer:
                self._become_writer(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _become_writer(self, conn: psycopg.Connection[Any]) -> None:
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()
            if row is None or not row[0]:
                raise StoreError(
                    f"{self._where}: another session holds the writer's lock (another switch"
                    " writing this event log, or this switch's previous connection that the"
                    " server has not closed yet): one writing switch per database"
                )
            with conn.transaction():
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO centralino_meta (name, value) VALUES ('schema_version', %s)"
                    " ON CONFLICT (name) DO NOTHING",
                    (SCHEMA_VERSION,),
                )
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare {self._where}: {self._reason(exc)}") from exc

    def _failed(self, what: str, exc: psycopg.Error) -> StoreError:
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            self._close()  # its socket now, not at garbage collection; reconnect next time
            log.warning("event store connection lost", extra={"store": self._where})
        return StoreError(f"cannot {what}: {self._reason(exc)}")

    def _write(self, sql: str, rows: list[Row]) -> None:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        except psycopg.Error as exc:
            raise self._failed("write", exc) from exc

    def _rows(self, sql: str, params: Sequence[object]) -> Iterator[Sequence[Any]]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor(name="centralino_replay") as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(self._fetch_size):
                    yield from rows
        except psycopg.Error as exc:
            raise self._failed("read events", exc) from exc

    def _scalar(self, sql: str, params: Sequence[object]) -> int | None:
        conn = self._connection()
        try:
            row = conn.execute(sql, params).fetchone()
        except psycopg.Error as exc:
            raise self._failed("read events", exc) from exc
        return None if row is None or row[0] is None else int(row[0])

    def abort(self) -> None:
        """Shut the connection's socket down under a hung write (a server stopped or
        frozen with its TCP connection alive, which keepalives do not notice): libpq
        then sees the connection closed and the write fails like any other."""
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error) as exc:
            log.warning("cannot cut the event store connection: %s", exc)
            return
        log.warning("event store connection cut", extra={"store": self._where})

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
