"""G.729 through libbcg729: framing, round trip quality, SID/comfort noise, erasures."""

from __future__ import annotations

import gc
import logging
import math
import random
import struct

import pytest

from media.g729 import (
    G729Error,
    G729Library,
    G729Unavailable,
    load_g729,
    open_g729,
    split_payload,
)
from media.goertzel import goertzel_power

try:
    LIBRARY: G729Library | None = open_g729()
except G729Unavailable:
    LIBRARY = None
needs_library = pytest.mark.skipif(LIBRARY is None, reason="libbcg729.so.0 is not installed")


def sine(frequency: float, ms: int, *, amplitude: float = 8000.0, start: int = 0) -> bytes:
    n = 8 * ms
    values = [
        round(amplitude * math.sin(2 * math.pi * frequency * (start + i) / 8000)) for i in range(n)
    ]
    return struct.pack(f"<{n}h", *values)


def noise(ms: int, sigma: float, seed: int) -> bytes:
    rng = random.Random(seed)
    n = 8 * ms
    return struct.pack(f"<{n}h", *(round(rng.gauss(0, sigma)) for _ in range(n)))


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def rms(pcm: bytes) -> float:
    values = samples(pcm)
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0


def lib() -> G729Library:
    assert LIBRARY is not None
    return LIBRARY


# --- framing (no library needed) ------------------------------------------------------


def test_split_payload_speech_and_sid() -> None:
    assert split_payload(bytes(20)) == ([bytes(10), bytes(10)], None)
    frames, sid = split_payload(bytes(range(22)))
    assert frames == [bytes(range(10)), bytes(range(10, 20))]
    assert sid == bytes([20, 21])
    assert split_payload(b"\x01\x02") == ([], b"\x01\x02")
    assert split_payload(b"") == ([], None)


@pytest.mark.parametrize("size", [1, 3, 9, 11, 15, 21, 23])
def test_split_payload_rejects_other_lengths(size: int) -> None:
    with pytest.raises(G729Error):
        split_payload(bytes(size))


def test_missing_library_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(G729Unavailable) as info:
        open_g729("libbcg729-does-not-exist.so.0")
    assert "libbcg729-does-not-exist.so.0" in info.value.reason
    with caplog.at_level(logging.WARNING, logger="media.g729"):
        assert load_g729("libbcg729-does-not-exist.so.0") is None
    assert "G.729 not offered" in caplog.text


def test_library_without_the_api_is_reported() -> None:
    with pytest.raises(G729Unavailable, match="lacks the bcg729 API"):
        open_g729("libc.so.6")


# --- the real codec -------------------------------------------------------------------


@needs_library
def test_identity_and_packet_sizes() -> None:
    with lib().codec() as codec:
        assert (codec.name, codec.payload_type, codec.clock_rate) == ("G729", 18, 8000)
        payload = codec.encode(sine(440, 20))
        assert len(payload) == 20
        assert len(codec.decode(payload)) == 320
        assert len(codec.encode(sine(440, 60))) == 60


@needs_library
@pytest.mark.parametrize("frequency", [300.0, 440.0, 1000.0])
def test_sine_keeps_energy_and_frequency(frequency: float) -> None:
    with lib().codec() as codec:
        decoded = b"".join(
            codec.decode(codec.encode(sine(frequency, 20, start=160 * k))) for k in range(25)
        )
    tail = samples(decoded[-160 * 2 * 10 :])  # the last 200 ms, past the codec's start-up
    source = samples(sine(frequency, 200))
    assert 0.6 < rms(struct.pack(f"<{len(tail)}h", *tail)) / rms(sine(frequency, 200)) < 1.4
    at_tone = goertzel_power(tail, frequency)
    off_tone = goertzel_power(tail, frequency * 1.5)
    assert at_tone > 100 * off_tone
    assert 0.3 < at_tone / goertzel_power(source, frequency) < 2.0


@needs_library
def test_channels_are_independent() -> None:
    # A decoder keeps state: the same payloads decode identically on two fresh channels.
    payloads = []
    with lib().encoder() as encoder:
        payloads = [encoder.encode(sine(500, 20, start=160 * k)) for k in range(5)]
    with lib().decoder() as one, lib().decoder() as two:
        assert [one.decode(p) for p in payloads] == [two.decode(p) for p in payloads]


@needs_library
@pytest.mark.parametrize("size", [0, 2, 159, 161, 318])
def test_bad_pcm_length_is_an_error(size: int) -> None:
    with lib().encoder() as encoder, pytest.raises(G729Error):
        encoder.encode(bytes(size))


@needs_library
def test_bad_payload_length_is_an_error() -> None:
    with lib().decoder() as decoder, pytest.raises(G729Error):
        decoder.decode(bytes(15))


@needs_library
def test_closed_channel_refuses_work_and_close_is_idempotent() -> None:
    codec = lib().codec()
    codec.close()
    codec.close()
    assert codec.encoder.closed and codec.decoder.closed
    with pytest.raises(G729Error):
        codec.encode(bytes(160))
    with pytest.raises(G729Error):
        codec.decode(bytes(10))


@needs_library
def test_unclosed_channels_are_freed_by_the_finalizer() -> None:
    encoder = lib().encoder()
    finalizer = encoder._finalizer
    del encoder
    gc.collect()
    assert not finalizer.alive


def _sid_after(level: float) -> bytes:
    """Speech, then noise at ``level`` until the VAD sends a SID frame."""
    with lib().encoder(vad=True) as encoder:
        for k in range(10):
            encoder.encode_frames(sine(440, 10, start=80 * k))
        for k in range(50):
            frames = encoder.encode_frames(noise(10, level, seed=k))
            if frames[0] and len(frames[0]) == 2:
                return frames[0]
    raise AssertionError("the VAD sent no SID frame")


@needs_library
def test_vad_encoder_sends_sid_then_nothing() -> None:
    with lib().encoder(vad=True) as encoder:
        sizes = [len(encoder.encode(sine(440, 20, start=160 * k))) for k in range(5)]
        sizes += [len(encoder.encode(noise(20, 200, seed=k))) for k in range(40)]
    assert sizes[:5] == [20] * 5
    assert 2 in sizes or 12 in sizes
    assert 0 in sizes  # DTX: nothing to send while the noise is stable
    assert set(sizes) <= {0, 2, 10, 12, 20}


@needs_library
def test_sid_frame_decodes_to_comfort_noise_at_the_right_level() -> None:
    levels = {}
    for level in (100.0, 600.0):
        sid = _sid_after(level)
        with lib().decoder() as decoder:
            decoder.decode(bytes(20))
            pcm = decoder.decode(sid) + decoder.conceal(20)  # DTX: no packets after the SID
        assert len(pcm) == 21 * 160
        levels[level] = rms(pcm[160:])
    assert levels[100.0] > 20  # noise, not silence
    assert levels[600.0] > 3 * levels[100.0]  # at the level the SID describes


@needs_library
def test_speech_plus_sid_payload() -> None:
    sid = _sid_after(500.0)
    with lib().codec() as codec:
        speech = codec.encode(sine(440, 10))
        assert len(codec.decode(speech + sid)) == 2 * 160


@needs_library
def test_erasure_concealment_fades_out() -> None:
    with lib().codec() as codec:
        for k in range(20):
            codec.decode(codec.encode(sine(440, 20, start=160 * k)))
        concealed = [codec.conceal(1) for _ in range(12)]
    assert all(len(c) == 160 for c in concealed)
    assert rms(concealed[0]) > 1000  # the first lost frame is extrapolated, not silence
    assert rms(concealed[-1]) < rms(concealed[0]) / 4
    assert codec.decoder.closed
    with pytest.raises(G729Error):
        lib().decoder().conceal(-1)
