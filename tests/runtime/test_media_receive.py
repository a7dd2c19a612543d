"""The receive path over real sockets: RFC 4733 and in-band digits, latching, RTCP,
garbage, media timeout."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from media_runtime_helpers import (
    HOST,
    Events,
    Harness,
    Peer,
    dual_tone,
    fields,
    frames,
    port_range,
    rtp,
)

from media import g711
from media.pcap import read_udp_file
from media.rtcp import build_receiver_report
from media.telephone_event import plan_digit
from routing.media_plane import DigitDetected, LegMedia, MediaTimedOut
from server.media import MediaRuntime

ASTERISK_PCAP = (
    Path(__file__).resolve().parents[3]
    / "shared/corpus/pcap/asterisk_ulaw-2013785496_rtp_rfc2833.pcap"
)


def ulaw_to(
    addr: tuple[str, int] | None, *, event_pt: int | None = 101, inband: bool = False
) -> LegMedia:
    return LegMedia(
        codec="PCMU", payload_type=0, telephone_event_pt=event_pt, remote=addr, inband_dtmf=inband
    )


async def replay(peer: Peer, datagrams: list[bytes], addr: tuple[str, int]) -> None:
    """Faster than real time, but in chunks the socket buffers can take."""
    for start in range(0, len(datagrams), 40):
        for data in datagrams[start : start + 40]:
            peer.send(data, addr)
        await asyncio.sleep(0.002)


async def test_rfc4733_digits_of_the_asterisk_capture(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("trunk")
    runtime.configure_leg("trunk", ulaw_to(peer.addr))
    datagrams = [d.payload for d in read_udp_file(ASTERISK_PCAP)]
    assert sum(1 for d in datagrams if d[1] & 0x7F == 101) == 120
    await replay(peer, datagrams, addr)
    await harness.events.wait_for(lambda seen: len(seen) >= 10)
    await asyncio.sleep(0.1)  # nothing more may follow (retransmitted ends count once)
    digits = harness.events.of(DigitDetected)
    assert "".join(d.digit for d in digits) == "2013785496"
    assert {d.leg for d in digits} == {"trunk"}
    assert all(d.duration_ms > 0 for d in digits)


async def test_a_digit_whose_end_packets_are_lost_is_closed_by_the_tick(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("trunk")
    runtime.configure_leg("trunk", ulaw_to(peer.addr, event_pt=96))
    packets = [
        p for p in plan_digit("7", duration_ms=100, timestamp=8000) if not p.payload[1] & 0x80
    ]
    loop = asyncio.get_running_loop()
    sent = loop.time()
    for seq, packet in enumerate(packets):
        peer.send(
            rtp(96, 100 + seq, packet.timestamp, 0xABC, packet.payload, marker=packet.marker), addr
        )
    await harness.events.wait_for(bool, timeout=2.0)
    (digit,) = harness.events.of(DigitDetected)
    assert digit.digit == "7"
    assert digit.at - sent >= 0.45  # the receiver's 0.5 s end timeout, run from the tick


async def test_inband_digit_when_no_telephone_event(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("trunk")
    runtime.configure_leg("trunk", ulaw_to(peer.addr, event_pt=None, inband=True))
    audio = bytes(3200) + dual_tone(770, 1336, 0.12) + bytes(3200)  # the key 5
    for seq, frame in enumerate(frames(audio)):
        peer.send(rtp(0, seq, seq * 160, 0x55, g711.PCMU.encode(frame)), addr)
        await asyncio.sleep(0.001)
    await harness.events.wait_for(bool, timeout=2.0)
    assert [d.digit for d in harness.events.of(DigitDetected)] == ["5"]


async def test_no_inband_detection_unless_asked(harness: Harness, peers: Callable[[], Any]) -> None:
    peer = await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("trunk")
    runtime.configure_leg("trunk", ulaw_to(peer.addr, event_pt=None))
    audio = dual_tone(770, 1336, 0.12) + bytes(3200)
    for seq, frame in enumerate(frames(audio)):
        peer.send(rtp(0, seq, seq * 160, 0x55, g711.PCMU.encode(frame)), addr)
    await asyncio.sleep(0.2)
    assert harness.events.seen == []


async def test_symmetric_rtp_latches_once_on_the_real_source(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    """RFC 4961: send where the peer's RTP comes from (NAT), not where its SDP points."""
    sdp_target, real, intruder, stray = await peers(), await peers(), await peers(), await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("phone")
    runtime.configure_leg("phone", ulaw_to(sdp_target.addr))
    runtime.play("phone", ["tone"], language="it", play_id=1, loop=True)
    await sdp_target.wait_count(3)
    stray.send(rtp(0, 7, 160, 0x3, bytes(160)), addr)  # one packet proves nothing
    before = len(sdp_target.packets)
    await sdp_target.wait_count(before + 3)
    for seq in (1, 2):  # a run of sequence numbers does (RFC 3550 A.1 probation)
        real.send(rtp(0, seq, 160 * seq, 0x1, bytes(160)), addr)
    await real.wait_count(3)
    for seq in (1, 2, 3):
        intruder.send(rtp(0, seq, 160 * seq, 0x2, bytes(160)), addr)
    before = len(real.packets)
    await real.wait_count(before + 5)
    runtime.stop_playback("phone")
    await asyncio.sleep(0.05)
    assert intruder.packets == [] and stray.packets == []
    settled = len(sdp_target.packets)
    await asyncio.sleep(0.1)
    assert len(sdp_target.packets) == settled
    # One stream: the numbering continues across the move.
    seqs = [fields(d)[2] for _, d, _ in sorted(sdp_target.packets + real.packets)]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))


async def test_reinvite_to_a_new_address_learns_the_source_again(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    first, second = await peers(), await peers()
    runtime = harness.runtime
    addr = runtime.open_leg("phone")
    runtime.configure_leg("phone", ulaw_to(first.addr))
    first.send(rtp(0, 1, 160, 0x1, bytes(160)), addr)
    await asyncio.sleep(0.05)
    runtime.configure_leg("phone", ulaw_to(second.addr))
    runtime.play("phone", ["short"], language="it", play_id=1)
    await harness.events.wait_for(bool)
    await asyncio.sleep(0.05)
    assert (len(first.packets), len(second.packets)) == (0, 5)


async def test_rtcp_and_garbage_never_choke_the_leg(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = harness.runtime
    host, port = runtime.open_leg("trunk")
    runtime.configure_leg("trunk", ulaw_to(peer.addr))
    report = build_receiver_report(ssrc=0x1234)
    for junk in (b"", b"\x00", b"\xff" * 40, b"\x80", report, b"\x80\xc8\x00\x10"):
        peer.send(junk, (host, port))
        peer.send(junk, (host, port + 1))
    packets = plan_digit("9", duration_ms=60, timestamp=0)
    for seq, packet in enumerate(packets):
        peer.send(
            rtp(101, seq, packet.timestamp, 0x9, packet.payload, marker=packet.marker), (host, port)
        )
    await harness.events.wait_for(bool, timeout=2.0)
    assert [d.digit for d in harness.events.of(DigitDetected)] == ["9"]
    assert runtime.stats()["rtcp_packets"] == 1


@pytest.fixture
async def quick_timeout(harness: Harness, tmp_path: Path) -> AsyncIterator[MediaRuntime]:
    low, high = port_range()
    runtime = MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=tmp_path, data_dir=tmp_path, media_timeout=0.2, g729=None,
        on_event=harness.events,
    )  # fmt: skip
    yield runtime
    runtime.close()


async def test_media_timeout_after_the_last_packet_once(
    quick_timeout: MediaRuntime, harness: Harness, peers: Callable[[], Any]
) -> None:
    peer = await peers()
    runtime = quick_timeout
    addr = runtime.open_leg("caller")
    runtime.configure_leg("caller", ulaw_to(peer.addr))
    loop = asyncio.get_running_loop()
    for seq in range(15):  # 0.3 s of audio keeps the leg alive past one timeout
        peer.send(rtp(0, seq, seq * 160, 0x7, bytes(160)), addr)
        await asyncio.sleep(0.02)
    last = loop.time()
    await harness.events.wait_for(bool, timeout=2.0)
    (fact,) = harness.events.of(MediaTimedOut)
    assert fact.leg == "caller"
    assert fact.at - last + 0.005 >= 0.2 and fact.at - last < 0.6
    assert fact.silent_for >= 0.2
    await asyncio.sleep(0.3)
    assert len(harness.events.seen) == 1  # reported once


async def test_media_timeout_of_a_configured_leg_that_never_got_rtp(
    quick_timeout: MediaRuntime, harness: Harness
) -> None:
    runtime = quick_timeout
    runtime.open_leg("silent")
    runtime.open_leg("unconfigured")
    runtime.configure_leg("silent", ulaw_to(None))
    await harness.events.wait_for(bool, timeout=2.0)
    await asyncio.sleep(0.3)
    assert [e.leg for e in harness.events.of(MediaTimedOut)] == ["silent"]


async def test_no_media_timeout_while_the_peer_holds(
    quick_timeout: MediaRuntime, harness: Harness
) -> None:
    runtime = quick_timeout
    runtime.open_leg("held")
    runtime.configure_leg(
        "held",
        LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=None, sending=False),
    )
    await asyncio.sleep(0.5)
    assert harness.events.seen == []
    runtime.configure_leg("held", ulaw_to(None))  # resumed: a full period again
    await harness.events.wait_for(bool, timeout=2.0)
    assert harness.events.of(MediaTimedOut)[0].leg == "held"


async def test_an_ipv6_leg_sends_receives_and_latches(tmp_path: Path, prompts_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    events = Events()
    low, high = port_range()
    runtime = MediaRuntime(
        loop, host="::1", port_min=low, port_max=high, prompts_dir=prompts_dir,
        data_dir=tmp_path, media_timeout=30.0, g729=None, on_event=events,
    )  # fmt: skip
    _, sdp_peer = await loop.create_datagram_endpoint(Peer, local_addr=("::1", 0))
    _, real = await loop.create_datagram_endpoint(Peer, local_addr=("::1", 0))
    try:
        addr = runtime.open_leg("v6")
        assert addr[0] == "::1" and addr[1] % 2 == 0
        runtime.configure_leg("v6", ulaw_to(sdp_peer.addr))
        runtime.play("v6", ["tone"], language="it", play_id=1, loop=True)
        await sdp_peer.wait_count(2)
        for seq, packet in enumerate(plan_digit("#", duration_ms=60, timestamp=0)):
            real.send(
                rtp(101, seq, packet.timestamp, 0x6, packet.payload, marker=packet.marker), addr
            )
        await real.wait_count(2)
        await events.wait_for(bool)
        assert [d.digit for d in events.of(DigitDetected)] == ["#"]
    finally:
        runtime.close()
        sdp_peer.close()
        real.close()
