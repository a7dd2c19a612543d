"""Prompt and music-on-hold player paced by an absolute schedule.

Frame k is due at `start + k * frame_duration`; `due(now=...)` hands out exactly the frames
whose instant has passed. Because the schedule is computed from the start time and never
from summed sleeps, a late wake-up is caught up at once and playback never drifts: after
ten minutes the frame count is 30,000 whatever the runtime's timer jitter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FRAME_DURATION", "PlaybackFinished", "Player", "split_frames"]

FRAME_DURATION = 0.020
_EPSILON = 1e-9  # absorbs float rounding so a frame is due exactly at its instant


def split_frames(pcm: bytes, *, frame_bytes: int = 320) -> list[bytes]:
    """Cut 16-bit PCM into 20 ms frames (320 bytes at 8 kHz), padding the last with silence."""
    if frame_bytes <= 0:
        raise ValueError("frame_bytes must be positive")
    frames = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] += bytes(frame_bytes - len(frames[-1]))
    return frames


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished:
    """A prompt ran to its end, or was stopped (barge-in, hang-up, bridge)."""

    at: float
    frames_played: int
    stopped: bool


class Player:
    """Hands out encoded frames on schedule; loops for music on hold.

    `frames` are payloads ready for RtpSender.frame(); the runtime calls `due(now=...)`
    at or after `get_timer()` and sends what it returns, in order.
    """

    __slots__ = ("_event", "_frames", "_sent", "finished", "frame_duration", "loop", "start")

    def __init__(
        self,
        frames: Sequence[bytes],
        *,
        start: float,
        loop: bool = False,
        frame_duration: float = FRAME_DURATION,
    ) -> None:
        if loop and not frames:
            raise ValueError("cannot loop an empty prompt")
        if frame_duration <= 0:
            raise ValueError("frame_duration must be positive")
        self._frames = tuple(frames)
        self.start = start
        self.loop = loop
        self.frame_duration = frame_duration
        self._sent = 0
        self.finished = False
        self._event: PlaybackFinished | None = None
        if not frames:
            self._finish(at=start, stopped=False)

    @property
    def frames_played(self) -> int:
        return self._sent

    def due(self, *, now: float) -> list[bytes]:
        """The frames whose due time is <= now and that were not handed out yet."""
        if self.finished:
            return []
        count = math.floor((now - self.start) / self.frame_duration + _EPSILON) + 1
        total = len(self._frames)
        if not self.loop:
            count = min(count, total)
        if count <= self._sent:
            return []
        first, self._sent = self._sent, count
        if self.loop:
            frames = [self._frames[i % total] for i in range(first, count)]
        else:
            frames = list(self._frames[first:count])
            if count == total:
                self._finish(at=now, stopped=False)
        return frames

    def stop(self, *, now: float) -> None:
        """Barge-in or hang-up: no more frames."""
        if not self.finished:
            self._finish(at=now, stopped=True)

    def _finish(self, *, at: float, stopped: bool) -> None:
        self.finished = True
        self._event = PlaybackFinished(at=at, frames_played=self._sent, stopped=stopped)

    def get_timer(self) -> float | None:
        """When the next frame falls due; None once finished."""
        if self.finished:
            return None
        return self.start + self._sent * self.frame_duration

    def next_event(self) -> PlaybackFinished | None:
        event, self._event = self._event, None
        return event
