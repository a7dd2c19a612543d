"""The prompt player's absolute schedule, looping and barge-in; WAV files."""

from __future__ import annotations

import io
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.player import PlaybackFinished, Player, split_frames
from media.wav import WavError, read_wav, write_wav


def irregular_steps(count: int) -> list[float]:
    """Deterministic, uneven wake-ups: 1-37 ms, with a 480 ms stall every 1,000 steps."""
    return [0.48 if i % 1000 == 999 else ((i * 7919) % 37 + 1) / 1000 for i in range(count)]


def test_ten_minutes_of_irregular_wakeups_send_30000_frames() -> None:
    start = 1234.5678  # an arbitrary monotonic instant: float rounding must not matter
    player = Player([b"\xff" * 160], start=start, loop=True)
    end = start + 600.0
    now, sent, wakeups = start, 0, 0
    for step in irregular_steps(40000):
        now = min(now + step, end)
        sent += len(player.due(now=now))
        wakeups += 1
        if now == end:
            break
    assert now == end and wakeups > 20000  # the steps really were irregular and many
    assert abs(sent - 30000) <= 1  # frames at 0, 20 ms, ..., 600 s inclusive: 30,001
    assert sent == player.frames_played


def test_frames_are_due_exactly_at_their_instant() -> None:
    frames = [bytes([i]) for i in range(10)]
    player = Player(frames, start=10.0)
    assert player.get_timer() == 10.0
    assert player.due(now=9.99) == []
    assert player.due(now=10.0) == [b"\x00"]
    assert player.get_timer() == pytest.approx(10.02)
    assert player.due(now=10.039) == [b"\x01"]
    assert player.due(now=10.06) == [b"\x02", b"\x03"]  # late wake-up catches up at once
    assert player.due(now=10.06) == []


def test_prompt_ends_with_an_event_and_no_timer() -> None:
    player = Player([b"a", b"b", b"c"], start=0.0)
    assert player.due(now=5.0) == [b"a", b"b", b"c"]
    assert player.finished and player.get_timer() is None
    assert player.next_event() == PlaybackFinished(at=5.0, frames_played=3, stopped=False)
    assert player.next_event() is None and player.due(now=6.0) == []


def test_music_on_hold_loops_until_stopped() -> None:
    player = Player([b"a", b"b", b"c"], start=0.0, loop=True)
    assert b"".join(player.due(now=0.14)) == b"abcabcab"
    assert player.next_event() is None
    player.stop(now=0.15)
    assert player.due(now=1.0) == [] and player.get_timer() is None
    assert player.next_event() == PlaybackFinished(at=0.15, frames_played=8, stopped=True)


def test_barge_in_stops_a_prompt_midway() -> None:
    player = Player([b"x"] * 100, start=0.0)
    assert len(player.due(now=0.5)) == 26
    player.stop(now=0.5)
    assert player.due(now=3.0) == []
    event = player.next_event()
    assert event is not None and event.stopped and event.frames_played == 26


def test_empty_prompt_finishes_at_once_and_empty_loop_is_refused() -> None:
    player = Player([], start=3.0)
    assert player.finished and player.next_event() == PlaybackFinished(
        at=3.0, frames_played=0, stopped=False
    )
    with pytest.raises(ValueError, match="empty"):
        Player([], start=0.0, loop=True)


def test_split_frames_pads_the_last_frame_with_silence() -> None:
    frames = split_frames(b"\x01\x00" * 200)
    assert [len(f) for f in frames] == [320, 320]
    assert frames[1] == b"\x01\x00" * 40 + bytes(240)
    assert split_frames(b"") == []


@given(st.lists(st.floats(0.0, 0.5), max_size=200))
def test_never_ahead_of_the_schedule_nor_behind_it(steps: list[float]) -> None:
    player = Player([b"f"], start=0.0, loop=True)
    now, sent = 0.0, 0
    for step in steps:
        now += step
        sent += len(player.due(now=now))
        assert sent == int(now / 0.020 + 1e-9) + 1


def test_wav_round_trip() -> None:
    pcm = bytes(range(256)) * 10
    data = write_wav(pcm)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert read_wav(data) == pcm


def _wav(rate: int, channels: int, width: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(bytes(width * channels * 8))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_wav(16000, 1, 2), "16000 Hz"),
        (_wav(8000, 2, 2), "2 channels"),
        (_wav(8000, 1, 1), "8-bit"),
        (b"not a wav file at all", "not a readable"),
        (b"", "not a readable"),
        (_wav(8000, 1, 2)[:30], "not a readable"),
    ],
)
def test_wrong_wav_formats_raise_wav_error(data: bytes, reason: str) -> None:
    with pytest.raises(WavError, match=reason):
        read_wav(data)


@given(st.binary(max_size=80))
def test_read_wav_never_raises_anything_but_wav_error(data: bytes) -> None:
    try:
        pcm = read_wav(b"RIFF" + data)
    except WavError:
        return
    assert len(pcm) % 2 == 0


GOOD = write_wav(b"\x00\x01" * 100)


@given(st.integers(0, len(GOOD)), st.integers(0, len(GOOD) - 1), st.integers(0, 255))
def test_truncated_or_mutated_wav_raises_only_wav_error(cut: int, at: int, value: int) -> None:
    data = bytearray(GOOD)
    data[at] = value
    try:
        pcm = read_wav(bytes(data[:cut]))
    except WavError:
        return
    assert len(pcm) % 2 == 0


def test_write_wav_rejects_half_samples() -> None:
    with pytest.raises(WavError):
        write_wav(b"\x00")
