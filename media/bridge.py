"""Two-leg media relay: the B2BUA anchors media between the caller and the operator.

Each direction is a `Relay`. A packet from one leg is re-stamped with the SSRC, sequence
numbers and timestamps of the other leg's RtpSender, so that the far end sees one
continuous stream from us across prompts, hold music and bridging (RFC 3550 §8.2: a
translator that changes the media must change the SSRC). Offsets keep the source's gaps
and reordering visible to the far end's jitter buffer.

- Same codec on both legs: pass-through, one copy and one header rewrite per packet.
- Different codecs: decode with the source leg's codec, encode with the target's.
- RFC 4733 telephone-event: passed through, re-mapped to the target's event payload type
  (dropped when the target negotiated none).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from media.rtp import HEADER, RtpError, RtpSender, payload_bounds
from media.session import MediaParams

__all__ = ["Bridge", "LegFormat", "PcmCodec", "Relay"]

_TAIL = struct.Struct("!BHII")  # M/PT, sequence number, timestamp, SSRC at offset 1


class PcmCodec(Protocol):
    """A codec for transcoding: 16-bit little-endian mono 8 kHz PCM <-> payload bytes.

    media.g711.G711Codec and media.g729.G729Codec fit it. One instance per leg: its
    decoder serves packets from that leg and its encoder packets to it, so stateful
    codecs (G.729) keep one state per direction. Errors must be ValueError subclasses.
    """

    def encode(self, pcm: bytes) -> bytes: ...

    def decode(self, payload: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LegFormat:
    """How one leg's media is numbered and coded (from its offer/answer)."""

    codec_name: str
    payload_type: int
    receive_payload_type: int
    telephone_event_pt: int | None = None
    receive_telephone_event_pt: int | None = None
    codec: PcmCodec | None = None

    @classmethod
    def from_params(cls, params: MediaParams, codec: PcmCodec | None = None) -> LegFormat:
        return cls(
            codec_name=params.codec.name.upper(),
            payload_type=params.codec.payload_type,
            receive_payload_type=params.receive_payload_type,
            telephone_event_pt=params.telephone_event_pt,
            receive_telephone_event_pt=params.receive_telephone_event_pt,
            codec=codec,
        )


class Relay:
    """Packets arriving on leg `source`, rewritten for leg `target` through `sender`.

    The sender's sequence number and timestamp are synchronised back when the source
    changes SSRC and on `detach()`, so that prompts played after the bridge continue the
    same numbering.
    """

    __slots__ = ("_decoder", "_encoder", "_in_event", "_in_pt", "_in_ssrc", "_last_seq",
                 "_last_ts", "_mark", "_out_event", "_out_pt", "_seq_offset", "_ts_offset",
                 "dropped", "sender", "transcoding")  # fmt: skip

    def __init__(self, *, source: LegFormat, target: LegFormat, sender: RtpSender) -> None:
        self.sender = sender
        self._in_pt = source.receive_payload_type
        self._out_pt = target.payload_type
        self._in_event = source.receive_telephone_event_pt
        self._out_event = target.telephone_event_pt
        self.transcoding = source.codec_name != target.codec_name
        if self.transcoding and (source.codec is None or target.codec is None):
            raise ValueError(f"transcoding {source.codec_name} to {target.codec_name} needs codecs")
        self._decoder = source.codec if self.transcoding else None
        self._encoder = target.codec if self.transcoding else None
        self._in_ssrc: int | None = None
        self._seq_offset = self._ts_offset = self._last_seq = self._last_ts = 0
        self._mark = False
        self.dropped = 0

    def relay(self, data: bytes) -> bytes | bytearray | None:
        """The packet to send to the target leg, or None when it must be dropped.

        `data` should already have passed RtpReceiver validation; anything else is dropped.
        """
        if len(data) < 12:
            self.dropped += 1
            return None
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if ssrc != self._in_ssrc:
            self._anchor(ssrc, seq, ts)
        pt = second & 0x7F
        if pt == self._in_pt:
            out_pt = self._out_pt
        elif pt == self._in_event and self._out_event is not None:
            out_pt = self._out_event
        else:
            self.dropped += 1
            return None
        seq = (seq + self._seq_offset) & 0xFFFF
        ts = (ts + self._ts_offset) & 0xFFFFFFFF
        self._last_seq, self._last_ts = seq, ts
        if self._mark and out_pt == self._out_pt:
            second, self._mark = second | 0x80, False  # the far end sees a timing jump
        second = (second & 0x80) | out_pt
        if first == 0x80 and not (self.transcoding and pt == self._in_pt):
            out = bytearray(data)
            _TAIL.pack_into(out, 1, second, seq, ts, self.sender.ssrc)
            return out
        return self._rebuild(data, pt, second, seq, ts)

    def _rebuild(self, data: bytes, pt: int, second: int, seq: int, ts: int) -> bytes | None:
        """Slow path: strip CSRC/extension/padding, transcode when the codecs differ."""
        try:
            start, end = payload_bounds(data)
        except RtpError:
            self.dropped += 1
            return None
        payload = data[start:end]
        if pt == self._in_pt and self._decoder is not None and self._encoder is not None:
            try:
                payload = self._encoder.encode(self._decoder.decode(payload))
            except ValueError:  # the codecs' errors (G711Error, G729Error) for a bad payload
                self.dropped += 1
                return None
            if not payload:  # DTX: the encoder chose to send nothing
                return None
        return HEADER.pack(0x80, second, seq, ts, self.sender.ssrc) + payload

    def _anchor(self, ssrc: int, seq: int, ts: int) -> None:
        """A new source: continue from where the target stream stands, marked as a jump."""
        if self._in_ssrc is not None:
            self.detach()
        self._in_ssrc = ssrc
        self._seq_offset = (self.sender.sequence_number - seq) & 0xFFFF
        self._ts_offset = (self.sender.timestamp - ts) & 0xFFFFFFFF
        # Until a packet is relayed, detach() must leave the sender exactly as it was.
        self._last_seq = (self.sender.sequence_number - 1) & 0xFFFF
        self._last_ts = (self.sender.timestamp - 160) & 0xFFFFFFFF
        self._mark = True

    def detach(self) -> None:
        """Hand the numbering back to the sender (the bridge ends or the source changed).

        The sender continues one 20 ms frame after the last relayed packet, as the first
        packet of a new talkspurt.
        """
        if self._in_ssrc is None:
            return
        self.sender.sequence_number = (self._last_seq + 1) & 0xFFFF
        self.sender.timestamp = self._last_ts
        self.sender.skip(160)
        self._in_ssrc = None


class Bridge:
    """Both directions of a bridged call: caller leg `a` and operator leg `b`."""

    __slots__ = ("a_to_b", "b_to_a")

    def __init__(
        self, *, a: LegFormat, b: LegFormat, sender_a: RtpSender, sender_b: RtpSender
    ) -> None:
        self.a_to_b = Relay(source=a, target=b, sender=sender_b)
        self.b_to_a = Relay(source=b, target=a, sender=sender_a)

    def from_a(self, data: bytes) -> bytes | bytearray | None:
        """A packet from the caller, rewritten for the operator."""
        return self.a_to_b.relay(data)

    def from_b(self, data: bytes) -> bytes | bytearray | None:
        """A packet from the operator, rewritten for the caller."""
        return self.b_to_a.relay(data)

    def detach(self) -> None:
        self.a_to_b.detach()
        self.b_to_a.detach()
