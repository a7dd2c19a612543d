"""Port pairs and file descriptors: even RTP, RTCP on +1, skip busy pairs, release all."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from pathlib import Path

import pytest
from media_runtime_helpers import HOST, Events, Harness, port_range

from routing.media_plane import LegMedia
from server.media import MediaPortsExhaustedError, MediaRuntime


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def runtime_for(tmp_path: Path, events: Events, low: int, high: int) -> MediaRuntime:
    return MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=tmp_path, data_dir=tmp_path, media_timeout=60.0, g729=None,
        on_event=events,
    )  # fmt: skip


def bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


async def test_a_thousand_legs_leave_the_fd_count_flat(tmp_path: Path) -> None:
    events = Events()
    # Above the ephemeral range (32768-60999): no peer socket of ours sits in it.
    runtime = runtime_for(tmp_path, events, 61000, 61000 + 2 * 1100)
    media = LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=(HOST, 9))
    gc.collect()  # sockets that earlier tests left to the collector close now, not mid-count
    before = open_fds()
    ports = []
    for index in range(1000):
        _host, port = runtime.open_leg(f"call-{index}/caller")
        runtime.configure_leg(f"call-{index}/caller", media)
        ports.append(port)
    assert open_fds() == before + 2000  # RTP and RTCP sockets of every leg
    assert all(port % 2 == 0 for port in ports) and len(set(ports)) == 1000
    assert bound(ports[0]) and bound(ports[0] + 1)
    await asyncio.sleep(0.05)  # a few ticks with every leg open
    for index in range(1000):
        runtime.close_leg(f"call-{index}/caller")
    assert open_fds() == before
    assert not bound(ports[0]) and not bound(ports[0] + 1)
    assert events.seen == []
    runtime.close()


async def test_a_busy_pair_is_skipped(tmp_path: Path) -> None:
    low, high = port_range(3)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((HOST, low + 1))  # another process holds the first pair's RTCP port
    try:
        runtime = runtime_for(tmp_path, Events(), low, high)
        assert runtime.open_leg("a") == (HOST, low + 2)
        assert runtime.open_leg("b") == (HOST, low + 4)
        with pytest.raises(MediaPortsExhaustedError):
            runtime.open_leg("c")
        runtime.close_leg("a")
        assert runtime.open_leg("c") == (HOST, low + 2)
        runtime.close()
    finally:
        taken.close()


async def test_a_released_pair_goes_to_the_back_of_the_queue(tmp_path: Path) -> None:
    low, high = port_range(3)
    runtime = runtime_for(tmp_path, Events(), low, high)
    first = runtime.open_leg("a")
    runtime.close_leg("a")
    assert runtime.open_leg("b") != first
    assert runtime.open_leg("a") == runtime.open_leg("a")  # an open leg keeps its pair
    runtime.close()


def test_a_range_without_a_pair_is_refused(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="port range"):
            MediaRuntime(
                loop, host=HOST, port_min=5001, port_max=5002, prompts_dir=tmp_path,
                data_dir=tmp_path, media_timeout=1.0, g729=None, on_event=Events(),
            )  # fmt: skip
    finally:
        loop.close()


async def test_commands_in_any_order_never_raise(harness: Harness) -> None:
    runtime = harness.runtime
    media = LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=(HOST, 9))
    runtime.close_leg("nobody")
    runtime.configure_leg("nobody", media)
    runtime.play("nobody", ["tone"], language="it", play_id=1)
    runtime.stop_playback("nobody")
    runtime.bridge("nobody", "nobody-else")
    runtime.unbridge("nobody")
    runtime.record("nobody", name="x", max_seconds=1)
    runtime.open_leg("a")
    runtime.open_leg("b")
    runtime.bridge("a", "b")  # no media negotiated yet
    runtime.bridge("a", "a")
    runtime.unbridge("a")
    runtime.stop_playback("a")
    runtime.play("a", ["tone"], language="it", play_id=2)  # no codec yet: finishes at once
    runtime.record("a", name="y", max_seconds=0)
    runtime.record("a", name="y", max_seconds=float("nan"))
    runtime.record("a", name="y", max_seconds=float("inf"))
    runtime.configure_leg(
        "a", LegMedia(codec="opus", payload_type=111, telephone_event_pt=None, remote=None)
    )
    runtime.play("a", ["tone"], language="it", play_id=3)  # no codec we know
    runtime.configure_leg("b", media)
    runtime.bridge("a", "b")  # refused: cannot transcode opus
    runtime.close_leg("a")
    runtime.close_leg("a")
    await harness.events.wait_for(lambda seen: len(seen) >= 2, timeout=1.0)
    assert sorted(e.play_id for e in harness.events.seen) == [2, 3]  # type: ignore[union-attr]
    assert runtime.stats()["legs"] == 1


async def test_a_failing_event_handler_does_not_stop_the_tick(tmp_path: Path) -> None:
    calls: list[object] = []

    def handler(event: object) -> None:
        calls.append(event)
        raise RuntimeError("call control bug")

    low, high = port_range(4)
    runtime = MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=tmp_path, data_dir=tmp_path, media_timeout=0.1, g729=None,
        on_event=handler,
    )  # fmt: skip
    media = LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=None)
    for leg in ("a", "b"):
        runtime.open_leg(leg)
        runtime.configure_leg(leg, media)

    async def both() -> None:
        while len(calls) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(both(), 2.0)
    runtime.close()
