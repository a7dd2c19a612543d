"""Durable state of the HTTP API: small files replaced atomically, and the mail store.

`write_atomically` is how runtime state (service overrides, notices) reaches disk: the
bytes go to a temporary file in the same folder, are fsync'ed, and `os.replace` puts them
in place (atomic on POSIX within one file system); the folder is fsync'ed so the rename
survives a crash. A reader sees the old file or the new one, never half of either.

`MailStore` is one SQLite file holding the callback forms and the outbox of e-mails not
yet accepted by the SMTP relay: a form and its e-mail are written in one transaction
before the API answers, so a form the API acknowledged is never lost, whatever happens
to the relay or the process afterwards. Its methods block: call them from a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "MailStore",
    "Outgoing",
    "PendingMail",
    "StoreError",
    "read_optional",
    "write_atomically",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreError(OSError):
    """The store cannot be read or written (disk full, permissions, a corrupt file)."""


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, fsync, rename over `path`, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that renames and unlinks in it survive a crash."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def read_optional(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One e-mail as the relay will receive it: envelope and RFC 5322 bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingMail:
    """An outbox entry not yet accepted by the relay."""

    id: int
    kind: str
    attempts: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS forms (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    service TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    form_id INTEGER REFERENCES forms(id),
    created_at TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    message BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(sent_at);
"""


class MailStore:
    """Callback forms and the e-mail outbox in one SQLite file (thread-safe, blocking)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create or open the file; safe to call twice."""
        with self._lock:
            if self._db is not None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: a form acknowledged to the operator survives a power cut.
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def add_form(
        self,
        *,
        service: str,
        data: dict[str, object],
        received_at: str,
        mail: Callable[[int], Outgoing],
    ) -> tuple[int, int]:
        """Store a form and its e-mail (built by `mail(form_id)`) in one transaction."""

        def insert(db: sqlite3.Connection) -> tuple[int, int]:
            cursor = db.execute(
                "INSERT INTO forms (received_at, service, data) VALUES (?, ?, ?)",
                (received_at, service, json.dumps(data, ensure_ascii=False)),
            )
            form_id = int(cursor.lastrowid or 0)
            mail_id = self._insert_mail(db, "form", mail(form_id), received_at, form_id)
            return form_id, mail_id

        return self._transaction(insert)

    def add_mail(self, kind: str, mail: Outgoing, *, created_at: str) -> int:
        """Queue one e-mail (a voicemail, for instance); returns its outbox id."""
        return self._transaction(lambda db: self._insert_mail(db, kind, mail, created_at, None))

    def pending(self) -> list[PendingMail]:
        """Every e-mail the relay has not accepted yet, oldest first."""
        rows = self._query(
            "SELECT id, kind, attempts FROM outbox WHERE sent_at IS NULL ORDER BY id", ()
        )
        return [PendingMail(id=int(r[0]), kind=str(r[1]), attempts=int(r[2])) for r in rows]

    def message(self, mail_id: int) -> Outgoing | None:
        rows = self._query(
            "SELECT sender, recipients, message FROM outbox WHERE id = ?", (mail_id,)
        )
        if not rows or rows[0][2] is None:
            return None
        sender, recipients, data = rows[0]
        return Outgoing(sender=str(sender), recipients=tuple(json.loads(recipients)), data=data)

    def mark_sent(self, mail_id: int, *, at: str) -> None:
        """The relay accepted it: keep the record, drop the (possibly large) body."""
        self._transaction(
            lambda db: db.execute(
                "UPDATE outbox SET sent_at = ?, message = NULL, last_error = NULL WHERE id = ?",
                (at, mail_id),
            )
        )

    def mark_failed(self, mail_id: int, error: str) -> None:
        self._transaction(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error[:500], mail_id),
            )
        )

    def forms(self, *, limit: int) -> list[dict[str, object]]:
        """The latest forms, newest first, each with the state of its e-mail."""
        rows = self._query(
            "SELECT f.id, f.received_at, f.service, f.data, o.sent_at, o.attempts, o.last_error"
            " FROM forms f LEFT JOIN outbox o ON o.form_id = f.id ORDER BY f.id DESC LIMIT ?",
            (limit,),
        )
        return [_form_row(row) for row in rows]

    def _insert_mail(
        self,
        db: sqlite3.Connection,
        kind: str,
        mail: Outgoing,
        created_at: str,
        form_id: int | None,
    ) -> int:
        cursor = db.execute(
            "INSERT INTO outbox (kind, form_id, created_at, sender, recipients, message)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (kind, form_id, created_at, mail.sender, json.dumps(mail.recipients), mail.data),
        )
        return int(cursor.lastrowid or 0)

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: {exc}") from exc
            return result

    def _query(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._connection().execute(sql, tuple(args)).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"{self.path} is not open")
        return self._db


def _form_row(row: tuple[object, ...]) -> dict[str, object]:
    form_id, received_at, service, data, sent_at, attempts, error = row
    return {
        "id": form_id,
        "received_at": received_at,
        "service": service,
        "form": json.loads(str(data)),
        "mail": {"sent_at": sent_at, "attempts": attempts or 0, "last_error": error},
    }
