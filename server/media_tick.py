"""The one 20 ms media tick that drives every RTP leg of the runtime (server/media.py).

Pacing on an absolute grid `origin + k * 20 ms` (never summed sleeps) with ONE
`loop.call_at`: each tick hands the playing legs the frames due by its instant (a late
tick sends the backlog at once), runs the RFC 4733 end timers and the recorders'
wall-clock bound, and every second or so the media-timeout scan (RFC 3550 §6.3.5 in
spirit) and the RTCP reports (server/media_rtcp.py). The tick stops by itself once no
leg is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from media.player import FRAME_DURATION, Player
from routing.media_plane import MediaTimedOut, PlaybackFinished
from server.media_leg import Leg, LegOwner
from server.media_rtcp import RtcpReporter

log = logging.getLogger(__name__)

_LATE = 0.005  # a tick this late shows as jitter at the far end
_TIMEOUT_SCAN = 1.0  # seconds between media-timeout scans (finer for short timeouts)


class MediaTick:
    """The runtime's pacing: which legs play, wait on DTMF timers or record, and when."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        legs: dict[str, Leg],
        owner: LegOwner,
        media_timeout: float,
        rtcp_interval: float,
        random_bits: Callable[[int], int],
    ) -> None:
        self._loop = loop
        self._legs = legs
        self._owner = owner
        self.playing: set[Leg] = set()
        self.dtmf_pending: set[Leg] = set()
        self.recording: set[Leg] = set()
        self._reports = RtcpReporter(interval=rtcp_interval, random_bits=random_bits)
        scan = min(_TIMEOUT_SCAN, media_timeout / 4, rtcp_interval / 2)
        self._scan_every = max(1, round(scan / FRAME_DURATION))
        self._tick_handle: asyncio.TimerHandle | None = None
        self._in_tick = False
        self._origin = 0.0
        self._tick_index = 0
        self.late_ticks = 0  # ticks more than 5 ms behind their instant
        self._late_max = 0.0  # the latest tick since the last take_maxima(), in seconds
        self._busy_max = 0.0  # the longest tick since the last take_maxima(), in seconds

    def start(self) -> None:
        """Start ticking unless already running; inside a tick it re-arms itself."""
        if self._tick_handle is None and not self._in_tick:
            self._origin, self._tick_index = self._loop.time(), 0
            self._tick_handle = self._loop.call_at(self._origin, self._tick)

    def stop(self) -> None:
        """Cancel the next tick (shutdown)."""
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None

    def play_start(self) -> float:
        """The grid instant a player started now sends its first frame at."""
        # Inside a tick (PlaybackFinished -> IVR -> next prompt) the tick's own instant is
        # already served: starting there would send two packets on the next tick and run
        # the stream 20 ms early. The next prompt's first frame belongs to the next instant.
        return self._next_tick() + (FRAME_DURATION if self._in_tick else 0.0)

    def take_maxima(self) -> tuple[float, float]:
        """(latest tick lateness, longest tick) in seconds since the last call; restarts both."""
        late_max, self._late_max = self._late_max, 0.0
        busy_max, self._busy_max = self._busy_max, 0.0
        return late_max, busy_max

    def _next_tick(self) -> float:
        return self._origin + self._tick_index * FRAME_DURATION

    def _tick(self) -> None:
        due = self._next_tick()
        # libuv timers have millisecond resolution: a tick may run a hair early, and must
        # still send the frames due at its own instant.
        now = max(self._loop.time(), due)
        late = now - due
        if late > _LATE:
            self.late_ticks += 1
            self._late_max = max(self._late_max, late)
        self._in_tick = True
        try:
            self._run_players(now)
            if self.dtmf_pending:
                self._run_dtmf_timers(now)
            if self.recording:
                self._run_recorders(now)
            if self._tick_index % self._scan_every == 0:
                self._scan_timeouts(now)
                self._reports.run(self._legs.values(), now=now)
        finally:
            self._in_tick = False
            self._busy_max = max(self._busy_max, self._loop.time() - now)
            self._schedule_next()

    def _schedule_next(self) -> None:
        self._tick_handle = None
        if not self._legs:
            return
        late = (self._loop.time() - self._origin) / FRAME_DURATION
        # A tick that ran more than a whole frame late skips the missed instants: the
        # players send their backlog on the next one.
        self._tick_index = max(self._tick_index + 1, int(late) + 1)
        self._tick_handle = self._loop.call_at(self._next_tick(), self._tick)

    def _run_players(self, now: float) -> None:
        finished: list[tuple[Leg, Player]] = []
        for leg in self.playing:
            player = leg.player
            if player is None:
                continue
            leg.send_due(player, now)
            if player.finished:
                finished.append((leg, player))
        for leg, player in finished:
            self.playing.discard(leg)
            if leg.player is player:
                leg.player = None
                self._owner.emit(PlaybackFinished(at=now, leg=leg.name, play_id=leg.play_id))

    def _run_dtmf_timers(self, now: float) -> None:
        for leg in list(self.dtmf_pending):
            if not leg.run_dtmf_timer(now):
                self.dtmf_pending.discard(leg)

    def _run_recorders(self, now: float) -> None:
        for leg in list(self.recording):
            recorder = leg.recorder
            if recorder is not None:
                recorder.handle_timer(now=now)
            if recorder is None or recorder.finished:
                self._owner.recording_done(leg)

    def _scan_timeouts(self, now: float) -> None:
        """RFC 3550 §6.3.5 in spirit: a source silent for too long has left."""
        for leg in list(self._legs.values()):
            if self._legs.get(leg.name) is not leg:
                continue  # closed by call control while it handled an earlier fact
            timeout = leg.timeout
            deadline = None if timeout is None else timeout.get_timer()
            if timeout is None or deadline is None or now < deadline:
                continue
            timeout.handle_timer(now=now)
            fact = timeout.next_event()
            if fact is not None:
                log.warning("leg %s: media timeout, %s", leg.name, fact.reason)
                self._owner.emit(MediaTimedOut(at=now, leg=leg.name, silent_for=fact.silent_for))
