"""Our RTCP over real sockets: SR while we send, RR otherwise, SDES CNAME, symmetric RTCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from media_runtime_helpers import HOST, Events, Peer, port_range, rtp

from media.rtcp import ReceiverReport, SenderReport, build_receiver_report, parse_rtcp
from routing.media_plane import LegMedia
from server.media import MediaRuntime
from server.media_rtcp import NTP_UNIX_OFFSET, ntp_timestamp


async def peer_pair() -> tuple[Peer, Peer]:
    """Two peer sockets on an even port and the next one (a softphone's RTP and RTCP)."""
    loop = asyncio.get_running_loop()
    for _ in range(50):
        _, first = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        port = first.addr[1]
        if port % 2 == 0:
            try:
                _, second = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, port + 1))
            except OSError:
                pass
            else:
                return first, second
        first.close()
    raise RuntimeError("no free port pair")


@pytest.fixture
async def runtime(tmp_path: Path, prompts_dir: Path) -> AsyncIterator[MediaRuntime]:
    low, high = port_range()
    media = MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=prompts_dir, data_dir=tmp_path, media_timeout=30.0, g729=None,
        on_event=Events(), rtcp_interval=0.1,
    )  # fmt: skip
    yield media
    media.close()


def reports(peer: Peer) -> list[list[object]]:
    return [list(parse_rtcp(data)) for _, data, _ in peer.packets]


async def test_sender_reports_while_playing_then_receiver_reports(runtime: MediaRuntime) -> None:
    rtp_peer, rtcp_peer = await peer_pair()
    try:
        addr = runtime.open_leg("l")
        runtime.configure_leg(
            "l",
            LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=rtp_peer.addr),
        )
        for seq in range(5):
            rtp_peer.send(rtp(0, 10 + seq, 160 * seq, 0xFEED, bytes(160)), addr)
        await asyncio.sleep(0.05)
        runtime.play("l", ["tone"], language="it", play_id=1)
        await rtp_peer.wait_count(6)
        ours = int.from_bytes(rtp_peer.packets[0][1][8:12], "big")  # our RTP stream's SSRC

        async def sender_report() -> SenderReport:
            while True:
                found = [r[0] for r in reports(rtcp_peer) if isinstance(r[0], SenderReport)]
                if found:
                    return found[0]
                await asyncio.sleep(0.02)

        report = await asyncio.wait_for(sender_report(), 2.0)
        assert report.ssrc == ours
        assert 0 < report.packet_count <= len(rtp_peer.packets)
        assert report.octet_count == 160 * report.packet_count
        assert [(b.ssrc, b.highest_sequence) for b in report.reports] == [(0xFEED, 14)]
        assert abs(report.ntp_timestamp / 2**32 - NTP_UNIX_OFFSET - time.time()) < 2
        await asyncio.sleep(0.8)  # the prompt (0.5 s) is over: no media sent since
        last = reports(rtcp_peer)[-1]
        assert isinstance(last[0], ReceiverReport) and last[0].ssrc == ours
    finally:
        rtp_peer.close()
        rtcp_peer.close()


async def test_reports_follow_the_peers_rtcp_source(runtime: MediaRuntime) -> None:
    rtp_peer, rtcp_peer = await peer_pair()
    loop = asyncio.get_running_loop()
    _, nat = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    try:
        host, port = runtime.open_leg("l")
        runtime.configure_leg(
            "l",
            LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=rtp_peer.addr),
        )
        nat.send(build_receiver_report(ssrc=0x42), (host, port + 1))
        await nat.wait_count(2, timeout=2.0)
        assert all(len(r) == 2 for r in reports(nat))  # RR + SDES, a compound packet
        assert runtime.stats()["rtcp_packets"] == 1
    finally:
        for peer in (rtp_peer, rtcp_peer, nat):
            peer.close()


def test_ntp_timestamp_is_32_32_fixed_point_since_1900() -> None:
    assert ntp_timestamp(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_timestamp(1.5) == ((NTP_UNIX_OFFSET + 1) << 32) | (1 << 31)


async def test_relayed_packets_count_in_the_sender_report(runtime: MediaRuntime) -> None:
    caller, caller_rtcp = await peer_pair()
    loop = asyncio.get_running_loop()
    _, operator = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    try:
        runtime.open_leg("c/caller")
        addr_op = runtime.open_leg("c/op")
        for leg, peer in (("c/caller", caller), ("c/op", operator)):
            runtime.configure_leg(
                leg,
                LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=peer.addr),
            )
        runtime.bridge("c/caller", "c/op")
        for seq in range(10):
            operator.send(rtp(0, seq, 160 * seq, 0xB, bytes(160)), addr_op)
        await caller.wait_count(10)
        ours = int.from_bytes(caller.packets[0][1][8:12], "big")

        async def counted() -> SenderReport:
            while True:
                for parts in reports(caller_rtcp):
                    if isinstance(parts[0], SenderReport) and parts[0].packet_count == 10:
                        return parts[0]
                await asyncio.sleep(0.02)

        report = await asyncio.wait_for(counted(), 2.0)
        assert (report.ssrc, report.octet_count) == (ours, 1600)
    finally:
        for peer in (caller, caller_rtcp, operator):
            peer.close()
