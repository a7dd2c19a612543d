"""G.711 µ-law (PCMU) and A-law (PCMA) codecs (ITU-T G.711; RFC 3551 §4.5.14).

Audio inside Centralino is 16-bit little-endian signed mono PCM at 8 kHz. The
conversion runs in C: the standard library's ``audioop`` on Python 3.11/3.12 and the
``audioop-lts`` backport (same import name) on Python 3.13 and later.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Final, Literal, Protocol

with warnings.catch_warnings():
    # audioop is deprecated on 3.11/3.12 only because it moved to PyPI (audioop-lts);
    # the warning says nothing we can act on.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "PCMA",
    "PCMU",
    "AudioCodec",
    "G711Codec",
    "G711Error",
    "alaw_to_linear",
    "linear_to_alaw",
    "linear_to_ulaw",
    "ulaw_to_linear",
]

SAMPLE_WIDTH: Final = 2
_BIG_ENDIAN: Final = sys.byteorder == "big"


class G711Error(ValueError):
    """Raised for PCM input that is not whole 16-bit samples."""


class AudioCodec(Protocol):
    """What the RTP layer needs from a codec: RTP/AVP identity and two conversions."""

    @property
    def name(self) -> str: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def clock_rate(self) -> int: ...
    def encode(self, pcm: bytes) -> bytes: ...
    def decode(self, payload: bytes) -> bytes: ...


def _native(pcm: bytes) -> bytes:
    """audioop works on native-endian samples; our PCM is little-endian."""
    return audioop.byteswap(pcm, SAMPLE_WIDTH) if _BIG_ENDIAN else pcm


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise G711Error(f"PCM length {len(pcm)} is not a whole number of 16-bit samples")


def linear_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit LE PCM to µ-law, one byte per sample."""
    _check_pcm(pcm)
    return audioop.lin2ulaw(_native(pcm), SAMPLE_WIDTH)


def ulaw_to_linear(payload: bytes) -> bytes:
    """Decode µ-law bytes to 16-bit LE PCM."""
    return _native(audioop.ulaw2lin(payload, SAMPLE_WIDTH))


def linear_to_alaw(pcm: bytes) -> bytes:
    """Encode 16-bit LE PCM to A-law, one byte per sample (even bits inverted)."""
    _check_pcm(pcm)
    return audioop.lin2alaw(_native(pcm), SAMPLE_WIDTH)


def alaw_to_linear(payload: bytes) -> bytes:
    """Decode A-law bytes to 16-bit LE PCM."""
    return _native(audioop.alaw2lin(payload, SAMPLE_WIDTH))


@dataclass(frozen=True, slots=True)
class G711Codec:
    """A stateless G.711 codec with its static RTP/AVP payload type (RFC 3551 Table 4).

    G.711 keeps no state between packets, so one instance serves every call.
    """

    name: str
    payload_type: int
    clock_rate: int
    law: Literal["ulaw", "alaw"]

    def encode(self, pcm: bytes) -> bytes:
        """16-bit LE PCM to one RTP payload; raises `G711Error` on an odd byte count."""
        return linear_to_ulaw(pcm) if self.law == "ulaw" else linear_to_alaw(pcm)

    def decode(self, payload: bytes) -> bytes:
        """One RTP payload to 16-bit LE PCM (every byte is a valid code)."""
        return ulaw_to_linear(payload) if self.law == "ulaw" else alaw_to_linear(payload)


PCMU: Final = G711Codec(name="PCMU", payload_type=0, clock_rate=8000, law="ulaw")
PCMA: Final = G711Codec(name="PCMA", payload_type=8, clock_rate=8000, law="alaw")
