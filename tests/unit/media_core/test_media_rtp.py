"""RTP packets (RFC 3550 §5.1), the sender and the receiver statistics (A.1, A.8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp import RtpError, RtpPacket, RtpReceiver, RtpSender, build_rtp, parse_rtp

SIMPLE = bytes.fromhex("80801234 11223344 deadbeef ffffffff")
# V=2 P X CC=2 | PT 8 | seq 1 | ts 160 | ssrc 1 | csrc 2, 3 | ext 0xBEDE len 1 | "ab" | pad 2
COMPLEX = bytes.fromhex("b2080001 000000a0 00000001 00000002 00000003 bede0001 01020304 6162 0002")
PEER = ("192.0.2.10", 4000)


def test_golden_simple_packet() -> None:
    packet = RtpPacket(
        payload_type=0,
        sequence_number=0x1234,
        timestamp=0x11223344,
        ssrc=0xDEADBEEF,
        marker=True,
        payload=b"\xff" * 4,
    )
    assert build_rtp(packet) == SIMPLE
    assert parse_rtp(SIMPLE) == packet


def test_golden_packet_with_csrc_extension_and_padding() -> None:
    packet = parse_rtp(COMPLEX)
    assert packet == RtpPacket(
        payload_type=8,
        sequence_number=1,
        timestamp=160,
        ssrc=1,
        csrc=(2, 3),
        extension_profile=0xBEDE,
        extension=b"\x01\x02\x03\x04",
        payload=b"ab",
        padding=2,
    )
    assert build_rtp(packet) == COMPLEX


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than 12"),
        (SIMPLE[:11], "shorter than 12"),
        (b"\x40" + SIMPLE[1:], "version"),
        (bytes([0x82]) + SIMPLE[1:12] + b"\x00\x00\x00\x01", "shorter than its header"),
        (bytes([0x90]) + SIMPLE[1:12] + b"\xbe\xde", "extension"),
        (bytes([0x90]) + SIMPLE[1:12] + b"\xbe\xde\x00\x02abcd", "shorter than its header"),
        (bytes([0xA0]) + SIMPLE[1:] + b"\x00", "padding"),
        (bytes([0xA0]) + SIMPLE[1:12] + b"\x05", "padding"),
        (b"\x80\x48" + SIMPLE[2:], "RTCP"),
    ],
)
def test_invalid_packets_are_rejected_with_rtp_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        parse_rtp(data)


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127).filter(lambda pt: not 72 <= pt <= 76),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension_profile=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    padding=st.integers(0, 255),
).flatmap(
    lambda p: st.builds(
        lambda ext: RtpPacket(**{**_fields(p), "extension": ext}),
        st.just(b"") if p.extension_profile is None else st.binary(max_size=8).map(_pad4),
    )
)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _fields(packet: RtpPacket) -> dict[str, object]:
    return {name: getattr(packet, name) for name in RtpPacket.__slots__}


@given(packets)
def test_build_then_parse_round_trips(packet: RtpPacket) -> None:
    data = build_rtp(packet)
    assert parse_rtp(data) == packet
    assert build_rtp(parse_rtp(data)) == data


@given(st.binary(max_size=64))
def test_parse_never_raises_anything_but_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert build_rtp(packet) == data


def test_build_rejects_out_of_range_fields() -> None:
    with pytest.raises(RtpError):
        build_rtp(RtpPacket(payload_type=128, sequence_number=0, timestamp=0, ssrc=0))
    with pytest.raises(RtpError):
        build_rtp(RtpPacket(payload_type=0, sequence_number=65536, timestamp=0, ssrc=0))
    with pytest.raises(RtpError):
        build_rtp(
            RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, extension=b"1234")
        )


class FakeBits:
    """A deterministic stand-in for secrets.randbits: SSRC, then sequence, then timestamp."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.asked: list[int] = []

    def __call__(self, k: int) -> int:
        self.asked.append(k)
        return self.values.pop(0)


def test_sender_numbers_frames_with_marker_at_talkspurt_start_and_wraps() -> None:
    bits = FakeBits(0x01020304, 65534, 0xFFFFFF60)
    sender = RtpSender(payload_type=0, random_bits=bits)
    assert bits.asked == [32, 16, 32]  # SSRC, sequence number, timestamp
    sent = [parse_rtp(sender.frame(b"\xff" * 160)) for _ in range(3)]
    assert [p.sequence_number for p in sent] == [65534, 65535, 0]
    assert [p.timestamp for p in sent] == [0xFFFFFF60, 0, 160]
    assert [p.marker for p in sent] == [True, False, False]
    assert {p.ssrc for p in sent} == {0x01020304}
    sender.skip(800)  # 100 ms of silence suppressed
    resumed = parse_rtp(sender.frame(b"\xff" * 160))
    assert (resumed.sequence_number, resumed.timestamp, resumed.marker) == (
        1,
        160 + 160 + 800,
        True,
    )


def test_sender_event_packets_keep_the_timestamp() -> None:
    sender = RtpSender(payload_type=0, random_bits=lambda k: 1000)
    first = parse_rtp(sender.event(b"\x05\x0a\x00\xa0", payload_type=101, marker=True))
    second = parse_rtp(sender.event(b"\x05\x0a\x01\x40", payload_type=101))
    assert first.timestamp == second.timestamp == 1000
    assert (first.marker, second.marker) == (True, False)
    assert (first.payload_type, second.sequence_number) == (101, 1001)
    sender.skip(320)
    assert parse_rtp(sender.frame(b"x")).timestamp == 1320


def _packet(seq: int, ts: int | None = None, ssrc: int = 7, pt: int = 0) -> bytes:
    return build_rtp(
        RtpPacket(
            payload_type=pt,
            sequence_number=seq & 0xFFFF,
            timestamp=(seq * 160 if ts is None else ts) & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=b"\xd5" * 160,
        )
    )


def _feed(receiver: RtpReceiver, seqs: list[int], start: float = 0.0) -> list[bool]:
    return [
        receiver.receive(_packet(seq), PEER, now=start + 0.02 * i) for i, seq in enumerate(seqs)
    ]


def test_sequence_wrap_is_counted_as_a_cycle_without_loss() -> None:
    receiver = RtpReceiver()
    assert all(_feed(receiver, list(range(65530, 65550))))
    assert receiver.extended_max_sequence == 65536 + 13
    assert (receiver.expected, receiver.received, receiver.lost) == (20, 20, 0)


def test_reordering_duplicates_and_loss() -> None:
    receiver = RtpReceiver()
    results = _feed(receiver, [10, 11, 13, 12, 12, 14, 11, 17])
    assert results == [True, True, True, True, False, True, False, True]
    assert (receiver.reordered, receiver.duplicates) == (1, 2)
    assert (receiver.expected, receiver.received, receiver.lost) == (8, 6, 2)


def test_reordering_across_the_wrap() -> None:
    receiver = RtpReceiver()
    assert all(_feed(receiver, [65534, 0, 65535, 1]))
    assert (receiver.reordered, receiver.lost, receiver.extended_max_sequence) == (1, 0, 65537)


def test_large_jump_needs_two_sequential_packets_to_resynchronise() -> None:
    receiver = RtpReceiver()
    assert _feed(receiver, [100, 101, 20000, 20001, 20002]) == [True, True, False, True, True]
    assert (receiver.received, receiver.lost) == (2, 0)


@settings(max_examples=60)
@given(
    base=st.integers(0, 0xFFFF),
    count=st.integers(1, 300),
    displacement=st.lists(st.integers(0, 20), min_size=300, max_size=300),
    duplicate=st.lists(st.booleans(), min_size=300, max_size=300),
)
def test_any_local_reordering_with_duplicates_loses_nothing(
    base: int, count: int, displacement: list[int], duplicate: list[bool]
) -> None:
    order = sorted(range(count), key=lambda i: i + displacement[i])
    arrivals = []
    for i in order:
        arrivals.append(i)
        if duplicate[i]:
            arrivals.append(i)
    receiver = RtpReceiver()
    accepted = _feed(receiver, [base + i for i in arrivals])
    assert sum(accepted) == count == receiver.received
    assert receiver.duplicates == sum(duplicate[:count])
    assert receiver.lost == 0


def test_jitter_follows_rfc3550_a8() -> None:
    receiver = RtpReceiver()
    arrivals = [0.0, 0.020, 0.045, 0.060, 0.080, 0.110]
    for i, at in enumerate(arrivals):
        receiver.receive(_packet(i), PEER, now=at)
    expected = 0.0
    for i in range(1, len(arrivals)):
        d = (arrivals[i] - arrivals[i - 1]) * 8000 - 160
        expected += (abs(d) - expected) / 16
    assert receiver.jitter == pytest.approx(expected)
    assert receiver.jitter > 0


def test_jitter_is_zero_for_perfect_pacing_and_ignores_repeated_event_timestamps() -> None:
    receiver = RtpReceiver()
    for i in range(50):
        receiver.receive(_packet(i), PEER, now=i * 0.02)
    for i in range(50, 53):  # three RFC 4733 updates of one event share a timestamp
        receiver.receive(_packet(i, ts=50 * 160, pt=101), PEER, now=i * 0.02)
    assert receiver.jitter == pytest.approx(0.0, abs=1e-6)


def test_latching_learns_the_real_source_once() -> None:
    receiver = RtpReceiver(remote_addr=("10.0.0.5", 5004))  # what the SDP said (behind NAT)
    nat = ("203.0.113.7", 31000)
    assert not receiver.receive(b"\x00junk", ("198.51.100.1", 9), now=0.0)
    assert not receiver.latched  # an invalid packet never latches
    assert receiver.receive(_packet(1), nat, now=0.0)
    assert receiver.remote_addr == nat and receiver.latched
    assert not receiver.receive(_packet(2), ("198.51.100.1", 9), now=0.02)
    assert receiver.receive(_packet(3), nat, now=0.04)
    assert (receiver.foreign, receiver.remote_addr) == (1, nat)
    receiver.reset_latch(("10.0.0.6", 6000))  # a re-INVITE moved the media
    assert receiver.receive(_packet(4), ("203.0.113.7", 31002), now=0.06)
    assert receiver.remote_addr == ("203.0.113.7", 31002)


def test_rtcp_on_the_rtp_port_is_counted_not_taken_as_media() -> None:
    receiver = RtpReceiver()
    rr = bytes.fromhex("80c90001 00000007")
    assert not receiver.receive(rr, PEER, now=0.0)
    assert (receiver.rtcp_received, receiver.latched, receiver.invalid) == (1, False, 0)


def test_receiver_exposes_fields_and_payload_bounds_of_the_last_packet() -> None:
    receiver = RtpReceiver()
    assert receiver.receive(COMPLEX, PEER, now=0.0)
    assert COMPLEX[receiver.payload_start : receiver.payload_end] == b"ab"
    assert (receiver.payload_type, receiver.sequence_number, receiver.timestamp) == (8, 1, 160)
    assert receiver.receive(SIMPLE, PEER, now=0.02)
    assert receiver.marker and receiver.ssrc == 0xDEADBEEF and receiver.ssrc_changes == 1


def test_report_block_fraction_lost_per_interval() -> None:
    receiver = RtpReceiver()
    assert receiver.report_block() is None
    _feed(receiver, [0, 1, 2, 3, 5, 6, 7, 9])  # 2 of 10 lost
    block = receiver.report_block()
    assert block is not None
    assert (block.fraction_lost, block.cumulative_lost, block.highest_sequence) == (51, 2, 9)
    _feed(receiver, [10, 11], start=1.0)
    again = receiver.report_block()
    assert again is not None and (again.fraction_lost, again.cumulative_lost) == (0, 2)
