"""Pending callbacks across a restart: `<data_dir>/callbacks.json` (routing.callback_store).

A clean shutdown writes the callbacks still waiting for their turn, atomically
(`write_atomically`: a temporary file made by `mkstemp`, so mode 0600, as citizens'
phone numbers are personal data); the next start reads it back into the ACD before SIP
is served, then removes it. A crash writes nothing: the callbacks waiting then are lost
(there is no write-ahead journal). A file that cannot be read is set aside as
`callbacks.json.unreadable` (still 0600) and logged; starting never fails for it.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

from routing import callback, callback_store
from routing.b2bua import B2bua
from server.persist import read_optional, sync_folder, write_atomically

log = logging.getLogger(__name__)

CALLBACK_FILE = "callbacks.json"
UNREADABLE_SUFFIX = ".unreadable"


def save_pending(data_dir: Path, b2bua: B2bua, *, now: float) -> int:
    """At a clean shutdown: write the pending callbacks; how many were saved. If they
    cannot be written they are dropped as before (logged, ended in the event log)."""
    path = data_dir / CALLBACK_FILE
    pending = callback_store.pending_at_shutdown(b2bua, now=now)
    if not pending:
        _remove(path)  # a file left from the last start would be restored twice
        return 0
    data = callback_store.encode(pending, saved_at=datetime.now(UTC))
    try:
        write_atomically(path, data)
    except OSError as exc:
        log.error("pending callbacks cannot be saved in %s: %s", path, exc.strerror or exc)
        callback.drop_at_shutdown(b2bua, now=now)
        return 0
    callback_store.saved(b2bua, pending)
    return len(pending)


def restore_pending(data_dir: Path, b2bua: B2bua, *, now: float) -> int:
    """At start, before serving: put the saved callbacks back in their queues and
    remove the file; how many were restored. Never raises for a bad file."""
    path = data_dir / CALLBACK_FILE
    try:
        data = read_optional(path)
    except OSError as exc:
        log.error("pending callbacks not restored: cannot read %s: %s", path, exc.strerror)
        return 0
    if data is None:
        return 0
    try:
        callbacks, unreadable = callback_store.decode(data)
    except callback_store.CallbackFileError as exc:
        _set_aside(path, reason=str(exc))
        return 0
    lost = callback_store.restore(b2bua, callbacks, now=now)
    callback_store.end_lost(b2bua, [*unreadable, *lost], now=now)
    _remove(path)
    return len(callbacks) - len(lost)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.error("cannot remove %s (its callbacks would come back): %s", path, exc.strerror)
        return
    with contextlib.suppress(OSError):
        sync_folder(path.parent)


def _set_aside(path: Path, *, reason: str) -> None:
    aside = path.with_name(path.name + UNREADABLE_SUFFIX)
    lost = "pending callbacks lost (how many is unknown)"
    try:
        path.replace(aside)
    except OSError as exc:
        log.error("%s: %s is unreadable (%s), not set aside: %s", lost, path, reason, exc.strerror)
        return
    log.error("%s: %s is unreadable (%s), kept as %s", lost, path, reason, aside)
