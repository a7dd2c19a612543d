"""In-band DTMF detection on 8 kHz 16-bit LE PCM (ITU-T Q.23 tones, Q.24 limits).

For callers whose trunk offers no RFC 4733 telephone-event. Each 10 ms block is
measured at the eight DTMF frequencies. A block is a hit for a key when one row and
one column tone stand out:

- each is at least ``min_level_dbm0`` (signal too weak otherwise);
- each is 6 dB above the other tones of its group (relative peak);
- the twist is at most 8 dB normal (column weaker) or 4 dB reverse (column stronger);
- the two tones carry at least 70 % of the block energy (speech, music and noise
  spread their energy; a block only partly covered by a tone fails this too).

A key needs three consecutive hits (a 40 ms tone covers at least three whole 10 ms
blocks; a tone under about 25 ms never does), and ends after two blocks without it, so
a one-block drop-out inside a press does not split it (debounce). The key is reported
once, when it ends, as `DigitReceived` with its duration.

The power at each frequency is the single-bin DFT that the Goertzel recursion computes
(`goertzel_power` is that recursion, kept as the reference). The detector gets the same
value from two correlations against precomputed cosine and sine blocks done in C by
``audioop.findfactor`` (which returns <x,r>/<r,r>), about eight times faster than a Python
loop: a detector runs on every packet of a call.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from media.telephone_event import DigitReceived

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "COLUMN_FREQUENCIES",
    "KEYPAD",
    "ROW_FREQUENCIES",
    "DtmfDetector",
    "goertzel_power",
]

SAMPLE_RATE: Final = 8000
ROW_FREQUENCIES: Final = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES: Final = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")
#: A 0 dBm0 sine peaks at about 22,300 in 16-bit linear (G.711 full scale is +3.17 dBm0).
DBM0_PEAK: Final = 22_300.0
_BLOCK_MS: Final = 10
_BLOCK_SAMPLES: Final = SAMPLE_RATE * _BLOCK_MS // 1000
_REFERENCE_PEAK: Final = 32_767
_BIG_ENDIAN: Final = sys.byteorder == "big"


def goertzel_power(samples: Sequence[float], frequency: float, rate: int = SAMPLE_RATE) -> float:
    """|X(f)|^2 of ``samples`` at ``frequency`` by the Goertzel recursion."""
    omega = 2.0 * math.pi * frequency / rate
    coefficient = 2.0 * math.cos(omega)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample + coefficient * previous - before, previous
    return previous * previous + before * before - coefficient * previous * before


@dataclass(frozen=True, slots=True)
class _Bin:
    """Cosine and sine reference blocks at one frequency, as native 16-bit PCM."""

    cosine: bytes
    sine: bytes
    cosine_energy: float
    sine_energy: float

    @classmethod
    def at(cls, frequency: float) -> _Bin:
        omega = 2.0 * math.pi * frequency / SAMPLE_RATE
        cos = [round(_REFERENCE_PEAK * math.cos(omega * n)) for n in range(_BLOCK_SAMPLES)]
        sin = [round(_REFERENCE_PEAK * math.sin(omega * n)) for n in range(_BLOCK_SAMPLES)]
        return cls(
            cosine=_pack(cos),
            sine=_pack(sin),
            cosine_energy=float(sum(v * v for v in cos)),
            sine_energy=float(sum(v * v for v in sin)),
        )

    def power(self, block: bytes) -> float:
        """The energy of the sine at this frequency in ``block`` (in sample-squared units).

        |X|^2 rescaled by 2/N, so that a sine of peak A over the whole block gives its own
        energy A^2 N / 2 and can be compared with the block energy.
        """
        real = audioop.findfactor(block, self.cosine) * self.cosine_energy
        imaginary = audioop.findfactor(block, self.sine) * self.sine_energy
        scale = 2.0 / (_BLOCK_SAMPLES * _REFERENCE_PEAK * _REFERENCE_PEAK)
        return (real * real + imaginary * imaginary) * scale


def _pack(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(2, sys.byteorder, signed=True) for v in values)


_ROW_BINS: Final = tuple(_Bin.at(f) for f in ROW_FREQUENCIES)
_COLUMN_BINS: Final = tuple(_Bin.at(f) for f in COLUMN_FREQUENCIES)


def _db(ratio_db: float) -> float:
    return float(10.0 ** (ratio_db / 10.0))


def _strongest(powers: list[float], peak_ratio: float) -> int | None:
    """Index of the tone that exceeds every other of its group by ``peak_ratio``."""
    ranked = sorted(powers)
    return powers.index(ranked[-1]) if ranked[-1] >= peak_ratio * ranked[-2] else None


class DtmfDetector:
    """Sans-I/O in-band DTMF detector: ``feed(pcm, now=...)`` returns finished key presses."""

    def __init__(
        self,
        *,
        min_level_dbm0: float = -33.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        relative_peak_db: float = 6.0,
        min_tone_share: float = 0.7,
        min_on_blocks: int = 3,
        min_off_blocks: int = 2,
    ) -> None:
        peak = DBM0_PEAK * 10.0 ** (min_level_dbm0 / 20.0)
        self._min_power = peak * peak * _BLOCK_SAMPLES / 2.0
        self._normal_twist = _db(normal_twist_db)
        self._reverse_twist = _db(reverse_twist_db)
        self._peak_ratio = _db(relative_peak_db)
        self._min_share = min_tone_share
        self._min_on = min_on_blocks
        self._min_off = min_off_blocks
        self._pending = b""
        self._candidate: str | None = None
        self._run = 0
        self._down: str | None = None
        self._down_blocks = 0
        self._misses = 0

    def feed(self, pcm: bytes, *, now: float) -> list[DigitReceived]:
        """Append PCM (any length) and return the key presses that ended in it."""
        data = self._pending + pcm
        whole = len(data) - len(data) % (2 * _BLOCK_SAMPLES)
        self._pending = data[whole:]
        found: list[DigitReceived] = []
        for start in range(0, whole, 2 * _BLOCK_SAMPLES):
            block = data[start : start + 2 * _BLOCK_SAMPLES]
            if _BIG_ENDIAN:
                block = audioop.byteswap(block, 2)
            ended = self._on_block(self.classify(block), now)
            if ended is not None:
                found.append(ended)
        return found

    def flush(self, *, now: float) -> list[DigitReceived]:
        """End of the stream (hang-up): report a key still held down."""
        ended = self._release(now)
        self._pending, self._candidate, self._run = b"", None, 0
        return [] if ended is None else [ended]

    def classify(self, block: bytes) -> str | None:
        """The key whose two tones dominate one 10 ms block of native PCM, or None."""
        energy = float(audioop.rms(block, 2)) ** 2 * _BLOCK_SAMPLES
        if energy < 2 * self._min_power:
            return None
        rows = [b.power(block) for b in _ROW_BINS]
        row = _strongest(rows, self._peak_ratio)
        if row is None or rows[row] < self._min_power:
            return None  # most speech ends here, before the column bins are measured
        columns = [b.power(block) for b in _COLUMN_BINS]
        column = _strongest(columns, self._peak_ratio)
        if column is None:
            return None
        low, high = rows[row], columns[column]
        if min(low, high) < self._min_power or low + high < self._min_share * energy:
            return None
        if high > low * self._reverse_twist or low > high * self._normal_twist:
            return None
        return KEYPAD[row][column]

    def _on_block(self, key: str | None, now: float) -> DigitReceived | None:
        if key is not None and key == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = key, int(key is not None)
        ended = self._on_block_while_down(key, now) if self._down is not None else None
        if self._down is None and key is not None and self._run >= self._min_on:
            self._down, self._down_blocks, self._misses = key, self._run, 0
        return ended

    def _on_block_while_down(self, key: str | None, now: float) -> DigitReceived | None:
        if key == self._down:
            # Blocks missed inside a press still belong to it.
            self._down_blocks += self._misses + 1
            self._misses = 0
            return None
        self._misses += 1
        return self._release(now) if self._misses >= self._min_off else None

    def _release(self, now: float) -> DigitReceived | None:
        digit, self._down = self._down, None
        if digit is None:
            return None
        return DigitReceived(digit=digit, duration_ms=self._down_blocks * _BLOCK_MS, at=now)
