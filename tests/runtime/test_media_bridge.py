"""Two legs bridged over real sockets: pass-through, transcoding, DTMF re-mapping."""

from __future__ import annotations

import asyncio
import itertools
import math
from array import array
from collections.abc import Callable
from typing import Any

import pytest
from media_runtime_helpers import Harness, Peer, fields, frames, rtp, tone

from media import g711
from media.g729 import G729Library
from media.telephone_event import plan_digit
from routing.media_plane import DigitDetected, LegMedia, PlaybackFinished

SPEECH = tone(500, 0.4)


def leg_media(addr: tuple[str, int], codec: str, pt: int, event_pt: int | None) -> LegMedia:
    return LegMedia(codec=codec, payload_type=pt, telephone_event_pt=event_pt, remote=addr)


def rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


async def bridged(
    harness: Harness,
    peers: Callable[[], Any],
    a: tuple[str, int, int | None],
    b: tuple[str, int, int | None],
) -> tuple[Peer, Peer, tuple[str, int], tuple[str, int]]:
    runtime = harness.runtime
    peer_a, peer_b = await peers(), await peers()
    addr_a, addr_b = runtime.open_leg("c/caller"), runtime.open_leg("c/op")
    runtime.configure_leg("c/caller", leg_media(peer_a.addr, *a))
    runtime.configure_leg("c/op", leg_media(peer_b.addr, *b))
    runtime.bridge("c/caller", "c/op")
    return peer_a, peer_b, addr_a, addr_b


async def send_audio(
    peer: Peer, to: tuple[str, int], payloads: list[bytes], pt: int, ssrc: int
) -> None:
    for seq, payload in enumerate(payloads):
        peer.send(rtp(pt, 1000 + seq, 5000 + 160 * seq, ssrc, payload, marker=seq == 0), to)
        await asyncio.sleep(0.002)


async def test_same_codec_passes_through_both_ways_with_our_numbering(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer_a, peer_b, addr_a, addr_b = await bridged(
        harness, peers, ("PCMU", 0, 101), ("PCMU", 0, 96)
    )
    payloads = [g711.PCMU.encode(f) for f in frames(SPEECH)]
    await send_audio(peer_a, addr_a, payloads, 0, 0xA)
    await send_audio(peer_b, addr_b, payloads[:5], 0, 0xB)
    await peer_b.wait_count(20)
    await peer_a.wait_count(5)
    at_b = [fields(d) for _, d, _ in peer_b.packets]
    assert [p[5] for p in at_b] == payloads  # untouched payload
    assert {p[4] for p in at_b} != {0xA}  # our SSRC, not the caller's (RFC 3550 §7.1)
    assert len({p[4] for p in at_b}) == 1
    assert all((q[2] - p[2]) % 65536 == 1 for p, q in itertools.pairwise(at_b))
    assert all((q[3] - p[3]) % 2**32 == 160 for p, q in itertools.pairwise(at_b))
    assert [p[5] for _, d, _ in peer_a.packets for p in [fields(d)]] == payloads[:5]


async def test_telephone_events_cross_on_the_other_legs_payload_type(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer_a, peer_b, addr_a, _ = await bridged(harness, peers, ("PCMU", 0, 101), ("PCMA", 8, 96))
    packets = plan_digit("4", duration_ms=80, timestamp=777)
    for seq, packet in enumerate(packets):
        peer_a.send(
            rtp(101, seq, packet.timestamp, 0xA, packet.payload, marker=packet.marker), addr_a
        )
    await peer_b.wait_count(len(packets))
    at_b = [fields(d) for _, d, _ in peer_b.packets]
    assert {p[1] for p in at_b} == {96}
    assert [p[5] for p in at_b] == [p.payload for p in packets]
    assert len({p[3] for p in at_b}) == 1  # one event, one timestamp (RFC 4733 §2.3.1)
    await harness.events.wait_for(bool)
    assert [d.digit for d in harness.events.of(DigitDetected)] == ["4"]


async def test_pcmu_to_pcma_is_transcoded_both_ways(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer_a, peer_b, addr_a, addr_b = await bridged(
        harness, peers, ("PCMU", 0, None), ("PCMA", 8, None)
    )
    pcm = list(frames(SPEECH))
    await send_audio(peer_a, addr_a, [g711.PCMU.encode(f) for f in pcm], 0, 0xA)
    await send_audio(peer_b, addr_b, [g711.PCMA.encode(f) for f in pcm], 8, 0xB)
    await peer_b.wait_count(20)
    await peer_a.wait_count(20)
    at_b = [fields(d) for _, d, _ in peer_b.packets]
    at_a = [fields(d) for _, d, _ in peer_a.packets]
    assert {p[1] for p in at_b} == {8} and {p[1] for p in at_a} == {0}
    heard_b = b"".join(g711.PCMA.decode(p[5]) for p in at_b)
    heard_a = b"".join(g711.PCMU.decode(p[5]) for p in at_a)
    original = b"".join(pcm)
    for heard in (heard_a, heard_b):
        error = [x - y for x, y in zip(array("h", heard), array("h", original), strict=True)]
        assert max(abs(e) for e in error) < 600  # two companding steps at 8000 peak


async def test_pcmu_to_g729_is_transcoded_both_ways(
    harness: Harness, peers: Callable[[], Any], g729: G729Library | None
) -> None:
    if g729 is None:
        pytest.skip("libbcg729 is not installed")
    peer_a, peer_b, addr_a, addr_b = await bridged(
        harness, peers, ("PCMU", 0, 101), ("G729", 18, None)
    )
    pcm = list(frames(SPEECH))
    await send_audio(peer_a, addr_a, [g711.PCMU.encode(f) for f in pcm], 0, 0xA)
    with g729.encoder() as encoder:
        coded = [encoder.encode(f) for f in pcm]
    await send_audio(peer_b, addr_b, coded, 18, 0xB)
    await peer_b.wait_count(20)
    await peer_a.wait_count(20)
    at_b = [fields(d) for _, d, _ in peer_b.packets]
    at_a = [fields(d) for _, d, _ in peer_a.packets]
    assert {p[1] for p in at_b} == {18} and all(len(p[5]) == 20 for p in at_b)
    assert {p[1] for p in at_a} == {0} and all(len(p[5]) == 160 for p in at_a)
    with g729.decoder() as decoder:
        heard_b = b"".join(decoder.decode(p[5]) for p in at_b)
    heard_a = b"".join(g711.PCMU.decode(p[5]) for p in at_a)
    level = rms(SPEECH[3200:])
    assert 0.6 < rms(heard_b[3200:]) / level < 1.4
    assert 0.6 < rms(heard_a[3200:]) / level < 1.4


async def test_bridging_stops_playback_and_unbridging_continues_the_stream(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    runtime = harness.runtime
    caller, operator = await peers(), await peers()
    addr_op = runtime.open_leg("c/op")
    runtime.open_leg("c/caller")
    runtime.configure_leg("c/caller", leg_media(caller.addr, "PCMU", 0, 101))
    runtime.configure_leg("c/op", leg_media(operator.addr, "PCMU", 0, 101))
    runtime.play("c/caller", ["tone"], language="it", play_id=1, loop=True)
    await caller.wait_count(3)
    runtime.bridge("c/caller", "c/op")
    await asyncio.sleep(0.06)
    played = len(caller.packets)
    await send_audio(operator, addr_op, [bytes(160)] * 5, 0, 0xB)
    await caller.wait_count(played + 5)
    runtime.play("c/caller", ["short"], language="it", play_id=2)  # refused while bridged
    runtime.unbridge("c/op")
    runtime.play("c/caller", ["short"], language="it", play_id=3)
    await harness.events.wait_for(lambda seen: len(seen) >= 2)
    await asyncio.sleep(0.05)
    assert [e.play_id for e in harness.events.of(PlaybackFinished)] == [2, 3]
    parsed = [fields(d) for _, d, _ in caller.packets]
    assert len(parsed) == played + 5 + 5
    assert len({p[4] for p in parsed}) == 1  # one SSRC through prompt, bridge, prompt
    seqs = [p[2] for p in parsed]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    assert parsed[played][0] and parsed[played + 5][0]  # each talkspurt marked


async def test_closing_one_leg_ends_the_bridge_and_the_other_leg_lives(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer_a, peer_b, addr_a, _ = await bridged(harness, peers, ("PCMU", 0, None), ("PCMU", 0, None))
    harness.runtime.close_leg("c/op")
    await send_audio(peer_a, addr_a, [bytes(160)] * 3, 0, 0xA)
    harness.runtime.play("c/caller", ["short"], language="it", play_id=1)
    await harness.events.wait_for(bool)
    await asyncio.sleep(0.05)
    assert peer_b.packets == [] and len(peer_a.packets) == 5
    assert harness.runtime.stats()["bridged"] == 0


async def test_a_reinvite_to_another_codec_rebuilds_the_bridge(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer_a, peer_b, addr_a, _ = await bridged(harness, peers, ("PCMU", 0, None), ("PCMU", 0, None))
    harness.runtime.configure_leg("c/op", leg_media(peer_b.addr, "PCMA", 8, None))
    await send_audio(peer_a, addr_a, [g711.PCMU.encode(f) for f in frames(SPEECH)][:5], 0, 0xA)
    await peer_b.wait_count(5)
    assert {fields(d)[1] for _, d, _ in peer_b.packets} == {8}
