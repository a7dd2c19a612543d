"""The media runtime: RTP sockets, one 20 ms media tick, prompts, bridging and recording.

`MediaRuntime` implements `routing.media_plane.MediaPlane` over the pure media core:
RtpSender/RtpReceiver (RFC 3550), Player (absolute pacing), Relay/Bridge (RFC 3550 §7
translator), TelephoneEventReceiver (RFC 4733), DtmfDetector, Recorder, MediaTimeout.
This module manages the legs: opening and closing them, their codecs, bridges, and
starting and stopping playback and recording.

Pacing (server/media_tick.py): ONE `loop.call_at` drives every leg, on an absolute grid
`origin + k * 20 ms` (never summed sleeps). A player starts on the grid and hands out the
frames due by the tick's instant, so each playing leg sends one packet per tick, and a
late tick sends the backlog at once: after ten minutes every stream has sent 30,000
packets, give or take one. The same tick runs the RFC 4733 end timers, the recorders'
wall-clock bound, and (every second or so) the media-timeout scan and the RTCP reports
(server/media_rtcp.py).

Receiving (server/media_leg.py): one datagram per readiness callback, validated by
RtpReceiver; symmetric RTP latches on the peer's real source once, after a short
in-sequence probation for a source the SDP did not name; then relay, telephone-events,
in-band DTMF and recording branch off on the payload type.

Facts go to `on_event` (DigitDetected, PlaybackFinished, MediaTimedOut,
RecordingFinished). A command never calls `on_event` from inside itself, so call control
is never re-entered; a failing handler is logged and never stops the tick. Every command
on an unknown or closed leg is logged and ignored; only `open_leg` raises, with
`MediaPortsExhaustedError`, when the port range is full.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from media import g711
from media.bridge import Bridge, PcmCodec
from media.g729 import G729Library
from media.player import Player
from media.recorder import Recorder
from routing.media_plane import Addr, LegMedia, MediaEvent, PlaybackFinished
from server.media_leg import Leg
from server.media_ports import MediaPortsExhaustedError, PortPool
from server.media_prompts import PromptLibrary
from server.media_recording import RecordingWriter
from server.media_tick import MediaTick

__all__ = ["MediaPortsExhaustedError", "MediaRuntime"]

log = logging.getLogger(__name__)

_MAX_RECORDING = 3600.0  # seconds; also keeps NaN and infinity out of the recorder


class MediaRuntime:
    """All RTP legs of the process, driven by one event loop (uvloop in production)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        host: str,
        port_min: int,
        port_max: int,
        prompts_dir: Path,
        data_dir: Path,
        media_timeout: float,
        g729: G729Library | None,
        on_event: Callable[[MediaEvent], None],
        random_bits: Callable[[int], int] = secrets.randbits,
        rtcp_interval: float = 5.0,
    ) -> None:
        if media_timeout <= 0 or rtcp_interval <= 0:
            raise ValueError("media_timeout and rtcp_interval must be positive")
        self._loop = loop
        self._pool = PortPool(host=host, port_min=port_min, port_max=port_max)
        self.prompts = PromptLibrary(prompts_dir, g729=g729)
        self._recordings = RecordingWriter(loop, data_dir / "voicemail", emit=self.emit)
        self._g729 = g729
        self._media_timeout = media_timeout
        self._on_event = on_event
        self._random_bits = random_bits
        self._legs: dict[str, Leg] = {}
        self._tick = MediaTick(
            loop, legs=self._legs, owner=self, media_timeout=media_timeout,
            rtcp_interval=rtcp_interval, random_bits=random_bits,
        )  # fmt: skip
        self._preload_stop = threading.Event()
        self._preloader: ThreadPoolExecutor | None = None

    # --- MediaPlane commands -------------------------------------------------------------

    def open_leg(self, leg: str) -> Addr:
        """Bind an even RTP port and RTCP on +1 (RFC 3550 §11); an open leg keeps its pair."""
        existing = self._legs.get(leg)
        if existing is not None:
            return (self._pool.host, existing.pair.port)
        pair = self._pool.acquire()
        state = Leg(
            leg, pair, owner=self, clock=self._loop.time, random_bits=self._random_bits,
            media_timeout=self._media_timeout,
        )  # fmt: skip
        self._loop.add_reader(pair.rtp, state.on_rtp_readable)
        self._loop.add_reader(pair.rtcp, state.on_rtcp_readable)
        self._legs[leg] = state
        self._tick.start()
        return (self._pool.host, pair.port)

    def configure_leg(self, leg: str, media: LegMedia) -> None:
        """Set or change (re-INVITE) the codec and peer; a bridge follows the change."""
        state = self._find(leg, "configure")
        if state is None:
            return
        state.configure(media, self._codec_for(state, media.codec), now=self._loop.time())
        partner = state.partner
        if partner is not None:
            self._unlink(state)
            self._link(state, partner)

    def play(
        self, leg: str, prompts: Sequence[str], *, language: str, play_id: int, loop: bool = False
    ) -> None:
        """Play prompts in order, replacing what plays; music on hold is `loop=True`."""
        state = self._find(leg, "play")
        if state is None:
            return
        self._stop_player(state)
        frames = None
        if state.media is None or state.partner is not None:
            log.error("leg %s: cannot play while %s", leg, "bridged" if state.media else "unset")
        else:
            codec = state.media.codec.upper()
            frames = self.prompts.frames(prompts, language=language, codec=codec)
        if frames is None or (loop and not frames):
            event = PlaybackFinished(at=self._loop.time(), leg=leg, play_id=play_id)
            self._loop.call_soon(self.emit, event)
            return
        state.start_playback(Player(frames, start=self._tick.play_start(), loop=loop), play_id)
        self._tick.playing.add(state)

    def stop_playback(self, leg: str) -> None:
        """Barge-in or answer: silence at once, and no PlaybackFinished."""
        state = self._find(leg, "stop playback")
        if state is not None:
            self._stop_player(state)

    def bridge(self, leg_a: str, leg_b: str) -> None:
        """Relay both ways (RFC 3550 §7 translator), transcoding when the codecs differ."""
        a, b = self._find(leg_a, "bridge"), self._find(leg_b, "bridge")
        if a is None or b is None or a is b:
            return
        if a.media is None or b.media is None:
            log.error("cannot bridge %s and %s: a leg has no negotiated media", leg_a, leg_b)
            return
        for state in (a, b):
            self._unlink(state)
            self._stop_player(state)
        self._link(a, b)

    def unbridge(self, leg: str) -> None:
        state = self._find(leg, "unbridge")
        if state is not None:
            self._unlink(state)

    def record(self, leg: str, *, name: str, max_seconds: float) -> None:
        """Record the peer's audio to `<data>/voicemail/<name>.wav`; ends on silence,
        max length or close, then RecordingFinished follows once the file is durable."""
        state = self._find(leg, "record")
        if state is None:
            return
        if not 0 < max_seconds < _MAX_RECORDING:
            log.error("leg %s: recording length %r is out of range", leg, max_seconds)
            return
        now = self._loop.time()
        if state.recorder is not None:
            state.recorder.stop(now=now)
            self.recording_done(state)
        state.start_recording(Recorder(now=now, max_duration=max_seconds), name)
        self._tick.recording.add(state)

    def close_leg(self, leg: str) -> None:
        """Stop everything, finish a recording, close both sockets and free the ports."""
        state = self._legs.pop(leg, None)
        if state is None:
            return
        self._stop_player(state)
        self._unlink(state)
        if state.recorder is not None:
            state.recorder.hang_up(now=self._loop.time())
            self.recording_done(state)
        self._tick.dtmf_pending.discard(state)
        self._loop.remove_reader(state.pair.rtp)
        self._loop.remove_reader(state.pair.rtcp)
        state.close_codecs()
        self._pool.release(state.pair)

    # --- lifecycle and introspection -----------------------------------------------------

    def close(self) -> None:
        """Close every leg (shutdown) and stop preloading at the next prompt."""
        self._preload_stop.set()
        if self._preloader is not None:
            self._preloader.shutdown(wait=False, cancel_futures=True)
        for leg in list(self._legs):
            self.close_leg(leg)
        self._tick.stop()

    def start_preload(
        self, prompt_ids: Sequence[str] | None = None, languages: Sequence[str] | None = None
    ) -> asyncio.Future[int]:
        """Encode the catalogue's prompts for every codec in one worker thread, so that no
        first play of a prompt stalls the loop (G.729 costs 20-77 ms per prompt).

        Returns at once; the future gives the count of (prompt, language, codec) encoded.
        None means every `<prompts>/<language>/<id>.wav` on disk. A play before the worker
        reaches its prompt encodes it on the loop as before. Prompts made at run time
        (notices, `prompts.resolve`) are left out: they are looked up on the loop only.
        """
        found_ids, found_languages = self.prompts.catalogue(languages)
        ids = list(prompt_ids) if prompt_ids is not None else found_ids
        ids = [p for p in ids if p not in self.prompts.runtime_made(ids, found_languages)]
        if self._preloader is None:
            self._preloader = ThreadPoolExecutor(1, thread_name_prefix="prompt-preload")
        return self._loop.run_in_executor(self._preloader, self._preload, ids, found_languages)

    def _preload(self, prompt_ids: list[str], languages: list[str]) -> int:
        try:
            loaded = self.prompts.preload(prompt_ids, languages, stopped=self._preload_stop.is_set)
        except Exception:  # the worker must not die unheard; plays still encode their own
            log.exception("preloading prompts failed")
            return 0
        log.info("%d prompt encodings preloaded", loaded)
        return loaded

    async def wait_recordings(self) -> None:
        """Wait until every recording being written is on disk."""
        await self._recordings.wait()

    def stats(self) -> dict[str, int]:
        """Counters for telemetry; the two maxima (late, longest tick) restart at each call."""
        legs = self._legs.values()
        late_max, busy_max = self._tick.take_maxima()
        return {
            "legs": len(self._legs),
            "playing": len(self._tick.playing),
            "bridged": sum(leg.partner is not None for leg in legs),
            "recording": len(self._tick.recording),
            "free_port_pairs": self._pool.available,
            "send_errors": sum(leg.send_errors for leg in legs),
            "rtcp_packets": sum(leg.rtcp_packets for leg in legs),
            "late_ticks": self._tick.late_ticks,
            "tick_max_us": round(1e6 * busy_max),
            "late_max_us": round(1e6 * late_max),
        }

    # --- LegOwner ------------------------------------------------------------------------

    def emit(self, event: MediaEvent) -> None:
        """Hand a fact to call control; its failure must not stop every other call's media."""
        try:
            self._on_event(event)
        except Exception:
            log.exception("media event handler failed on %s", type(event).__name__)

    def dtmf_pending(self, leg: Leg) -> None:
        self._tick.dtmf_pending.add(leg)

    def recording_done(self, leg: Leg) -> None:
        recorder = leg.take_recording()
        self._tick.recording.discard(leg)
        finished = None if recorder is None else recorder.next_event()
        if finished is not None:
            self._recordings.write(leg.name, leg.recording_name, finished)

    # --- internals -----------------------------------------------------------------------

    def _find(self, leg: str, action: str) -> Leg | None:
        state = self._legs.get(leg)
        if state is None:
            log.warning("%s: no open media leg %r", action, leg)
        return state

    def _codec_for(self, leg: Leg, name: str) -> PcmCodec | None:
        upper = name.upper()
        if upper in ("PCMU", "PCMA"):
            return g711.PCMU if upper == "PCMU" else g711.PCMA
        if upper == "G729" and self._g729 is not None:
            if leg.own_g729 is None:
                leg.own_g729 = self._g729.codec()
            return leg.own_g729
        log.error("leg %s: codec %s is not available", leg.name, name)
        return None

    def _link(self, a: Leg, b: Leg) -> None:
        assert a.media is not None and b.media is not None
        try:
            bridge = Bridge(a=a.format(), b=b.format(), sender_a=a.sender, sender_b=b.sender)
        except ValueError as exc:
            log.error("cannot bridge %s and %s: %s", a.name, b.name, exc)
            return
        a.relay, a.partner = bridge.a_to_b, b
        b.relay, b.partner = bridge.b_to_a, a

    def _unlink(self, leg: Leg) -> None:
        """End both relays of a bridge: each sender takes its numbering back."""
        partner = leg.partner
        if partner is None:
            return
        now = self._loop.time()
        for state in (leg, partner):
            if state.relay is not None:
                state.relay.detach()
            state.relay, state.partner = None, None
            state.last_sent_at = now

    def _stop_player(self, leg: Leg) -> None:
        if leg.player is not None:
            leg.player.stop(now=self._loop.time())
            leg.player = None
        self._tick.playing.discard(leg)
