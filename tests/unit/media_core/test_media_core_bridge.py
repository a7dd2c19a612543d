"""The two-leg relay: re-stamping, pass-through, transcoding, RFC 4733 re-mapping."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from media import g711
from media.bridge import Bridge, LegFormat, Relay
from media.rtp import RtpPacket, RtpSender, build_rtp, parse_rtp
from media.sdp import Direction
from media.session import PCMU, MediaParams


class ByteCodec:
    """A fake codec: each payload byte b is the PCM sample b*256 (little-endian)."""

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def decode(self, payload: bytes) -> bytes:
        if len(payload) % 2:
            raise ValueError("odd payload")
        return b"".join(bytes([0, b ^ self.tag]) for b in payload)

    def encode(self, pcm: bytes) -> bytes:
        return bytes(pcm[i + 1] ^ self.tag for i in range(0, len(pcm), 2))


def sender(seq: int = 1000, ts: int = 50_000, ssrc: int = 0xB0B0B0B0) -> RtpSender:
    values = iter([ssrc, seq, ts])
    return RtpSender(payload_type=0, random_bits=lambda k: next(values))


def packet(seq: int, ts: int, *, pt: int = 0, ssrc: int = 0xAAAA, marker: bool = False,
           payload: bytes = b"\x01\x02" * 80, **extra: object) -> bytes:  # fmt: skip
    return build_rtp(
        RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc,
                  marker=marker, payload=payload, **extra)  # type: ignore[arg-type]
    )  # fmt: skip


PCMU_LEG = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0,
                     telephone_event_pt=101, receive_telephone_event_pt=101)  # fmt: skip


def test_pass_through_rewrites_ssrc_sequence_and_timestamp_keeping_gaps() -> None:
    out_sender = sender()
    relay = Relay(source=PCMU_LEG, target=PCMU_LEG, sender=out_sender)
    arrivals = [(65534, 1000), (65535, 1160), (1, 1480), (0, 1320)]  # wrap, loss, reorder
    out = [parse_rtp(bytes(relay.relay(packet(s, t)) or b"")) for s, t in arrivals]
    assert [p.sequence_number for p in out] == [1000, 1001, 1003, 1002]
    assert [p.timestamp for p in out] == [50_000, 50_160, 50_480, 50_320]
    assert {p.ssrc for p in out} == {0xB0B0B0B0}
    assert [p.marker for p in out] == [True, False, False, False]  # a jump for the far end
    assert all(p.payload == b"\x01\x02" * 80 for p in out)
    assert not relay.transcoding


def test_new_source_ssrc_continues_the_target_stream() -> None:
    out_sender = sender()
    relay = Relay(source=PCMU_LEG, target=PCMU_LEG, sender=out_sender)
    relay.relay(packet(10, 100))
    relay.relay(packet(11, 260))
    moved = parse_rtp(bytes(relay.relay(packet(500, 9_000_000, ssrc=0xCCCC)) or b""))
    assert (moved.sequence_number, moved.timestamp, moved.marker) == (1002, 50_320, True)


def test_detach_hands_the_numbering_back_for_prompts_after_the_bridge() -> None:
    out_sender = sender()
    relay = Relay(source=PCMU_LEG, target=PCMU_LEG, sender=out_sender)
    relay.detach()  # nothing relayed: the sender is untouched
    assert (out_sender.sequence_number, out_sender.timestamp) == (1000, 50_000)
    for i in range(3):
        relay.relay(packet(i, i * 160))
    relay.detach()
    prompt = parse_rtp(out_sender.frame(b"\xff" * 160))
    assert (prompt.sequence_number, prompt.timestamp, prompt.marker) == (1003, 50_480, True)


def test_telephone_events_are_remapped_to_the_targets_payload_type() -> None:
    source = LegFormat(codec_name="PCMA", payload_type=8, receive_payload_type=8,
                       telephone_event_pt=96, receive_telephone_event_pt=96,
                       codec=ByteCodec(0))  # fmt: skip
    target = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0,
                       telephone_event_pt=101, receive_telephone_event_pt=100,
                       codec=ByteCodec(0))  # fmt: skip
    relay = Relay(source=source, target=target, sender=sender())
    event = b"\x05\x0a\x00\xa0"
    out = parse_rtp(bytes(relay.relay(packet(7, 800, pt=96, marker=True, payload=event)) or b""))
    assert (out.payload_type, out.payload, out.marker, out.timestamp) == (101, event, True, 50_000)
    update = parse_rtp(bytes(relay.relay(packet(8, 800, pt=96, payload=event)) or b""))
    assert (update.payload_type, update.marker, update.timestamp) == (101, False, 50_000)
    assert relay.relay(packet(9, 800, pt=101, payload=event)) is None  # not its DTMF type
    assert relay.dropped == 1


def test_events_are_dropped_when_the_target_has_no_telephone_event() -> None:
    target = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0)
    relay = Relay(source=PCMU_LEG, target=target, sender=sender())
    assert relay.relay(packet(1, 0, pt=101, payload=b"\x01\x0a\x00\xa0")) is None
    assert relay.relay(packet(2, 160, pt=13, payload=b"\x40")) is None  # comfort noise
    assert relay.relay(b"\x80\x00") is None
    assert relay.dropped == 3


def test_transcoding_decodes_with_the_source_and_encodes_with_the_target() -> None:
    trunk = LegFormat(codec_name="G729", payload_type=18, receive_payload_type=18,
                      codec=ByteCodec(0x0F))  # fmt: skip
    operator = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0,
                         codec=ByteCodec(0xF0))  # fmt: skip
    relay = Relay(source=trunk, target=operator, sender=sender())
    assert relay.transcoding
    out = parse_rtp(bytes(relay.relay(packet(3, 480, pt=18, payload=b"\x00\x0f")) or b""))
    assert out.payload == bytes([0x00 ^ 0x0F ^ 0xF0, 0x0F ^ 0x0F ^ 0xF0])
    assert (out.payload_type, out.sequence_number, out.timestamp) == (0, 1000, 50_000)
    assert relay.relay(packet(4, 640, pt=18, payload=b"\x01")) is None  # codec error: dropped
    assert relay.dropped == 1


def test_csrc_extension_and_padding_are_stripped_on_the_way_through() -> None:
    relay = Relay(source=PCMU_LEG, target=PCMU_LEG, sender=sender())
    data = packet(5, 0, csrc=(1, 2), extension_profile=0xBEDE, extension=b"abcd", padding=3)
    out = parse_rtp(bytes(relay.relay(data) or b""))
    assert (out.csrc, out.extension_profile, out.padding) == ((), None, 0)
    assert out.payload == b"\x01\x02" * 80


def test_bridge_wires_both_directions_from_negotiated_params() -> None:
    def params(event_pt: int) -> MediaParams:
        return MediaParams(codec=PCMU, receive_payload_type=0, telephone_event_pt=event_pt,
                           receive_telephone_event_pt=event_pt, remote_addr="192.0.2.1",
                           remote_port=4000, direction=Direction.SENDRECV)  # fmt: skip

    sender_a, sender_b = sender(ssrc=0xA), sender(ssrc=0xB)
    bridge = Bridge(a=LegFormat.from_params(params(96)), b=LegFormat.from_params(params(101)),
                    sender_a=sender_a, sender_b=sender_b)  # fmt: skip
    to_b = parse_rtp(bytes(bridge.from_a(packet(1, 0, pt=96, payload=b"\x01\x0a\x00\xa0")) or b""))
    to_a = parse_rtp(bytes(bridge.from_b(packet(1, 0, pt=101, payload=b"\x01\x0a\x00\xa0")) or b""))
    assert (to_b.ssrc, to_b.payload_type, to_a.ssrc, to_a.payload_type) == (0xB, 101, 0xA, 96)
    bridge.from_a(packet(2, 160))
    bridge.detach()
    assert sender_b.sequence_number == 1002


def test_real_g711_codecs_fit_the_protocol_and_transcode_pcma_to_pcmu() -> None:
    """media.g711's codecs plug into the bridge's PcmCodec protocol unchanged."""
    pcm = struct.pack("<160h", *(int(8000 * math.sin(i / 5)) for i in range(160)))
    trunk = LegFormat(codec_name="PCMA", payload_type=8, receive_payload_type=8, codec=g711.PCMA)
    phone = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0, codec=g711.PCMU)
    relay = Relay(source=trunk, target=phone, sender=sender())
    out = parse_rtp(bytes(relay.relay(packet(1, 0, pt=8, payload=g711.PCMA.encode(pcm))) or b""))
    assert out.payload_type == 0 and len(out.payload) == 160
    heard = struct.unpack("<160h", g711.PCMU.decode(out.payload))
    sent = struct.unpack("<160h", pcm)
    assert max(abs(a - b) for a, b in zip(heard, sent, strict=True)) < 600  # two log quantisers


@given(
    streams=st.lists(
        st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), st.integers(1, 40)),
        min_size=1,
        max_size=6,
    ),
    start_seq=st.integers(0, 0xFFFF),
    start_ts=st.integers(0, 0xFFFFFFFF),
)
def test_the_far_end_sees_one_gapless_stream_across_source_changes(
    streams: list[tuple[int, int, int]], start_seq: int, start_ts: int
) -> None:
    relay = Relay(source=PCMU_LEG, target=PCMU_LEG, sender=sender(start_seq, start_ts))
    out = []
    for index, (ts0, seq0, count) in enumerate(streams):
        for i in range(count):
            data = packet((seq0 + i) & 0xFFFF, (ts0 + 160 * i) & 0xFFFFFFFF, ssrc=index)
            out.append(parse_rtp(bytes(relay.relay(data) or b"")))
    total = sum(count for _, _, count in streams)
    assert [p.sequence_number for p in out] == [(start_seq + i) & 0xFFFF for i in range(total)]
    assert [p.timestamp for p in out] == [(start_ts + 160 * i) & 0xFFFFFFFF for i in range(total)]
    assert sum(p.marker for p in out) == len(streams)
