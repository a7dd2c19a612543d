"""Voicemail files written atomically, off the event loop.

A recording is complete or absent, never half written: the WAV goes to a temporary file
in the same folder, is fsync'ed, and `os.replace` puts it in place (atomic on POSIX within
one file system); the folder is fsync'ed too, so that the rename survives a crash. The
write runs in the loop's default executor: an fsync can take tens of milliseconds, which
the media tick of every other call must not wait for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from media.recorder import RecordingEndReason
from media.recorder import RecordingFinished as Recorded
from routing.media_plane import MediaEvent, RecordingFinished
from server.persist import write_atomically

__all__ = ["RecordingWriter", "safe_file_name"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_REASONS = {
    RecordingEndReason.SILENCE: "silence",
    RecordingEndReason.MAX_LENGTH: "max_length",
    RecordingEndReason.HANG_UP: "closed",
    RecordingEndReason.STOPPED: "closed",
}


def safe_file_name(name: str) -> str:
    """`name` as one path component: no separators, no leading dot, never empty."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned[:200] or "recording"


class RecordingWriter:
    """Writes finished recordings and reports RecordingFinished once each is durable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        folder: Path,
        *,
        emit: Callable[[MediaEvent], None],
    ) -> None:
        self._loop = loop
        self._folder = folder
        self._emit = emit
        self._pending: set[asyncio.Future[None]] = set()

    def write(self, leg: str, name: str, recorded: Recorded) -> None:
        path = self._folder / f"{safe_file_name(name)}.wav"
        future = self._loop.run_in_executor(None, write_atomically, path, recorded.wav)
        self._pending.add(future)
        future.add_done_callback(partial(self._written, leg, path, recorded))

    def _written(
        self, leg: str, path: Path, recorded: Recorded, future: asyncio.Future[None]
    ) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            # No event: the file does not exist, and call control must not announce it.
            log.error("leg %s: cannot write recording %s: %s", leg, path, error)
            return
        self._emit(
            RecordingFinished(
                at=recorded.at,
                leg=leg,
                path=str(path),
                seconds=recorded.duration,
                reason=_REASONS[recorded.reason],
            )
        )

    async def wait(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
