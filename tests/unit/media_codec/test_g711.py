"""G.711 against reference values computed here from the ITU-T G.711 segment tables."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.g711 import PCMA, PCMU, G711Codec, G711Error


def ulaw_reference(code: int) -> int:
    """G.711 Table 2a: complement the code, then segment (3 bits) and step (4 bits).

    In the 16-bit scale a µ-law segment e has 16 steps of 8 << e, biased by 132 so that
    segment 0 starts at zero.
    """
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = ((8 * mantissa + 132) << exponent) - 132
    return -magnitude if inverted & 0x80 else magnitude


def alaw_reference(code: int) -> int:
    """G.711 Table 1a: even bits inverted (XOR 0x55), sign bit 1 means positive.

    Segments 0 and 1 share the step 16; each later segment doubles it.
    """
    toggled = code ^ 0x55
    exponent = (toggled >> 4) & 0x07
    mantissa = toggled & 0x0F
    first = exponent == 0
    magnitude = (16 * mantissa + 8) if first else (16 * mantissa + 264) << (exponent - 1)
    return magnitude if toggled & 0x80 else -magnitude


def ulaw_step(code: int) -> int:
    return 8 << ((~code >> 4) & 0x07)


def alaw_step(code: int) -> int:
    exponent = ((code ^ 0x55) >> 4) & 0x07
    return 16 << max(exponent - 1, 0)


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def unpack(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


ALL_CODES = bytes(range(256))
ALL_LINEAR = list(range(-32768, 32768))


@pytest.mark.parametrize(("codec", "reference"), [(PCMU, ulaw_reference), (PCMA, alaw_reference)])
def test_all_256_codes_decode_to_reference(
    codec: G711Codec, reference: Callable[[int], int]
) -> None:

    assert unpack(codec.decode(ALL_CODES)) == [reference(c) for c in range(256)]


def test_reference_extremes_match_the_standard_ranges() -> None:
    # Guards the reference itself: G.711 µ-law spans ±8031 in 14-bit units (×4 = 32124),
    # A-law ±4032 in 13-bit units (×8 = 32256).
    ulaw = [ulaw_reference(c) for c in range(256)]
    alaw = [alaw_reference(c) for c in range(256)]
    assert (min(ulaw), max(ulaw)) == (-32124, 32124)
    assert (min(alaw), max(alaw)) == (-32256, 32256)
    assert len(set(ulaw)) == 255  # +0 and -0 both decode to 0
    assert len(set(alaw)) == 256


@pytest.mark.parametrize(
    ("codec", "reference", "step", "truncation"),
    [(PCMU, ulaw_reference, ulaw_step, 4), (PCMA, alaw_reference, alaw_step, 8)],
)
def test_every_linear_value_lands_in_its_decision_interval(
    codec: G711Codec, reference: Callable[[int], int], step: Callable[[int], int], truncation: int
) -> None:

    codes = codec.encode(pcm(*ALL_LINEAR))
    assert len(codes) == 65536
    top = max(reference(c) for c in range(256))
    previous = -top
    for x, code in zip(ALL_LINEAR, codes, strict=True):
        y = reference(code)
        assert y >= previous, f"not monotonic at {x}"
        previous = y
        if abs(x) > top:
            assert y == (top if x > 0 else -top), x
        else:
            # G.711 reconstruction values are interval midpoints; the codec works on
            # 14-bit (µ-law) or 13-bit (A-law) input, hence the truncation slack.
            assert abs(x - y) <= step(code) // 2 + truncation, (x, hex(code), y)


@pytest.mark.parametrize(("codec", "reference"), [(PCMU, ulaw_reference), (PCMA, alaw_reference)])
def test_reconstruction_values_encode_back_to_their_code(
    codec: G711Codec, reference: Callable[[int], int]
) -> None:

    values = [reference(c) for c in range(256)]
    codes = codec.encode(pcm(*values))
    for original, code in zip(range(256), codes, strict=True):
        assert reference(code) == reference(original)
        if reference(original) != 0:
            assert code == original


def test_known_codes() -> None:
    # Silence is 0xFF in µ-law and 0xD5 in A-law; full scale is 0x80 / 0xAA.
    assert PCMU.encode(pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])
    assert PCMA.encode(pcm(0, 32767, -32768)) == bytes([0xD5, 0xAA, 0x2A])


def test_codec_identity() -> None:
    assert (PCMU.name, PCMU.payload_type, PCMU.clock_rate) == ("PCMU", 0, 8000)
    assert (PCMA.name, PCMA.payload_type, PCMA.clock_rate) == ("PCMA", 8, 8000)


def test_packet_sizes() -> None:
    frame = pcm(*range(-8000, 8000, 100))
    assert len(PCMU.encode(frame)) == len(frame) // 2
    assert len(PCMA.decode(PCMA.encode(frame))) == len(frame)


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_odd_pcm_length_is_a_clear_error(codec: G711Codec) -> None:
    with pytest.raises(G711Error):
        codec.encode(b"\x00\x01\x02")


@given(st.binary(max_size=400))
def test_decode_then_encode_is_stable(data: bytes) -> None:
    for codec in (PCMU, PCMA):
        once = codec.decode(data)
        assert codec.decode(codec.encode(once)) == once
