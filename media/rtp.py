"""RTP packets, a sans-I/O sender and receiver statistics (RFC 3550).

The hot path (RtpReceiver.receive, RtpSender.frame) does one precompiled-Struct call and a
few attribute updates per packet: no per-packet objects. RtpPacket/parse_rtp/build_rtp are
the readable, fully general forms for tests, tools and slow paths.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from media.rtcp import ReportBlock

__all__ = [
    "HEADER",
    "RandomBits",
    "RtpError",
    "RtpPacket",
    "RtpReceiver",
    "RtpSender",
    "build_rtp",
    "parse_rtp",
    "payload_bounds",
]

HEADER = struct.Struct("!BBHII")
"""The fixed 12-byte header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""

RandomBits = Callable[[int], int]
"""Injected randomness, shaped like `secrets.randbits(k)` (the runtime passes that)."""

_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000  # RFC 3550 A.1
_MAX_MISORDER = 100  # RFC 3550 A.1
_DUP_WINDOW = 64


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet (RFC 3550 §5.1, A.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). `padding` is the number of padding octets."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0


def _header_length(data: bytes) -> int:
    """Offset of the payload, checking CSRC list and header extension (RFC 3550 §5.3.1)."""
    length = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < length + 4:
            raise RtpError("truncated header extension")
        length += 4 + 4 * int.from_bytes(data[length + 2 : length + 4], "big")
    if len(data) < length:
        raise RtpError("packet shorter than its header")
    return length


def payload_bounds(data: bytes) -> tuple[int, int]:
    """(start, end) of the payload in a packet; validates version, lengths and padding."""
    if len(data) < 12:
        raise RtpError("packet shorter than 12 octets")
    if data[0] >> 6 != 2:
        raise RtpError("RTP version is not 2")
    if 72 <= data[1] & 0x7F <= 76:
        raise RtpError("payload type collides with RTCP (RFC 5761 §4)")
    start = _header_length(data)
    end = len(data)
    if data[0] & 0x20:
        # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
        pad = data[-1]
        if pad == 0 or pad > end - start:
            raise RtpError("invalid padding count")
        end -= pad
    return start, end


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse and validate one RTP packet; raises RtpError, never anything else."""
    if len(data) >= 12 and data[0] == 0x80 and not 72 <= data[1] & 0x7F <= 76:
        # The common case: no padding, extension or CSRC.
        _, second, seq, ts, ssrc = HEADER.unpack_from(data)
        return RtpPacket(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[12:]),
            marker=second > 0x7F,
        )
    start, end = payload_bounds(data)
    first, second, seq, ts, ssrc = HEADER.unpack_from(data)
    count = first & 0x0F
    csrc = struct.unpack_from(f"!{count}I", data, 12)
    profile: int | None = None
    extension = b""
    if first & 0x10:
        offset = 12 + 4 * count
        profile = int.from_bytes(data[offset : offset + 2], "big")
        extension = bytes(data[offset + 4 : start])
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[start:end]),
        marker=bool(second & 0x80),
        csrc=csrc,
        extension_profile=profile,
        extension=extension,
        padding=len(data) - end,
    )


def _check_fields(packet: RtpPacket) -> None:
    if not 0 <= packet.payload_type <= 127:
        raise RtpError("payload type out of range 0-127")
    if not 0 <= packet.sequence_number < _SEQ_MOD:
        raise RtpError("sequence number out of range")
    if not (0 <= packet.timestamp <= 0xFFFFFFFF and 0 <= packet.ssrc <= 0xFFFFFFFF):
        raise RtpError("timestamp or SSRC out of 32-bit range")
    if len(packet.csrc) > 15 or len(packet.extension) % 4 or not 0 <= packet.padding <= 255:
        raise RtpError("too many CSRCs, unaligned extension or padding out of range")
    if packet.extension_profile is None and packet.extension:
        raise RtpError("extension data without an extension profile")


def build_rtp(packet: RtpPacket) -> bytes:
    """Serialize a packet (RFC 3550 §5.1); raises RtpError for out-of-range fields."""
    plain = not (packet.csrc or packet.padding or packet.extension)
    if plain and packet.extension_profile is None and 0 <= packet.payload_type <= 127:
        second = (0x80 if packet.marker else 0) | packet.payload_type
        try:
            header = HEADER.pack(
                0x80, second, packet.sequence_number, packet.timestamp, packet.ssrc
            )
        except struct.error as exc:
            raise RtpError(f"field out of range: {exc}") from exc
        return header + packet.payload
    _check_fields(packet)
    has_ext = packet.extension_profile is not None
    first = 0x80 | (0x20 if packet.padding else 0) | (0x10 if has_ext else 0) | len(packet.csrc)
    second = (0x80 if packet.marker else 0) | packet.payload_type
    out = bytearray(
        HEADER.pack(first, second, packet.sequence_number, packet.timestamp, packet.ssrc)
    )
    out += struct.pack(f"!{len(packet.csrc)}I", *packet.csrc)
    if packet.extension_profile is not None:
        out += struct.pack("!HH", packet.extension_profile, len(packet.extension) // 4)
        out += packet.extension
    out += packet.payload
    if packet.padding:
        out += bytes(packet.padding - 1) + bytes([packet.padding])
    return bytes(out)


class RtpSender:
    """Numbers our outgoing stream (RFC 3550 §5.1): SSRC, sequence number and timestamp.

    SSRC and the initial sequence number and timestamp are random (RFC 3550 §5.1 says
    they SHOULD be) and come from the injected `random_bits`. The marker bit is set on the
    first packet of each talkspurt (RFC 3551 §4.1), i.e. after `skip()`.
    """

    __slots__ = (
        "_talkspurt",
        "octet_count",
        "packet_count",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(self, *, payload_type: int, random_bits: RandomBits) -> None:
        self.payload_type = payload_type
        self.ssrc = random_bits(32) & 0xFFFFFFFF
        self.sequence_number = random_bits(16) & 0xFFFF
        self.timestamp = random_bits(32) & 0xFFFFFFFF
        self._talkspurt = True
        self.packet_count = 0
        self.octet_count = 0

    def frame(self, payload: bytes, *, samples: int = 160) -> bytes:
        """One media packet; advances the timestamp by `samples` (160 = 20 ms at 8 kHz)."""
        data = self._packet(payload, self.payload_type, self._talkspurt)
        self._talkspurt = False
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return data

    def event(self, payload: bytes, *, payload_type: int, marker: bool = False) -> bytes:
        """An RFC 4733 event packet at the current timestamp, which it does not advance.

        RFC 4733 §2.3.1: all packets of one event carry the event's start timestamp; call
        `skip(duration)` once the event has ended.
        """
        return self._packet(payload, payload_type, marker)

    def skip(self, samples: int) -> None:
        """Silence or an event elapsed: advance the clock; the next frame starts a talkspurt."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self._talkspurt = True

    def _packet(self, payload: bytes, payload_type: int, marker: bool) -> bytes:
        second = payload_type | 0x80 if marker else payload_type
        header = HEADER.pack(0x80, second, self.sequence_number, self.timestamp, self.ssrc)
        self.sequence_number = (self.sequence_number + 1) & 0xFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return header + payload


class RtpReceiver:
    """Validates incoming packets, latches the peer and keeps RFC 3550 A.1/A.8 statistics.

    Symmetric RTP (RFC 4961): the first valid packet latches the peer's real source
    address (softphones behind NAT send from an address their SDP does not show); once
    latched, packets from any other address are ignored and `remote_addr` is where to
    send. After `receive` returns True, the packet's fields are on the receiver
    (`payload_type`, `marker`, `sequence_number`, `timestamp`, `ssrc`) and its payload is
    `data[payload_start:payload_end]`: no per-packet object is created.
    """

    __slots__ = (
        "_bad_seq", "_base_seq", "_cycles", "_expected_prior", "_last_arrival", "_last_ts",
        "_max_seq", "_received", "_received_prior", "_window", "clock_rate", "duplicates",
        "foreign", "invalid", "jitter", "latched", "marker", "payload_end", "payload_start",
        "payload_type", "remote_addr", "reordered", "rtcp_received", "sequence_number", "ssrc",
        "ssrc_changes", "timestamp",
    )  # fmt: skip

    def __init__(self, *, remote_addr: tuple[str, int] | None = None, clock_rate: int = 8000):
        self.remote_addr = remote_addr
        self.latched = False
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.invalid = self.foreign = self.rtcp_received = self.ssrc_changes = 0
        self.payload_type = self.sequence_number = self.timestamp = 0
        self.payload_start = self.payload_end = 0
        self.marker = False
        self._restart(0)

    def reset_latch(self, remote_addr: tuple[str, int] | None) -> None:
        """A re-offer moved the peer's media: learn its source address again."""
        self.remote_addr = remote_addr
        self.latched = False

    def _restart(self, seq: int) -> None:
        """RFC 3550 A.1 init_seq: a new source or a resynchronised one."""
        self._base_seq = self._max_seq = seq
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = self._received = self._received_prior = self._expected_prior = 0
        self._window = 1
        self.duplicates = self.reordered = 0
        self.jitter = 0.0
        self._last_arrival: float | None = None
        self._last_ts = 0

    def receive(self, data: bytes, addr: tuple[str, int], *, now: float) -> bool:
        """Take one datagram; True when it is a new, valid media packet from the peer."""
        second = data[1] if len(data) > 1 else 0
        if 192 <= second <= 223:
            self.rtcp_received += 1  # RTCP multiplexed on the RTP port (RFC 5761)
            return False
        if len(data) >= 12 and data[0] == 0x80 and not 72 <= second & 0x7F <= 76:
            start, end = 12, len(data)
        else:
            try:
                start, end = payload_bounds(data)
            except RtpError:
                self.invalid += 1
                return False
        if not self._accept_source(addr):
            return False
        _, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if ssrc != self.ssrc:
            self._new_source(ssrc, seq)
        elif not self._update_seq(seq):
            return False
        self._update_jitter(ts, now)
        self.payload_type, self.marker = second & 0x7F, second > 0x7F
        self.sequence_number, self.timestamp = seq, ts
        self.payload_start, self.payload_end = start, end
        return True

    def _accept_source(self, addr: tuple[str, int]) -> bool:
        if self.latched:
            if addr == self.remote_addr:
                return True
            self.foreign += 1
            return False
        self.remote_addr, self.latched = addr, True
        return True

    def _new_source(self, ssrc: int, seq: int) -> None:
        if self.ssrc is not None:
            self.ssrc_changes += 1
        self.ssrc = ssrc
        self._restart(seq)
        self._received = 1

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 update_seq, plus a 64-packet window to drop duplicates."""
        udelta = (seq - self._max_seq) & 0xFFFF
        if 0 < udelta < _MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += _SEQ_MOD
            self._max_seq = seq
            self._window = ((self._window << udelta) | 1) & 0xFFFFFFFFFFFFFFFF
        elif udelta == 0:
            self.duplicates += 1
            return False
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            return self._on_jump(seq)
        elif not self._on_late(seq):
            return False
        self._received += 1
        return True

    def _on_jump(self, seq: int) -> bool:
        """A very large jump: accept only when two sequential packets confirm a restart."""
        if seq != self._bad_seq:
            self._bad_seq = (seq + 1) & 0xFFFF
            self.invalid += 1
            return False
        self._restart(seq)
        self._received = 1
        return True

    def _on_late(self, seq: int) -> bool:
        back = (self._max_seq - seq) & 0xFFFF
        if back < _DUP_WINDOW:
            if self._window >> back & 1:
                self.duplicates += 1
                return False
            self._window |= 1 << back
        self.reordered += 1
        return True

    def _update_jitter(self, ts: int, now: float) -> None:
        """RFC 3550 A.8 interarrival jitter, in timestamp units.

        Packets repeating the previous timestamp (RFC 4733 event updates) are skipped:
        their timestamp is not a sampling instant, so they would inflate the estimate.
        """
        arrival = now * self.clock_rate
        if self._last_arrival is not None and ts != self._last_ts:
            sent = ((ts - self._last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            self.jitter += (abs(arrival - self._last_arrival - sent) - self.jitter) / 16
        self._last_arrival, self._last_ts = arrival, ts

    @property
    def received(self) -> int:
        """Distinct packets accepted from the current source."""
        return self._received

    @property
    def extended_max_sequence(self) -> int:
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        return 0 if self.ssrc is None else self.extended_max_sequence - self._base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self._received)

    def report_block(self) -> ReportBlock | None:
        """A reception report for our RR (RFC 3550 §6.4.1, A.3); None before any packet."""
        if self.ssrc is None:
            return None
        expected, received = self.expected, self._received
        expected_interval = expected - self._expected_prior
        lost_interval = expected_interval - (received - self._received_prior)
        self._expected_prior, self._received_prior = expected, received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=max(-0x800000, min(0x7FFFFF, expected - received)),
            highest_sequence=self.extended_max_sequence & 0xFFFFFFFF,
            jitter=int(self.jitter),
        )
