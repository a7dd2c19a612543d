"""G.729 (ITU-T G.729 / Annex B) through Debian's libbcg729 via ctypes.

RTP framing follows RFC 3551 §4.5.6: a payload holds zero or more 10-byte frames of
10 ms each, "followed by zero or one G.729 Annex B frames"; the 2-byte Annex B SID
(comfort noise) frame is recognised by the payload length. At ptime 20 a packet holds
two frames (20 bytes for 320 bytes of 16-bit LE PCM at 8 kHz).

Every call leg owns its own encoder and decoder contexts (the codec is stateful).
Contexts are released by `close()` or by leaving a ``with`` block; a finalizer frees
them if an object is dropped unclosed, so a crashed call never leaks C memory.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

__all__ = [
    "FRAME_BYTES",
    "FRAME_PCM_BYTES",
    "LIBRARY_NAME",
    "SID_BYTES",
    "G729Codec",
    "G729Decoder",
    "G729Encoder",
    "G729Error",
    "G729Library",
    "G729Unavailable",
    "load_g729",
    "open_g729",
    "split_payload",
]

logger = logging.getLogger(__name__)

LIBRARY_NAME: Final = "libbcg729.so.0"
FRAME_SAMPLES: Final = 80
FRAME_PCM_BYTES: Final = 2 * FRAME_SAMPLES
FRAME_BYTES: Final = 10
SID_BYTES: Final = 2
_BIG_ENDIAN: Final = sys.byteorder == "big"

_Int16Frame = ctypes.c_int16 * FRAME_SAMPLES
_Bits = ctypes.c_char * FRAME_BYTES


class G729Error(ValueError):
    """A malformed G.729 payload or PCM block, or use of a closed channel."""


class G729Unavailable(RuntimeError):  # noqa: N818 - it reads as a condition, like Timeout
    """libbcg729 cannot be used; `reason` says why (logged as "G.729 not offered")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_payload(payload: bytes) -> tuple[list[bytes], bytes | None]:
    """Split an RTP payload into 10-byte speech frames and an optional trailing SID.

    RFC 3551 §4.5.6: the presence of a comfort-noise frame "can be deduced from the
    length of the RTP payload".
    """
    speech_len = len(payload) - len(payload) % FRAME_BYTES
    tail = payload[speech_len:]
    if tail and len(tail) != SID_BYTES:
        raise G729Error(f"G.729 payload of {len(payload)} bytes is not 10*N or 10*N+2")
    frames = [payload[i : i + FRAME_BYTES] for i in range(0, speech_len, FRAME_BYTES)]
    return frames, tail or None


def _frames_of(pcm: bytes) -> list[bytes]:
    if not pcm or len(pcm) % FRAME_PCM_BYTES:
        raise G729Error(f"PCM length {len(pcm)} is not a multiple of 160 bytes (10 ms)")
    if _BIG_ENDIAN:
        swapped = bytearray(pcm)
        swapped[0::2], swapped[1::2] = pcm[1::2], pcm[0::2]
        pcm = bytes(swapped)
    return [pcm[i : i + FRAME_PCM_BYTES] for i in range(0, len(pcm), FRAME_PCM_BYTES)]


def _to_le(frame: ctypes.Array[ctypes.c_int16]) -> bytes:
    raw = bytes(frame)
    if _BIG_ENDIAN:
        swapped = bytearray(raw)
        swapped[0::2], swapped[1::2] = raw[1::2], raw[0::2]
        raw = bytes(swapped)
    return raw


class _Channel:
    """Owns one C context and frees it exactly once (close, ``with`` or finalizer)."""

    def __init__(self, context: int | None, release: Callable[[int], None]) -> None:
        if not context:
            raise G729Error("libbcg729 could not allocate a channel")
        self._context: int | None = context
        # The finalizer holds the C function, never self (or self would never be freed).
        self._finalizer = weakref.finalize(self, release, context)

    @property
    def closed(self) -> bool:
        return self._context is None

    def close(self) -> None:
        """Free the C context; further use raises `G729Error`. Idempotent."""
        self._context = None
        self._finalizer()

    def _live_context(self) -> int:
        if self._context is None:
            raise G729Error("G.729 channel is closed")
        return self._context

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class G729Encoder(_Channel):
    """One encoder channel; with ``vad=True`` it emits Annex B SID frames or nothing."""

    def __init__(self, library: G729Library, *, vad: bool = False) -> None:
        self._lib = library.cdll
        context = self._lib.initBcg729EncoderChannel(int(vad))
        super().__init__(context, self._lib.closeBcg729EncoderChannel)
        self._bits = _Bits()
        self._length = ctypes.c_uint8()

    def encode_frames(self, pcm: bytes) -> list[bytes]:
        """Encode N×10 ms of PCM; each frame is 10 bytes, 2 (SID) or 0 (not sent, DTX)."""
        context = self._live_context()
        out: list[bytes] = []
        for frame in _frames_of(pcm):
            self._lib.bcg729Encoder(context, frame, self._bits, ctypes.byref(self._length))
            out.append(self._bits.raw[: self._length.value])
        return out

    def encode(self, pcm: bytes) -> bytes:
        """Encode PCM to one RTP payload: speech frames, then at most one SID.

        RFC 3551 §4.5.6 allows the SID only last, so a SID followed by speech in the same
        packet is dropped (the speech supersedes it). An empty result means "send nothing".
        """
        frames = self.encode_frames(pcm)
        speech = b"".join(f for f in frames if len(f) == FRAME_BYTES)
        last = next((f for f in reversed(frames) if f), b"")
        return speech + last if len(last) == SID_BYTES else speech


class G729Decoder(_Channel):
    """One decoder channel: speech frames, SID (comfort noise) and erasures."""

    def __init__(self, library: G729Library) -> None:
        self._lib = library.cdll
        super().__init__(self._lib.initBcg729DecoderChannel(), self._lib.closeBcg729DecoderChannel)
        self._pcm = _Int16Frame()

    def _run(self, bits: bytes | None, *, erasure: bool, sid: bool) -> bytes:
        length = len(bits) if bits else 0
        self._lib.bcg729Decoder(
            self._live_context(), bits, length, int(erasure), int(sid), 0, self._pcm
        )
        return _to_le(self._pcm)

    def decode(self, payload: bytes) -> bytes:
        """Decode one RTP payload to 16-bit LE PCM (160 bytes per 10 ms frame)."""
        frames, sid = split_payload(payload)
        pcm = [self._run(frame, erasure=False, sid=False) for frame in frames]
        if sid is not None:
            pcm.append(self._run(sid, erasure=False, sid=True))
        return b"".join(pcm)

    def conceal(self, frames: int = 2) -> bytes:
        """PCM for lost or untransmitted frames (G.729 §4.4 erasure concealment).

        After a SID the decoder keeps generating comfort noise (Annex B DTX); after
        speech it extrapolates the last frames and fades out.
        """
        if frames < 0:
            raise G729Error("frame count must be non-negative")
        return b"".join(self._run(None, erasure=True, sid=False) for _ in range(frames))


class G729Codec:
    """An encoder and a decoder for one call leg, with the RTP/AVP identity (PT 18)."""

    name: Final = "G729"
    payload_type: Final = 18
    clock_rate: Final = 8000

    def __init__(self, library: G729Library, *, vad: bool = False) -> None:
        self.encoder = G729Encoder(library, vad=vad)
        self.decoder = G729Decoder(library)

    def encode(self, pcm: bytes) -> bytes:
        return self.encoder.encode(pcm)

    def decode(self, payload: bytes) -> bytes:
        return self.decoder.decode(payload)

    def conceal(self, frames: int = 2) -> bytes:
        return self.decoder.conceal(frames)

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class G729Library:
    """The loaded libbcg729 with its C signatures declared."""

    def __init__(self, cdll: ctypes.CDLL) -> None:
        self.cdll = cdll
        _declare(cdll)

    def encoder(self, *, vad: bool = False) -> G729Encoder:
        return G729Encoder(self, vad=vad)

    def decoder(self) -> G729Decoder:
        return G729Decoder(self)

    def codec(self, *, vad: bool = False) -> G729Codec:
        return G729Codec(self, vad=vad)


def _declare(cdll: ctypes.CDLL) -> None:
    """Signatures from bcg729's public header (encoder.h, decoder.h)."""
    u8, ptr = ctypes.c_uint8, ctypes.c_void_p
    cdll.initBcg729EncoderChannel.argtypes = [u8]
    cdll.initBcg729EncoderChannel.restype = ptr
    cdll.closeBcg729EncoderChannel.argtypes = [ptr]
    cdll.closeBcg729EncoderChannel.restype = None
    cdll.bcg729Encoder.argtypes = [ptr, ctypes.c_char_p, _Bits, ctypes.POINTER(u8)]
    cdll.bcg729Encoder.restype = None
    cdll.initBcg729DecoderChannel.argtypes = []
    cdll.initBcg729DecoderChannel.restype = ptr
    cdll.closeBcg729DecoderChannel.argtypes = [ptr]
    cdll.closeBcg729DecoderChannel.restype = None
    cdll.bcg729Decoder.argtypes = [ptr, ctypes.c_char_p, u8, u8, u8, u8, _Int16Frame]
    cdll.bcg729Decoder.restype = None


def open_g729(name: str = LIBRARY_NAME) -> G729Library:
    """Load libbcg729 or raise `G729Unavailable` with the reason."""
    try:
        cdll = ctypes.CDLL(name)
    except OSError as exc:
        raise G729Unavailable(f"cannot load {name} (install libbcg729-0): {exc}") from exc
    try:
        return G729Library(cdll)
    except AttributeError as exc:
        raise G729Unavailable(f"{name} lacks the bcg729 API: {exc}") from exc


def load_g729(name: str = LIBRARY_NAME) -> G729Library | None:
    """Load libbcg729, or log "G.729 not offered: <reason>" and return None."""
    try:
        return open_g729(name)
    except G729Unavailable as exc:
        logger.warning("G.729 not offered: %s", exc.reason)
        return None
