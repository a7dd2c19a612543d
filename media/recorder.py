"""Voicemail recorder: decoded PCM in, a WAV file and a RecordingFinished event out.

The recorder ends on the first of: the maximum length of audio, a run of silence
(trailing silence is trimmed off the file), hang-up, or an explicit stop. It is pure: the
WAV bytes travel in the event, and writing them to disk atomically (temporary file in the
same directory, fsync, rename) belongs to `server/`, which owns the file system.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from enum import StrEnum

from media.wav import SAMPLE_RATE, write_wav

__all__ = ["Recorder", "RecordingEndReason", "RecordingFinished"]

_BYTES_PER_SECOND = 2 * SAMPLE_RATE


class RecordingEndReason(StrEnum):
    SILENCE = "silence"
    MAX_LENGTH = "max_length"
    HANG_UP = "hang_up"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished:
    """A recording ended; `wav` is the complete file, `size` its length in bytes."""

    at: float
    reason: RecordingEndReason
    duration: float
    size: int
    started_at: float
    wav: bytes


def rms(pcm: bytes) -> float:
    """Root mean square level of 16-bit little-endian PCM (0 for an empty frame)."""
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class Recorder:
    """Accumulates PCM frames; silence is a frame whose RMS is below `silence_level`.

    `max_duration` bounds the audio kept; `get_timer()` also bounds the wall time, so a
    caller whose RTP stops still gets a finished recording.
    """

    def __init__(
        self,
        *,
        now: float,
        max_duration: float = 120.0,
        silence_level: float = 300.0,
        silence_duration: float = 5.0,
    ) -> None:
        if max_duration <= 0 or silence_duration <= 0:
            raise ValueError("durations must be positive")
        self.started_at = now
        self.max_duration = max_duration
        self.silence_level = silence_level
        self.silence_duration = silence_duration
        self._pcm = bytearray()
        self._silent_bytes = 0  # length of the silence at the end of _pcm
        self._max_bytes = int(max_duration * SAMPLE_RATE) * 2
        self.finished = False
        self._event: RecordingFinished | None = None

    def receive_pcm(self, pcm: bytes, *, now: float) -> None:
        """One decoded frame of caller audio (16-bit little-endian mono 8 kHz)."""
        if self.finished:
            return
        room = self._max_bytes - len(self._pcm)
        chunk = pcm[: min(room, len(pcm) - len(pcm) % 2)]
        self._pcm += chunk
        if rms(chunk) < self.silence_level:
            self._silent_bytes += len(chunk)
        else:
            self._silent_bytes = 0
        if len(self._pcm) >= self._max_bytes:
            self._finish(RecordingEndReason.MAX_LENGTH, now=now)
        elif self._silent_bytes >= self.silence_duration * _BYTES_PER_SECOND:
            self._finish(RecordingEndReason.SILENCE, now=now)

    def hang_up(self, *, now: float) -> None:
        if not self.finished:
            self._finish(RecordingEndReason.HANG_UP, now=now)

    def stop(self, *, now: float) -> None:
        """The caller pressed the end key, or the call moved on."""
        if not self.finished:
            self._finish(RecordingEndReason.STOPPED, now=now)

    def get_timer(self) -> float | None:
        """A wall-clock bound in case audio stops arriving before the maximum length."""
        return None if self.finished else self.started_at + self.max_duration

    def handle_timer(self, *, now: float) -> None:
        deadline = self.get_timer()
        if deadline is not None and now >= deadline:
            self._finish(RecordingEndReason.MAX_LENGTH, now=now)

    def next_event(self) -> RecordingFinished | None:
        event, self._event = self._event, None
        return event

    def _finish(self, reason: RecordingEndReason, *, now: float) -> None:
        # Trailing silence is dead air, not message: trim it whatever ended the recording.
        pcm = bytes(self._pcm[: len(self._pcm) - self._silent_bytes])
        wav = write_wav(pcm)
        self.finished = True
        self._pcm.clear()
        self._event = RecordingFinished(
            at=now,
            reason=reason,
            duration=len(pcm) / _BYTES_PER_SECOND,
            size=len(wav),
            started_at=self.started_at,
            wav=wav,
        )
