"""Helpers for the media runtime tests: peers, tones, RTP fields, event waits."""

from __future__ import annotations

import asyncio
import math
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.media_plane import MediaEvent
from server.media import MediaRuntime

HOST = "127.0.0.1"


def tone(frequency: float, seconds: float, *, amplitude: int = 8000) -> bytes:
    """16-bit little-endian PCM of a sine at 8 kHz."""
    count = int(seconds * 8000)
    samples = array(
        "h", (round(amplitude * math.sin(2 * math.pi * frequency * n / 8000)) for n in range(count))
    )
    return samples.tobytes()


def dual_tone(low: float, high: float, seconds: float) -> bytes:
    """A DTMF key's two tones at about -10 dBm0 each."""
    count = int(seconds * 8000)
    samples = array(
        "h",
        (
            round(
                7000
                * (math.sin(2 * math.pi * low * n / 8000) + math.sin(2 * math.pi * high * n / 8000))
            )
            for n in range(count)
        ),
    )
    return samples.tobytes()


@dataclass
class Events:
    """The facts the runtime reported, and a bounded wait for the next matching one."""

    seen: list[MediaEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: MediaEvent) -> None:
        self.seen.append(event)
        self.changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)]

    async def wait_for(
        self, match: Callable[[list[MediaEvent]], bool], timeout: float = 5.0
    ) -> None:
        async def loop() -> None:
            while not match(self.seen):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


_port_base = iter(range(30000, 60000, 200))


def port_range(pairs: int = 50) -> tuple[int, int]:
    """A fresh range per runtime, so tests never meet each other's stray packets."""
    start = next(_port_base)
    return start, start + 2 * pairs


@dataclass
class Harness:
    runtime: MediaRuntime
    events: Events
    data_dir: Path


class Peer(asyncio.DatagramProtocol):
    """A plain UDP socket that records what arrives, with arrival times."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes, tuple[str, int]]] = []
        self.arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((asyncio.get_running_loop().time(), data, addr))
        self.arrived.set()

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (host, port)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def wait_count(self, count: int, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while len(self.packets) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(loop(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


HEADER = struct.Struct("!BBHII")


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, *, marker: bool = False) -> bytes:
    return (
        HEADER.pack(0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        + payload
    )


def fields(packet: bytes) -> tuple[bool, int, int, int, int, bytes]:
    """marker, payload type, sequence number, timestamp, SSRC, payload."""
    _, second, seq, ts, ssrc = HEADER.unpack_from(packet)
    return second > 0x7F, second & 0x7F, seq, ts, ssrc, packet[12:]


def frames(pcm: bytes, size: int = 320) -> Iterator[bytes]:
    for start in range(0, len(pcm) - size + 1, size):
        yield pcm[start : start + size]
