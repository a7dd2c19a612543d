"""RTCP reports (RFC 3550 §6.4) and the media-timeout tracker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtcp import (
    Bye,
    MediaTimeout,
    OtherRtcp,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    build_receiver_report,
    build_sdes,
    build_sender_report,
    is_rtcp,
    parse_rtcp,
)

BLOCK = ReportBlock(ssrc=7, fraction_lost=51, cumulative_lost=2, highest_sequence=9, jitter=3)
SR = SenderReport(
    ssrc=0x11111111,
    ntp_timestamp=0x0102030405060708,
    rtp_timestamp=160,
    packet_count=10,
    octet_count=1600,
    reports=(BLOCK,),
)
SR_BYTES = bytes.fromhex(
    "81c8000c 11111111 01020304 05060708 000000a0 0000000a 00000640"
    "00000007 33000002 00000009 00000003 00000000 00000000"
)


def test_golden_sender_report() -> None:
    assert build_sender_report(SR) == SR_BYTES
    assert parse_rtcp(SR_BYTES) == [SR]


def test_compound_rr_sdes_bye_parses_in_order() -> None:
    lost = ReportBlock(
        ssrc=9, fraction_lost=0, cumulative_lost=-3, highest_sequence=70000, jitter=0
    )
    data = (
        build_receiver_report(ssrc=5, reports=(lost,))
        + build_sdes(ssrc=5, cname="centralino@10.0.0.1")
        + bytes.fromhex("81cb0001 00000005")
    )
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [
        ReceiverReport(ssrc=5, reports=(lost,)),
        OtherRtcp(packet_type=202),
        Bye(ssrcs=(5,)),
    ]


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("80c9"),  # truncated header
        bytes.fromhex("40c90001 00000005"),  # version 1
        bytes.fromhex("80c90005 00000005"),  # length beyond the datagram
        bytes.fromhex("81c90001 00000005"),  # claims a report block it lacks
        b"",
    ],
)
def test_malformed_rtcp_raises_rtcp_error(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_rtcp(data)


@given(st.binary(max_size=80))
def test_parse_never_raises_anything_but_rtcp_error(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtcpError:
        return
    assert packets
    assert all(isinstance(p, SenderReport | ReceiverReport | Bye | OtherRtcp) for p in packets)


def test_is_rtcp_recognises_report_types_and_not_media() -> None:
    for packet_type in range(200, 205):
        assert is_rtcp(bytes([0x80, packet_type, 0, 1, 0, 0, 0, 1]))
    assert not is_rtcp(bytes.fromhex("80000001 000000a0 00000007"))  # PCMU
    assert not is_rtcp(bytes.fromhex("80e5 0001 000000a0 00000007"))  # PT 101 with marker
    assert not is_rtcp(b"\x80\xc8")


def test_media_timeout_fires_once_after_the_configured_silence() -> None:
    tracker = MediaTimeout(now=0.0, timeout=60.0)
    for step in range(1, 10):
        tracker.packet_received(now=step * 0.02)
    assert tracker.get_timer() == pytest.approx(60.18)
    tracker.handle_timer(now=30.0)
    assert tracker.next_event() is None
    tracker.handle_timer(now=60.18)
    event = tracker.next_event()
    assert event is not None and event.at == 60.18
    assert event.silent_for == pytest.approx(60.0)
    assert "no RTP" in event.reason
    assert tracker.get_timer() is None and tracker.next_event() is None


def test_media_timeout_default_is_60_seconds_and_suspends_on_hold() -> None:
    tracker = MediaTimeout(now=10.0)
    assert tracker.get_timer() == 70.0
    tracker.suspend()
    tracker.handle_timer(now=500.0)
    assert tracker.get_timer() is None and tracker.next_event() is None
    tracker.resume(now=500.0)
    assert tracker.get_timer() == 560.0
