"""Media timing over real sockets: a prompt switch inside the tick, and preloading prompts.

A prompt that IVR logic starts from PlaybackFinished runs inside the media tick: its first
frame must go out on the next instant of the 20 ms grid, never on the instant just served.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from media_runtime_helpers import Harness, fields

from media.g729 import G729Library
from media.player import FRAME_DURATION
from routing.media_plane import LegMedia, MediaEvent, PlaybackFinished
from server.media import MediaRuntime

LEG = "call/caller"


class SendLog:
    """Wraps a leg's RTP socket: the grid instant (tick) each packet was sent for."""

    def __init__(self, runtime: MediaRuntime, sock: Any) -> None:
        self.runtime, self.sock = runtime, sock
        self.instants: list[float] = []

    def sendto(self, data: bytes, addr: Any) -> int:
        self.instants.append(self.runtime._tick._next_tick())
        return int(self.sock.sendto(data, addr))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def chain_prompts(runtime: MediaRuntime, record: Callable[[MediaEvent], None]) -> None:
    """As the IVR does: the end of `tone` (welcome) starts `short` (menu) at once."""

    def on_event(event: MediaEvent) -> None:
        record(event)
        if isinstance(event, PlaybackFinished) and event.play_id == 1:
            runtime.play(LEG, ["short"], language="it", play_id=2)

    runtime._on_event = on_event


async def test_prompt_switch_inside_the_tick_keeps_the_grid_and_rtp_clock(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    runtime, events = harness.runtime, harness.events
    peer = await peers()
    runtime.open_leg(LEG)
    remote = peer.addr
    runtime.configure_leg(
        LEG, LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=remote)
    )
    leg = runtime._legs[LEG]
    log = SendLog(runtime, leg.sock)
    leg.sock = log  # type: ignore[assignment]
    chain_prompts(runtime, events)
    runtime.play(LEG, ["tone"], language="it", play_id=1)
    first = leg.player
    assert first is not None
    await events.wait_for(lambda seen: len(seen) == 2)
    await peer.wait_count(30)  # 25 frames of `tone`, then 5 of `short`
    # On the grid: frame n of the whole stream leaves on the tick of start + n * 20 ms,
    # or later when a tick ran late, never earlier (the bug sent it one tick early).
    start = first.start
    sent_by: Counter[float] = Counter(log.instants)
    total = 0
    for instant in sorted(sent_by):
        total += sent_by[instant]
        due = math.floor((instant - start) / FRAME_DURATION + 1e-6) + 1
        assert total == min(due, 30), f"{total} packets by {instant - start:.3f} s"
    parsed = [fields(data) for _, data, _ in peer.packets]
    assert [p[0] for p in parsed] == [True] + [False] * 29  # one talkspurt
    assert all((b[2] - a[2]) % 65536 == 1 for a, b in itertools.pairwise(parsed))
    assert all((b[3] - a[3]) % 2**32 == 160 for a, b in itertools.pairwise(parsed))


async def test_prompt_switch_starts_on_the_next_instant(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    """The second player's schedule continues the first's exactly (no overlap, no gap)."""
    runtime, events = harness.runtime, harness.events
    peer = await peers()
    runtime.open_leg(LEG)
    runtime.configure_leg(
        LEG, LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=peer.addr)
    )
    starts: list[float] = []

    def on_event(event: MediaEvent) -> None:
        events(event)
        if isinstance(event, PlaybackFinished) and event.play_id == 1:
            runtime.play(LEG, ["short"], language="it", play_id=2)
            player = runtime._legs[LEG].player
            assert player is not None
            starts.append(player.start)

    runtime._on_event = on_event
    runtime.play(LEG, ["tone"], language="it", play_id=1)
    player = runtime._legs[LEG].player
    assert player is not None
    first_start = player.start
    await events.wait_for(lambda seen: len(seen) == 2)
    assert starts == [pytest.approx(first_start + 25 * FRAME_DURATION, abs=1e-9)]


# --- preload -------------------------------------------------------------------------------


def codecs(g729: G729Library | None) -> tuple[str, ...]:
    return ("PCMU", "PCMA", "G729") if g729 is not None else ("PCMU", "PCMA")


async def test_preload_encodes_every_prompt_off_the_loop(
    harness: Harness, g729: G729Library | None
) -> None:
    runtime = harness.runtime
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    original = runtime.prompts._encode

    def spy(pcm: tuple[bytes, ...], codec: str) -> tuple[bytes, ...] | None:
        threads.add(threading.get_ident())
        return original(pcm, codec)

    runtime.prompts._encode = spy  # type: ignore[method-assign]
    loaded = await asyncio.wait_for(runtime.start_preload(["tone", "short"], ["it", "en"]), 10)
    assert loaded == 2 * 2 * len(codecs(g729))
    assert threads and loop_thread not in threads
    for prompt, language, codec in itertools.product(["tone", "short"], ["it", "en"], codecs(g729)):
        assert (prompt, language, codec) in runtime.prompts._encoded
    # Playing afterwards costs no codec work on the loop.
    threads.clear()
    runtime.open_leg(LEG)
    runtime.configure_leg(
        LEG, LegMedia(codec="PCMA", payload_type=8, telephone_event_pt=101, remote=None)
    )
    runtime.play(LEG, ["tone"], language="en", play_id=1)
    assert not threads


async def test_preload_of_everything_on_disk_skips_broken_files(harness: Harness) -> None:
    loaded = await asyncio.wait_for(harness.runtime.start_preload(), 10)
    encoded = harness.runtime.prompts._encoded
    assert {key[:2] for key in encoded} == {
        (p, lang) for p in ("tone", "short") for lang in ("it", "en")
    }
    assert loaded == len(encoded)


async def test_play_while_preload_runs_still_plays(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    """The loop never waits for the worker: a play before preload ends encodes its own."""
    runtime, events = harness.runtime, harness.events
    peer = await peers()
    gate = threading.Event()
    original = runtime.prompts._encode

    def slow(pcm: tuple[bytes, ...], codec: str) -> tuple[bytes, ...] | None:
        if threading.current_thread() is not threading.main_thread():
            gate.wait(5)  # the worker is held until the prompt has played
        return original(pcm, codec)

    runtime.prompts._encode = slow  # type: ignore[method-assign]
    preload = runtime.start_preload(["tone"], ["it"])
    runtime.open_leg(LEG)
    runtime.configure_leg(
        LEG, LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=peer.addr)
    )
    runtime.play(LEG, ["tone"], language="it", play_id=3)
    await events.wait_for(bool)
    assert events.of(PlaybackFinished)[0].play_id == 3
    await peer.wait_count(25)
    assert not preload.done()
    played = runtime.prompts._encoded[("tone", "it", "PCMU")]
    gate.set()
    await asyncio.wait_for(preload, 10)
    # The first published frames stay: the worker does not replace what plays.
    assert runtime.prompts._encoded[("tone", "it", "PCMU")] is played


async def test_close_stops_a_running_preload(harness: Harness) -> None:
    runtime = harness.runtime
    gate = threading.Event()
    original = runtime.prompts._encode

    def held(pcm: tuple[bytes, ...], codec: str) -> tuple[bytes, ...] | None:
        gate.wait(5)
        return original(pcm, codec)

    runtime.prompts._encode = held  # type: ignore[method-assign]
    preload = runtime.start_preload(["tone", "short"], ["it", "en"])
    runtime.close()
    gate.set()
    loaded = await asyncio.wait_for(preload, 10)
    assert loaded < 2 * 2 * 2
