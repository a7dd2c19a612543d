"""RFC 4733 telephone-events: golden payloads, the receiver's loss handling, known pcaps."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.pcap import read_udp_file
from media.telephone_event import (
    DigitReceived,
    TelephoneEvent,
    TelephoneEventError,
    TelephoneEventReceiver,
    build_event,
    digit_code,
    parse_event,
    plan_digit,
)

ASTERISK_PCAP = (
    Path(__file__).resolve().parents[4]
    / "shared/corpus/pcap/asterisk_ulaw-2013785496_rtp_rfc2833.pcap"
)
SIPP_DIRS = [Path("/usr/share/sip-tester"), Path("/usr/share/sipp/pcap"), Path("/usr/share/sipp")]
SIPP_DIGITS = {**{str(d): str(d) for d in range(10)}, "star": "*", "pound": "#"}


def rtp_fields(packet: bytes) -> tuple[int, bool, int, int, bytes]:
    """(payload type, marker, sequence, timestamp, payload) of an RTP packet (RFC 3550 §5.1)."""
    first, second, seq, timestamp = struct.unpack_from("!BBHI", packet)
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        offset += 4 + 4 * struct.unpack_from("!H", packet, offset + 2)[0]
    end = len(packet) - (packet[-1] if first & 0x20 else 0)
    return second & 0x7F, bool(second & 0x80), seq, timestamp, packet[offset:end]


def digits_from_pcap(path: Path, payload_type: int = 101) -> list[DigitReceived]:
    receiver = TelephoneEventReceiver()
    found: list[DigitReceived] = []
    last = 0.0
    for datagram in read_udp_file(path):
        pt, _, _, timestamp, payload = rtp_fields(datagram.payload)
        last = datagram.timestamp
        receiver.handle_timer(now=last)
        if pt == payload_type:
            receiver.receive_payload(payload, timestamp=timestamp, now=last)
        while (event := receiver.next_event()) is not None:
            found.append(event)
    receiver.handle_timer(now=last + 10)
    while (event := receiver.next_event()) is not None:
        found.append(event)
    return found


def drain(receiver: TelephoneEventReceiver) -> list[DigitReceived]:
    out = []
    while (event := receiver.next_event()) is not None:
        out.append(event)
    return out


def payload(event: int, *, end: bool = False, duration: int = 0, volume: int = 10) -> bytes:
    return build_event(TelephoneEvent(event=event, end=end, volume=volume, duration=duration))


# --- payload format (RFC 4733 §2.3) ---------------------------------------------------


def test_golden_payload_bytes() -> None:
    # Event 5, E=1, volume 10, duration 1600: 05 8a 06 40.
    assert payload(5, end=True, duration=1600) == bytes.fromhex("058a0640")
    assert parse_event(bytes.fromhex("0b0a0140")) == TelephoneEvent(
        event=11, end=False, volume=10, duration=320
    )


def test_reserved_bit_is_ignored_and_extra_bytes_tolerated() -> None:
    event = parse_event(bytes.fromhex("03ca00a0") + b"\x00\x00")
    assert (event.event, event.end, event.volume, event.duration) == (3, True, 10, 160)
    assert event.digit == "3"
    assert parse_event(bytes.fromhex("10000000")).digit is None  # event 16 is flash


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_short_payload_is_an_error(data: bytes) -> None:
    with pytest.raises(TelephoneEventError):
        parse_event(data)


@pytest.mark.parametrize(
    "event",
    [
        TelephoneEvent(event=256, end=False, volume=0, duration=0),
        TelephoneEvent(event=1, end=False, volume=64, duration=0),
        TelephoneEvent(event=1, end=False, volume=0, duration=65536),
    ],
)
def test_build_rejects_out_of_range(event: TelephoneEvent) -> None:
    with pytest.raises(TelephoneEventError):
        build_event(event)


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_payload_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    value = TelephoneEvent(event=event, end=end, volume=volume, duration=duration)
    assert parse_event(build_event(value)) == value


def test_digit_codes() -> None:
    assert [digit_code(d) for d in "0123456789*#ABCDd"] == [*range(16), 15]
    for bad in ("", "E", "12", "+"):
        with pytest.raises(TelephoneEventError):
            digit_code(bad)


# --- receiver -------------------------------------------------------------------------


def test_three_end_packets_give_one_digit() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(5), timestamp=1000, now=0.0)
    receiver.receive_payload(payload(5, duration=400), timestamp=1000, now=0.05)
    assert drain(receiver) == []
    for k in range(3):
        receiver.receive_payload(payload(5, end=True, duration=800), timestamp=1000, now=0.1 + k)
    assert drain(receiver) == [DigitReceived(digit="5", duration_ms=100, at=0.1)]
    assert receiver.get_timer() is None


def test_lost_start_packets_still_give_the_digit() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(7, duration=960), timestamp=50, now=1.0)
    receiver.receive_payload(payload(7, end=True, duration=1280), timestamp=50, now=1.04)
    assert drain(receiver) == [DigitReceived(digit="7", duration_ms=160, at=1.04)]


def test_only_end_packets_give_the_digit_once() -> None:
    receiver = TelephoneEventReceiver()
    for k in range(3):
        receiver.receive_payload(payload(11, end=True, duration=640), timestamp=9, now=k * 0.02)
    assert drain(receiver) == [DigitReceived(digit="#", duration_ms=80, at=0.0)]


def test_new_timestamp_ends_an_event_whose_end_was_lost() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(1, duration=320), timestamp=800, now=0.0)
    receiver.receive_payload(payload(1, duration=640), timestamp=800, now=0.04)
    receiver.receive_payload(payload(2), timestamp=2400, now=0.2)
    assert drain(receiver) == [DigitReceived(digit="1", duration_ms=80, at=0.2)]
    receiver.receive_payload(payload(2, end=True, duration=800), timestamp=2400, now=0.3)
    assert drain(receiver) == [DigitReceived(digit="2", duration_ms=100, at=0.3)]


def test_same_digit_twice_is_two_presses() -> None:
    receiver = TelephoneEventReceiver()
    for timestamp in (0, 4000):
        for k in range(3):
            receiver.receive_payload(
                payload(4, end=True, duration=800),
                timestamp=timestamp,
                now=timestamp / 8000 + k / 100,
            )
    assert [e.digit for e in drain(receiver)] == ["4", "4"]


def test_timeout_reports_an_event_that_never_ends() -> None:
    receiver = TelephoneEventReceiver(end_timeout=0.5)
    receiver.receive_payload(payload(9, duration=400), timestamp=0, now=10.0)
    receiver.receive_payload(payload(9, duration=800), timestamp=0, now=10.05)
    assert receiver.get_timer() == pytest.approx(10.55)
    receiver.handle_timer(now=10.54)
    assert drain(receiver) == []
    receiver.handle_timer(now=10.55)
    assert drain(receiver) == [DigitReceived(digit="9", duration_ms=100, at=10.55)]
    assert receiver.get_timer() is None
    # The end packets arriving late are not a second press.
    receiver.receive_payload(payload(9, end=True, duration=1200), timestamp=0, now=11.0)
    assert drain(receiver) == []


def test_late_packet_of_a_previous_event_is_ignored() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(3, end=True, duration=800), timestamp=100, now=0.0)
    receiver.receive_payload(payload(6, duration=160), timestamp=5000, now=0.5)
    receiver.receive_payload(payload(3, duration=400), timestamp=100, now=0.51)
    receiver.receive_payload(payload(6, end=True, duration=800), timestamp=5000, now=0.6)
    assert [e.digit for e in drain(receiver)] == ["3", "6"]


def test_reordered_update_does_not_shrink_the_duration() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(0, duration=960), timestamp=7, now=0.0)
    receiver.receive_payload(payload(0, duration=480), timestamp=7, now=0.01)
    receiver.handle_timer(now=1.0)
    assert drain(receiver)[0].duration_ms == 120


def test_timestamp_wrap_is_a_new_event_not_a_stale_one() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(1, end=True, duration=800), timestamp=2**32 - 400, now=0.0)
    receiver.receive_payload(payload(2, end=True, duration=800), timestamp=1200, now=0.3)
    assert [e.digit for e in drain(receiver)] == ["1", "2"]


def test_long_event_segments_are_one_press() -> None:
    # RFC 4733 §2.5.1.3: past 0xFFFF units the sender starts a new segment at ts + duration.
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(8, duration=0xFFFF), timestamp=1000, now=0.0)
    receiver.receive_payload(payload(8, duration=800), timestamp=1000 + 0xFFFF, now=8.3)
    assert drain(receiver) == []
    receiver.receive_payload(payload(8, end=True, duration=800), timestamp=1000 + 0xFFFF, now=8.4)
    assert drain(receiver) == [DigitReceived(digit="8", duration_ms=8292, at=8.4)]


def test_short_event_then_far_timestamp_is_not_a_segment() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(8, duration=800), timestamp=1000, now=0.0)
    receiver.receive_payload(payload(8, duration=800), timestamp=1800, now=0.2)
    assert drain(receiver) == [DigitReceived(digit="8", duration_ms=100, at=0.2)]


def test_malformed_and_non_dtmf_packets_are_dropped() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(b"\x05", timestamp=0, now=0.0)
    receiver.receive_payload(payload(16, end=True, duration=800), timestamp=0, now=0.0)
    assert receiver.malformed == 1
    assert drain(receiver) == []
    assert receiver.get_timer() is None


# --- sender ---------------------------------------------------------------------------


def test_plan_digit_packet_sequence() -> None:
    packets = plan_digit("#", duration_ms=120, timestamp=4242, interval_ms=50)
    events = [parse_event(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True, False, False, False, False, False]
    assert {p.timestamp for p in packets} == {4242}
    assert [e.duration for e in events] == [0, 400, 800, 960, 960, 960]
    assert [e.end for e in events] == [False, False, False, True, True, True]
    assert {e.event for e in events} == {11}
    assert [p.offset for p in packets] == pytest.approx([0, 0.05, 0.1, 0.12, 0.17, 0.22])


@pytest.mark.parametrize("duration", [0, -5, 8200])
def test_plan_digit_rejects_bad_durations(duration: int) -> None:
    with pytest.raises(TelephoneEventError):
        plan_digit("1", duration_ms=duration, timestamp=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("0123456789*#ABCD"),
            st.integers(40, 400),
            st.lists(st.sampled_from(["keep", "drop", "twice"]), min_size=24, max_size=24),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 2**32 - 1),
)
def test_lossy_duplicated_stream_gives_each_digit_once(
    presses: list[tuple[str, int, list[str]]], start: int
) -> None:
    """Whatever is lost or duplicated, a press with one surviving packet is reported once."""
    receiver = TelephoneEventReceiver(end_timeout=0.5)
    expected: list[str] = []
    now, timestamp = 0.0, start
    for digit, duration, fates in presses:
        packets = plan_digit(digit, duration_ms=duration, timestamp=timestamp, interval_ms=20)
        survivors = [(p, f) for p, f in zip(packets, fates, strict=False) if f != "drop"]
        if survivors:
            expected.append(digit)
        for packet, fate in survivors:
            for _ in range(2 if fate == "twice" else 1):
                receiver.receive_payload(
                    packet.payload, timestamp=packet.timestamp, now=now + packet.offset
                )
        now += duration / 1000 + 0.2
        timestamp = (timestamp + 8 * (duration + 200)) % 2**32
    receiver.handle_timer(now=now + 5)
    assert [e.digit for e in drain(receiver)] == expected


# --- known answers from real captures -------------------------------------------------


def test_asterisk_capture_yields_2013785496() -> None:
    digits = digits_from_pcap(ASTERISK_PCAP)
    assert "".join(d.digit for d in digits) == "2013785496"
    assert all(150 <= d.duration_ms <= 400 for d in digits)


def _sipp_pcap(name: str) -> Path:
    for folder in SIPP_DIRS:
        if (folder / f"dtmf_2833_{name}.pcap").exists():
            return folder / f"dtmf_2833_{name}.pcap"
    pytest.skip("SIPp's dtmf_2833 pcaps are not installed (package sip-tester)")


@pytest.mark.parametrize("name", sorted(SIPP_DIGITS))
def test_sipp_captures_yield_their_digit(name: str) -> None:
    digits = digits_from_pcap(_sipp_pcap(name))
    assert [d.digit for d in digits] == [SIPP_DIGITS[name]]
    assert digits[0].duration_ms == 280


def test_reset_reports_the_open_event_and_forgets_the_stream() -> None:
    receiver = TelephoneEventReceiver()
    receiver.receive_payload(payload(1, end=True, duration=800), timestamp=5000, now=0.0)
    receiver.receive_payload(payload(2, duration=160), timestamp=9000, now=0.5)
    receiver.reset(now=0.6)
    assert receiver.get_timer() is None
    # A new SSRC may restart its timestamps anywhere, even at the one just finished.
    receiver.receive_payload(payload(1, end=True, duration=800), timestamp=5000, now=1.0)
    assert [e.digit for e in drain(receiver)] == ["1", "2", "1"]
