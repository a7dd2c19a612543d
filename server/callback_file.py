"""Pending callbacks across a restart: `<data_dir>/callbacks.json` (routing.callback_store).

The file always holds the callbacks still to be served, so that neither a clean stop
nor a crash loses a promise made to a citizen:

- while the switch runs, `CallbackJournal.checkpoint` (each `CHECKPOINT_INTERVAL`
  second) rewrites it when that set changed (a callback requested, an attempt failed, one
  served or given up) and removes it when the set is empty: a crash loses at most the
  changes of the last second;
- a clean shutdown writes the callbacks still waiting for their turn, after withdrawing
  the last offers;
- the next start reads it back into the ACD before SIP is served, and rewrites it at once
  with what was restored.

Every write is atomic (`write_atomically`: a temporary file made by `mkstemp`, so mode
0600, as citizens' phone numbers are personal data). A file that cannot be read is set
aside as `callbacks.json.unreadable` (still 0600) and logged; starting never fails for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from routing import callback, callback_store
from routing.b2bua import B2bua
from routing.callback_codec import SavedCallback
from server.persist import read_optional, sync_folder, write_atomically

log = logging.getLogger(__name__)

CALLBACK_FILE = "callbacks.json"
UNREADABLE_SUFFIX = ".unreadable"
CHECKPOINT_INTERVAL = 1.0


class CallbackJournal:
    """Keeps `callbacks.json` equal to the callbacks still to be served."""

    def __init__(self, data_dir: Path, b2bua: B2bua) -> None:
        self.path = data_dir / CALLBACK_FILE
        self._b2bua = b2bua
        self._written: list[SavedCallback] | None = None
        self._failing = False
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, clock: Callable[[], float]) -> None:
        """Checkpoint every `CHECKPOINT_INTERVAL` seconds until `close`."""
        self._task = asyncio.get_running_loop().create_task(self._run(clock))

    async def _run(self, clock: Callable[[], float]) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), CHECKPOINT_INTERVAL)
            if self._closing.is_set():
                return
            pending = self.changes(now=clock())
            if pending is not None:
                await asyncio.to_thread(self.write, pending)

    async def close(self) -> None:
        """Stop checkpointing, never in the middle of a write (the shutdown's own write
        of the file comes next and must be the last)."""
        self._closing.set()
        if self._task is not None:
            await self._task

    def changes(self, *, now: float) -> list[SavedCallback] | None:
        """The callbacks to write now (None: the file already holds them)."""
        current = callback_store.snapshot(self._b2bua, now=now)
        return None if current == self._written else current

    def write(self, pending: list[SavedCallback]) -> None:
        """Write (or remove) the file; off the event loop (it syncs). A failure is logged
        once until a write succeeds again, and retried at the next checkpoint."""
        try:
            _store(self.path, pending)
        except OSError as exc:
            if not self._failing:
                log.error("pending callbacks cannot be checkpointed in %s: %s", self.path, exc)
            self._failing = True
            return
        if self._failing:
            log.warning("pending callbacks checkpointed again in %s", self.path)
        self._failing = False
        self._written = pending

    def checkpoint(self, *, now: float) -> None:
        """`changes` then `write`, in one go (at start, before serving)."""
        pending = self.changes(now=now)
        if pending is not None:
            self.write(pending)


def save_pending(data_dir: Path, b2bua: B2bua, *, now: float) -> int:
    """At a clean shutdown: write the pending callbacks; how many were saved. If they
    cannot be written they are dropped as before (logged, ended in the event log)."""
    path = data_dir / CALLBACK_FILE
    pending = callback_store.pending_at_shutdown(b2bua, now=now)
    try:
        _store(path, pending)
    except OSError as exc:
        log.error("pending callbacks cannot be saved in %s: %s", path, exc.strerror or exc)
        callback.drop_at_shutdown(b2bua, now=now)
        return 0
    callback_store.saved(b2bua, pending)
    return len(pending)


def restore_pending(data_dir: Path, b2bua: B2bua, *, now: float) -> int:
    """At start, before serving: put the saved callbacks back in their queues; how many
    were restored. Never raises for a bad file."""
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
    CallbackJournal(data_dir, b2bua).checkpoint(now=now)  # what was restored, not more
    return len(callbacks) - len(lost)


def _store(path: Path, pending: list[SavedCallback]) -> None:
    """Write `pending` atomically, or remove the file when there is none; OSError."""
    if pending:
        write_atomically(path, callback_store.encode(pending, saved_at=datetime.now(UTC)))
    else:
        _remove(path)


def _remove(path: Path) -> None:
    """Remove the file (a file left behind would be restored at the next start)."""
    try:
        path.unlink()
    except FileNotFoundError:
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
