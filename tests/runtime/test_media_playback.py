"""Prompt playback over real sockets: decodable RTP, pacing, markers, looping, errors."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from media_runtime_helpers import HOST, Events, Harness, fields, frames, port_range

from media import g711
from media.g729 import G729Library
from media.wav import read_wav
from routing.media_plane import LegMedia, PlaybackFinished
from server.media import MediaRuntime

PCMU = LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=None)


def media_to(addr: tuple[str, int], codec: str = "PCMU", pt: int = 0) -> LegMedia:
    return LegMedia(codec=codec, payload_type=pt, telephone_event_pt=101, remote=addr)


def rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@pytest.mark.parametrize(("codec", "pt"), [("PCMU", 0), ("PCMA", 8), ("G729", 18)])
async def test_prompt_reaches_the_peer_decodable_and_paced(
    harness: Harness, peers: Callable[[], Any], g729: G729Library | None, codec: str, pt: int
) -> None:
    if codec == "G729" and g729 is None:
        pytest.skip("libbcg729 is not installed")
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("call/caller")
    runtime.configure_leg("call/caller", media_to(peer.addr, codec, pt))
    runtime.play("call/caller", ["tone"], language="it", play_id=7)
    await harness.events.wait_for(bool)
    await asyncio.sleep(0.05)  # let the last datagram land
    assert harness.events.seen == [
        PlaybackFinished(at=harness.events.seen[0].at, leg="call/caller", play_id=7)
    ]
    assert len(peer.packets) == 25  # 0.5 s at 20 ms
    parsed = [fields(data) for _, data, _ in peer.packets]
    assert {p[1] for p in parsed} == {pt}
    assert [p[0] for p in parsed] == [True] + [False] * 24  # marker at talkspurt start
    assert len({p[4] for p in parsed}) == 1
    assert all((b[2] - a[2]) % 65536 == 1 for a, b in itertools.pairwise(parsed))
    assert all((b[3] - a[3]) % 2**32 == 160 for a, b in itertools.pairwise(parsed))
    prompt = read_wav((harness.runtime.prompts._dir / "it" / "tone.wav").read_bytes())
    payload = b"".join(p[5] for p in parsed)
    if codec == "G729":
        assert g729 is not None
        assert all(len(p[5]) == 20 for p in parsed)
        with g729.decoder() as decoder:
            heard = b"".join(decoder.decode(p[5]) for p in parsed)
        # A lossy codec: the 440 Hz tone comes back at about its level.
        assert 0.6 < rms(heard[3200:]) / rms(prompt[3200:]) < 1.4
    else:
        law = g711.PCMU if codec == "PCMU" else g711.PCMA
        assert payload == b"".join(law.encode(f) for f in frames(prompt))
    # Paced: 24 intervals of 20 ms between first and last packet, not a burst.
    elapsed = peer.packets[-1][0] - peer.packets[0][0]
    # (A late first tick shortens it a little: the backlog goes out at once.)
    assert 0.38 <= elapsed <= 0.65


async def test_pacing_catches_up_after_a_stalled_loop(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    """The count follows the clock, not the number of ticks: a 120 ms stall loses nothing."""
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("moh")
    runtime.configure_leg("moh", media_to(peer.addr))
    loop = asyncio.get_running_loop()
    started = loop.time()
    runtime.play("moh", ["tone"], language="it", play_id=1, loop=True)
    await asyncio.sleep(0.2)
    time.sleep(0.12)  # the whole event loop is blocked: several ticks are missed
    await asyncio.sleep(0.3)
    runtime.stop_playback("moh")
    stopped = loop.time()
    await asyncio.sleep(0.05)
    due = math.floor((stopped - started) / 0.020) + 1
    assert abs(len(peer.packets) - due) <= 2
    assert harness.events.seen == []  # stopped, not finished: no PlaybackFinished
    seqs = [fields(d)[2] for _, d, _ in peer.packets]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))


async def test_prompts_play_in_order_in_the_language_asked(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("l")
    runtime.configure_leg("l", media_to(peer.addr))
    runtime.play("l", ["short", "tone"], language="en", play_id=3)
    await harness.events.wait_for(bool)
    await asyncio.sleep(0.05)
    prompts = harness.runtime.prompts._dir / "en"
    expected = [
        g711.PCMU.encode(f)
        for name in ("short", "tone")
        for f in frames(read_wav((prompts / f"{name}.wav").read_bytes()))
    ]
    assert [fields(d)[5] for _, d, _ in peer.packets] == expected


async def test_a_new_prompt_after_silence_starts_a_talkspurt(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("l")
    runtime.configure_leg("l", media_to(peer.addr))
    runtime.play("l", ["short"], language="it", play_id=1)
    await harness.events.wait_for(lambda seen: len(seen) == 1)
    await asyncio.sleep(0.2)
    runtime.play("l", ["short"], language="it", play_id=2)
    await harness.events.wait_for(lambda seen: len(seen) == 2)
    await asyncio.sleep(0.05)
    parsed = [fields(d) for _, d, _ in peer.packets]
    assert [p[0] for p in parsed] == [True, False, False, False, False] * 2
    gap = (parsed[5][3] - parsed[4][3]) % 2**32
    assert gap >= 160 + 8 * 150  # the RTP clock ran on during the pause (RFC 3550 §5.1)
    assert [e.play_id for e in harness.events.of(PlaybackFinished)] == [1, 2]


async def test_replacing_a_prompt_reports_only_the_new_one(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("l")
    runtime.configure_leg("l", media_to(peer.addr))
    runtime.play("l", ["tone"], language="it", play_id=1)
    await asyncio.sleep(0.1)
    runtime.play("l", ["short"], language="it", play_id=2)
    await harness.events.wait_for(bool)
    await asyncio.sleep(0.05)
    assert [e.play_id for e in harness.events.of(PlaybackFinished)] == [2]


@pytest.mark.parametrize("prompts", [["missing"], ["broken"], ["../it/tone"], []])
async def test_unplayable_prompts_finish_at_once(
    harness: Harness, peers: Callable[[], Any], prompts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("l")
    runtime.configure_leg("l", media_to(peer.addr))
    runtime.play("l", prompts, language="it", play_id=9)
    await harness.events.wait_for(bool, timeout=0.5)
    assert [e.play_id for e in harness.events.of(PlaybackFinished)] == [9]
    assert peer.packets == []
    if prompts:
        assert any(r.levelname == "ERROR" for r in caplog.records)


async def test_looping_an_unknown_prompt_finishes_instead_of_raising(harness: Harness) -> None:
    harness.runtime.open_leg("l")
    harness.runtime.configure_leg("l", PCMU)
    harness.runtime.play("l", ["missing"], language="xx", play_id=4, loop=True)
    await harness.events.wait_for(bool, timeout=0.5)
    assert harness.events.of(PlaybackFinished)[0].play_id == 4


async def test_on_hold_nothing_is_sent_and_the_prompt_still_ends(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    runtime.open_leg("l")
    runtime.configure_leg(
        "l",
        LegMedia(
            codec="PCMU", payload_type=0, telephone_event_pt=None, remote=("0.0.0.0", peer.addr[1])
        ),
    )
    runtime.play("l", ["short"], language="it", play_id=5)
    await harness.events.wait_for(bool, timeout=1.0)
    await asyncio.sleep(0.05)
    assert peer.packets == []


async def test_without_libbcg729_a_g729_leg_finishes_its_prompt_at_once(
    tmp_path: Path, prompts_dir: Path, peers: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    low, high = port_range()
    runtime = MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=prompts_dir, data_dir=tmp_path, media_timeout=30.0, g729=None,
        on_event=events,
    )  # fmt: skip
    peer = await peers()
    try:
        runtime.open_leg("trunk")
        runtime.configure_leg("trunk", media_to(peer.addr, "G729", 18))
        runtime.play("trunk", ["tone"], language="it", play_id=5)
        await events.wait_for(bool, timeout=0.5)
        assert [e.play_id for e in events.of(PlaybackFinished)] == [5]
        assert peer.packets == []
        assert any("G729" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    finally:
        runtime.close()
