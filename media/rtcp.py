"""Minimal RTCP (RFC 3550 §6) and the media-timeout tracker.

We only need RTCP so that it never chokes the RTP path (it may arrive on the RTP port when
the peer multiplexes, RFC 5761), to read the basic fields of sender and receiver reports,
and to build our own reports. The media timeout hangs up an answered call whose RTP has
stopped, which is the only reliable sign of a vanished peer when no BYE ever arrives.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "PT_APP",
    "PT_BYE",
    "PT_RR",
    "PT_SDES",
    "PT_SR",
    "Bye",
    "MediaTimedOut",
    "MediaTimeout",
    "OtherRtcp",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "SenderReport",
    "build_receiver_report",
    "build_sdes",
    "build_sender_report",
    "is_rtcp",
    "parse_rtcp",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204

_HEADER = struct.Struct("!BBHI")
_SENDER_INFO = struct.Struct("!QIII")
_BLOCK = struct.Struct("!IIIIII")


class RtcpError(ValueError):
    """A datagram that looked like RTCP but is malformed (RFC 3550 §6.4)."""


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on an RTP port is RTCP rather than RTP.

    RFC 5761 §4: RTCP packet types 192-223 overlap RTP payload types 64-95 with the
    marker bit set, so a second byte in that range is never treated as media. This covers
    SR, RR, SDES, BYE and APP (200-204).
    """
    return len(data) >= 8 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport:
    """RFC 3550 §6.4.1 SR: sender info plus reception reports."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport:
    """RFC 3550 §6.4.2 RR."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """RFC 3550 §6.6 BYE: the listed sources are leaving."""

    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherRtcp:
    """SDES, APP or an unknown type: recognised and skipped."""

    packet_type: int


RtcpPacket = SenderReport | ReceiverReport | Bye | OtherRtcp


def _signed24(value: int) -> int:
    return value - (1 << 24) if value & 0x800000 else value


def _parse_blocks(data: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for index in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset + 24 * index)
        blocks.append(
            ReportBlock(
                ssrc=ssrc,
                fraction_lost=lost >> 24,
                cumulative_lost=_signed24(lost & 0xFFFFFF),
                highest_sequence=highest,
                jitter=jitter,
                last_sr=lsr,
                delay_since_last_sr=dlsr,
            )
        )
    return tuple(blocks)


def _parse_one(data: bytes, offset: int, end: int) -> RtcpPacket:
    first, packet_type, _length, ssrc = _HEADER.unpack_from(data, offset)
    count = first & 0x1F
    if packet_type == PT_SR:
        _need(end - offset >= 28 + 24 * count, "SR shorter than its report count")
        ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, offset + 8)
        blocks = _parse_blocks(data, offset + 28, count)
        return SenderReport(
            ssrc=ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_ts,
            packet_count=packets,
            octet_count=octets,
            reports=blocks,
        )
    if packet_type == PT_RR:
        _need(end - offset >= 8 + 24 * count, "RR shorter than its report count")
        return ReceiverReport(ssrc=ssrc, reports=_parse_blocks(data, offset + 8, count))
    if packet_type == PT_BYE:
        _need(end - offset >= 4 + 4 * count, "BYE shorter than its source count")
        return Bye(ssrcs=struct.unpack_from(f"!{count}I", data, offset + 4))
    return OtherRtcp(packet_type=packet_type)


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise RtcpError(reason)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet (RFC 3550 §6.1) into its parts.

    Raises RtcpError for anything malformed; never another exception.
    """
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        _need(len(data) - offset >= 8, "truncated RTCP header")
        _need(data[offset] >> 6 == 2, "RTCP version is not 2")
        end = offset + 4 * (int.from_bytes(data[offset + 2 : offset + 4], "big") + 1)
        _need(end <= len(data), "RTCP length field beyond the datagram")
        packets.append(_parse_one(data, offset, end))
        offset = end
    _need(bool(packets), "empty RTCP datagram")
    return packets


def _pack_blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = bytearray()
    for block in blocks:
        lost = (block.fraction_lost & 0xFF) << 24 | (block.cumulative_lost & 0xFFFFFF)
        out += _BLOCK.pack(
            block.ssrc & 0xFFFFFFFF,
            lost,
            block.highest_sequence & 0xFFFFFFFF,
            block.jitter & 0xFFFFFFFF,
            block.last_sr & 0xFFFFFFFF,
            block.delay_since_last_sr & 0xFFFFFFFF,
        )
    return bytes(out)


def _header(count: int, packet_type: int, body_len: int, ssrc: int) -> bytes:
    """Common header; the length counts 32-bit words minus one (RFC 3550 §6.4.1)."""
    return _HEADER.pack(0x80 | count, packet_type, (body_len + 8) // 4 - 1, ssrc)


def build_receiver_report(*, ssrc: int, reports: tuple[ReportBlock, ...] = ()) -> bytes:
    """Build an RR (RFC 3550 §6.4.2) with at most 31 report blocks."""
    if len(reports) > 31:
        raise RtcpError("at most 31 report blocks fit one RR")
    body = _pack_blocks(reports)
    return _header(len(reports), PT_RR, len(body), ssrc) + body


def build_sender_report(report: SenderReport) -> bytes:
    """Build an SR (RFC 3550 §6.4.1)."""
    if len(report.reports) > 31:
        raise RtcpError("at most 31 report blocks fit one SR")
    body = _SENDER_INFO.pack(
        report.ntp_timestamp & 0xFFFFFFFFFFFFFFFF,
        report.rtp_timestamp & 0xFFFFFFFF,
        report.packet_count & 0xFFFFFFFF,
        report.octet_count & 0xFFFFFFFF,
    ) + _pack_blocks(report.reports)
    return _header(len(report.reports), PT_SR, len(body), report.ssrc) + body


def build_sdes(*, ssrc: int, cname: str) -> bytes:
    """An SDES chunk with only a CNAME (RFC 3550 §6.5.1), required in every compound."""
    name = cname.encode("utf-8")[:255]
    item = bytes([1, len(name)]) + name + b"\x00"
    item += b"\x00" * (-(len(item)) % 4)
    return _header(1, PT_SDES, len(item), ssrc) + item


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaTimedOut:
    """No RTP arrived for `silent_for` seconds: the call should be hung up on both legs."""

    at: float
    silent_for: float
    reason: str


class MediaTimeout:
    """Detects a stream that went silent (no RTP for `timeout` seconds, default 60).

    Sans-I/O: `packet_received(now=...)` costs one attribute store, so it can sit on the
    packet hot path; the runtime arms one timer at `get_timer()`. While the peer has said
    it will not send (a=recvonly or a=inactive hold), call `suspend()`.
    """

    __slots__ = ("_event", "_last", "_suspended", "timeout")

    def __init__(self, *, now: float, timeout: float = 60.0) -> None:
        if timeout <= 0:
            raise ValueError("media timeout must be positive")
        self.timeout = timeout
        self._last = now
        self._suspended = False
        self._event: MediaTimedOut | None = None

    def packet_received(self, *, now: float) -> None:
        self._last = now

    def suspend(self) -> None:
        self._suspended = True

    def resume(self, *, now: float) -> None:
        """Restart the countdown from `now`: the peer gets a full period to send."""
        self._suspended = False
        self._last = now

    def get_timer(self) -> float | None:
        if self._suspended or self._event is not None:
            return None
        return self._last + self.timeout

    def handle_timer(self, *, now: float) -> None:
        deadline = self.get_timer()
        if deadline is None or now < deadline:
            return
        silent = now - self._last
        self._event = MediaTimedOut(
            at=now, silent_for=silent, reason=f"no RTP received for {silent:.1f} s"
        )

    def next_event(self) -> MediaTimedOut | None:
        event, self._event = self._event, None
        if event is not None:
            self._suspended = True
        return event
