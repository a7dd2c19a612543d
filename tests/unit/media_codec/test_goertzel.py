"""In-band DTMF detection: tones made here, through a µ-law round trip, with noise and talk."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.g711 import PCMU
from media.goertzel import (
    COLUMN_FREQUENCIES,
    KEYPAD,
    ROW_FREQUENCIES,
    DtmfDetector,
    _Bin,
    goertzel_power,
)
from media.pcap import read_udp_file
from media.telephone_event import DigitReceived, TelephoneEventReceiver

RATE = 8000
ASTERISK_PCAP = (
    Path(__file__).resolve().parents[4]
    / "shared/corpus/pcap/asterisk_ulaw-2013785496_rtp_rfc2833.pcap"
)
DBM0_PEAK = 22_300.0  # the level reference, stated independently of the module


def peak(dbm0: float) -> float:
    return DBM0_PEAK * 10 ** (dbm0 / 20)


def key_frequencies(key: str) -> tuple[float, float]:
    row = next(i for i, keys in enumerate(KEYPAD) if key in keys)
    return ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[KEYPAD[row].index(key)]


def tone(frequencies: list[tuple[float, float]], ms: float) -> list[float]:
    """Sum of sines given as (frequency, peak amplitude)."""
    n = round(ms * RATE / 1000)
    phases = [0.3 * k for k in range(len(frequencies))]
    return [
        sum(
            a * math.sin(2 * math.pi * f * i / RATE + p)
            for (f, a), p in zip(frequencies, phases, strict=True)
        )
        for i in range(n)
    ]


def key(k: str, ms: float, *, dbm0: float = -10.0, twist_db: float = 0.0) -> list[float]:
    low, high = key_frequencies(k)
    return tone([(low, peak(dbm0)), (high, peak(dbm0 + twist_db))], ms)


def silence(ms: float) -> list[float]:
    return [0.0] * round(ms * RATE / 1000)


def through_ulaw(signal: list[float], *, noise_dbm0: float | None = None, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    sigma = 0.0 if noise_dbm0 is None else peak(noise_dbm0) / math.sqrt(2)
    values = [max(-32768, min(32767, round(x + rng.gauss(0, sigma)))) for x in signal]
    return PCMU.decode(PCMU.encode(struct.pack(f"<{len(values)}h", *values)))


def detect(
    pcm: bytes, *, packet_bytes: int = 320, detector: DtmfDetector | None = None
) -> list[DigitReceived]:
    detector = detector or DtmfDetector()
    found: list[DigitReceived] = []
    for start in range(0, len(pcm), packet_bytes):
        found += detector.feed(pcm[start : start + packet_bytes], now=start / 16000)
    return found + detector.flush(now=len(pcm) / 16000)


def digits(pcm: bytes) -> str:
    return "".join(d.digit for d in detect(pcm))


# --- the Goertzel measure ----------------------------------------------------------------


@pytest.mark.parametrize("frequency", [*ROW_FREQUENCIES, *COLUMN_FREQUENCIES])
def test_fast_bin_equals_the_goertzel_recursion(frequency: float) -> None:
    rng = random.Random(int(frequency))
    values = [round(rng.uniform(-9000, 9000)) for _ in range(80)]
    block = struct.pack("<80h", *values)
    expected = goertzel_power(values, frequency) * 2 / 80
    assert _Bin.at(frequency).power(block) == pytest.approx(expected, rel=5e-4)


def test_goertzel_power_of_a_pure_sine() -> None:
    values = tone([(1000.0, 1000.0)], 10)  # 10 whole periods in 80 samples
    assert goertzel_power(values, 1000.0) == pytest.approx((1000 * 80 / 2) ** 2, rel=1e-6)
    assert goertzel_power(values, 1500.0) < 1e-6 * goertzel_power(values, 1000.0)


# --- detection --------------------------------------------------------------------------


def test_all_sixteen_keys_in_order() -> None:
    signal: list[float] = []
    for k in "0123456789*#ABCD":
        signal += key(k, 80) + silence(60)
    assert digits(through_ulaw(signal)) == "0123456789*#ABCD"


def test_each_press_is_reported_once_with_its_duration() -> None:
    pcm = through_ulaw(silence(35) + key("5", 200) + silence(100))
    found = detect(pcm)
    assert [d.digit for d in found] == ["5"]
    assert 180 <= found[0].duration_ms <= 220
    # Reported when the key is released, not before.
    assert 0.235 <= found[0].at <= 0.3


def test_same_key_twice_with_a_short_gap_is_two_presses() -> None:
    pcm = through_ulaw(key("7", 60) + silence(45) + key("7", 60) + silence(60))
    assert digits(pcm) == "77"


def test_one_block_dropout_does_not_split_a_press() -> None:
    signal = key("9", 100) + silence(6) + key("9", 100) + silence(60)
    assert digits(through_ulaw(signal)) == "9"


@pytest.mark.parametrize("offset_ms", [0, 3, 7])
def test_forty_ms_is_detected_twenty_is_not(offset_ms: float) -> None:
    lead = silence(offset_ms)
    assert digits(through_ulaw(lead + key("1", 40) + silence(60))) == "1"
    assert digits(through_ulaw(lead + key("1", 20) + silence(60))) == ""


def test_detected_in_noise() -> None:
    signal: list[float] = []
    for k in "159#":
        signal += key(k, 70, dbm0=-12) + silence(70)
    assert digits(through_ulaw(signal, noise_dbm0=-32)) == "159#"


def test_level_limits() -> None:
    assert digits(through_ulaw(key("2", 100, dbm0=-25) + silence(60))) == "2"
    assert digits(through_ulaw(key("2", 100, dbm0=-40) + silence(60))) == ""


def test_twist_limits() -> None:
    # Normal twist (column weaker) up to 8 dB, reverse twist (column stronger) up to 4 dB.
    assert digits(through_ulaw(key("6", 100, twist_db=-6) + silence(60))) == "6"
    assert digits(through_ulaw(key("6", 100, twist_db=3) + silence(60))) == "6"
    assert digits(through_ulaw(key("6", 100, twist_db=-11) + silence(60))) == ""
    assert digits(through_ulaw(key("6", 100, twist_db=7) + silence(60))) == ""


def test_frequency_tolerance() -> None:
    low, high = key_frequencies("8")
    close = tone([(low * 1.015, peak(-10)), (high * 0.985, peak(-10))], 100)
    far = tone([(low * 1.05, peak(-10)), (high * 0.95, peak(-10))], 100)
    assert digits(through_ulaw(close + silence(60))) == "8"
    assert digits(through_ulaw(far + silence(60))) == ""


@pytest.mark.parametrize(
    "frequencies",
    [
        [(697.0, peak(-10))],  # a row tone alone
        [(1336.0, peak(-10))],  # a column tone alone
        [(697.0, peak(-10)), (770.0, peak(-10))],  # two rows
        [(425.0, peak(-10))],  # the Italian dial tone
        [(350.0, peak(-13)), (440.0, peak(-13))],  # the North American dial tone
        [(480.0, peak(-10)), (620.0, peak(-10))],  # busy tone
        [(1000.0, peak(-10)), (1400.0, peak(-10))],  # music-like chord
    ],
)
def test_other_tones_do_not_trigger(frequencies: list[tuple[float, float]]) -> None:
    assert digits(through_ulaw(tone(frequencies, 500))) == ""


def _vowel(fundamental: float, ms: float, formants: tuple[float, ...]) -> list[float]:
    """A voiced sound: harmonics of ``fundamental`` shaped by formant peaks."""
    parts = []
    for harmonic in range(1, int(3400 / fundamental)):
        f = harmonic * fundamental
        gain = sum(1 / (1 + ((f - formant) / 120) ** 2) for formant in formants)
        parts.append((f, 3000 * gain))
    return tone(parts, ms)


@pytest.mark.parametrize(
    ("fundamental", "formants"),
    [
        (120.0, (730.0, 1090.0)),  # "a", male
        (232.0, (310.0, 2790.0)),  # "i", female: harmonics cross 697 and 1160-1392 Hz
        (210.0, (850.0, 1220.0)),  # "a", female
        (140.0, (270.0, 2290.0)),  # "i"
    ],
)
def test_speech_like_sounds_do_not_trigger(fundamental: float, formants: tuple[float, ...]) -> None:
    signal: list[float] = []
    for step in range(8):  # a gliding pitch, as in speech
        signal += _vowel(fundamental * (1 + 0.02 * step), 60, formants)
    assert digits(through_ulaw(signal, noise_dbm0=-45)) == ""


def test_white_noise_does_not_trigger() -> None:
    assert digits(through_ulaw(silence(2000), noise_dbm0=-12, seed=7)) == ""


def test_key_held_at_hang_up_is_flushed() -> None:
    detector = DtmfDetector()
    assert detector.feed(through_ulaw(key("0", 300)), now=1.0) == []
    assert detector.flush(now=1.5) == [DigitReceived(digit="0", duration_ms=300, at=1.5)]
    assert detector.flush(now=1.6) == []


def test_key_change_without_a_gap_gives_both() -> None:
    assert digits(through_ulaw(key("1", 100) + key("2", 100) + silence(60))) == "12"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_any_packetisation_gives_the_same_digits(cuts: list[int]) -> None:
    pcm = through_ulaw(key("4", 60) + silence(50) + key("#", 90) + silence(60))
    detector = DtmfDetector()
    found: list[str] = []
    position = 0
    for size in cuts * 10:
        if position >= len(pcm):
            break
        found += [d.digit for d in detector.feed(pcm[position : position + size], now=0.0)]
        position += size
    found += [d.digit for d in detector.feed(pcm[position:], now=0.0)]
    found += [d.digit for d in detector.flush(now=0.0)]
    assert "".join(found) == "4#"


def test_real_call_audio_only_shows_leaked_tails_of_real_digits() -> None:
    """The Asterisk capture's µ-law audio (17 s) next to its RFC 4733 digits.

    Its audio carries no key press except the tails of 7, 8 and 9 that leaked in-band
    right after their telephone-events: every in-band detection must match the digit
    whose telephone-event ended just before it, and nothing else may trigger.
    """
    detector, receiver = DtmfDetector(), TelephoneEventReceiver()
    in_band: list[DigitReceived] = []
    events: list[DigitReceived] = []
    for datagram in read_udp_file(ASTERISK_PCAP):
        packet, now = datagram.payload, datagram.timestamp
        timestamp = int.from_bytes(packet[4:8], "big")
        if packet[1] & 0x7F == 0:
            in_band += detector.feed(PCMU.decode(packet[12:]), now=now)
        else:
            receiver.receive_payload(packet[12:], timestamp=timestamp, now=now)
            while (event := receiver.next_event()) is not None:
                events.append(event)
    assert "".join(d.digit for d in in_band) == "789"
    for found in in_band:
        previous = max((e for e in events if e.at <= found.at), key=lambda e: e.at)
        assert previous.digit == found.digit
        assert found.at - previous.at < 0.3
