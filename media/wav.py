"""WAV files for prompts and voicemail: 8 kHz, mono, 16-bit little-endian PCM only.

Parsing uses the standard library's `wave` module on in-memory bytes; every way it can
fail is turned into WavError so that a bad prompt file is reported, not a traceback.
"""

from __future__ import annotations

import io
import struct
import wave

__all__ = ["CHANNELS", "SAMPLE_RATE", "SAMPLE_WIDTH", "WavError", "read_wav", "write_wav"]

SAMPLE_RATE = 8000
CHANNELS = 1
SAMPLE_WIDTH = 2


# What `wave` raises on corrupt input, found by fuzzing truncated and mutated headers
# (a chunk size pointing past the end makes it raise a bare RuntimeError).
_WAVE_FAILURES = (
    wave.Error, EOFError, ValueError, OSError, RuntimeError, struct.error, ZeroDivisionError,
    OverflowError, MemoryError,
)  # fmt: skip


class WavError(ValueError):
    """Not a WAV file, or not in the one format we play and record."""


def read_wav(data: bytes) -> bytes:
    """The PCM frames of an 8 kHz mono 16-bit PCM WAV file."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate = reader.getframerate()
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            pcm = reader.readframes(reader.getnframes())
    except _WAVE_FAILURES as exc:
        raise WavError(f"not a readable PCM WAV file: {exc}") from exc
    problems = []
    if rate != SAMPLE_RATE:
        problems.append(f"sample rate {rate} Hz (need {SAMPLE_RATE})")
    if channels != CHANNELS:
        problems.append(f"{channels} channels (need mono)")
    if width != SAMPLE_WIDTH:
        problems.append(f"{8 * width}-bit samples (need 16-bit)")
    if problems:
        raise WavError("unsupported WAV format: " + ", ".join(problems))
    return pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]  # a truncated file may end mid-sample


def write_wav(pcm: bytes) -> bytes:
    """An 8 kHz mono 16-bit WAV file holding `pcm` (16-bit little-endian samples)."""
    if len(pcm) % SAMPLE_WIDTH:
        raise WavError("PCM length is not a whole number of 16-bit samples")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(CHANNELS)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm)
    return buffer.getvalue()
