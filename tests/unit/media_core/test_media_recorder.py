"""The voicemail recorder: silence, maximum length, hang-up, the WAV it yields."""

from __future__ import annotations

import struct

import pytest

from media.recorder import Recorder, RecordingEndReason, RecordingFinished, rms
from media.wav import read_wav

SILENCE = bytes(320)  # 20 ms of digital silence
HISS = struct.pack("<160h", *([40, -40] * 80))  # line noise below the default level
SPEECH = struct.pack("<160h", *([3000, -3000] * 80))


def feed(recorder: Recorder, frames: list[bytes], start: float = 0.0) -> float:
    now = start
    for frame in frames:
        now += 0.02
        recorder.receive_pcm(frame, now=now)
    return now


def finished(recorder: Recorder) -> RecordingFinished:
    event = recorder.next_event()
    assert isinstance(event, RecordingFinished)
    assert recorder.next_event() is None
    return event


def test_rms_levels() -> None:
    assert rms(SILENCE) == 0.0 and rms(b"") == 0.0
    assert rms(SPEECH) == pytest.approx(3000.0)
    assert rms(HISS) == pytest.approx(40.0)


def test_ends_after_the_silence_duration_and_trims_the_trailing_silence() -> None:
    recorder = Recorder(now=0.0, silence_duration=2.0)
    feed(recorder, [SPEECH] * 150)  # 3 s of message
    feed(recorder, [HISS] * 99, start=3.0)  # 1.98 s: not yet
    assert recorder.next_event() is None and not recorder.finished
    feed(recorder, [SILENCE], start=4.98)
    event = finished(recorder)
    assert event.reason is RecordingEndReason.SILENCE
    assert event.at == pytest.approx(5.0)
    assert event.duration == pytest.approx(3.0)
    assert event.size == len(event.wav)
    assert read_wav(event.wav) == SPEECH * 150


def test_speech_resets_the_silence_run() -> None:
    recorder = Recorder(now=0.0, silence_duration=1.0)
    feed(recorder, ([SILENCE] * 45 + [SPEECH]) * 4)
    assert not recorder.finished


def test_maximum_length_cuts_the_audio_exactly() -> None:
    recorder = Recorder(now=100.0, max_duration=1.0, silence_duration=5.0)
    feed(recorder, [SPEECH] * 49, start=100.0)
    assert recorder.next_event() is None
    recorder.receive_pcm(SPEECH * 3, now=101.0)  # one 60 ms packet crossing the limit
    event = finished(recorder)
    assert (event.reason, event.duration, event.started_at) == (
        RecordingEndReason.MAX_LENGTH,
        1.0,
        100.0,
    )
    assert len(read_wav(event.wav)) == 16000
    recorder.receive_pcm(SPEECH, now=101.02)  # after the end: ignored
    assert recorder.next_event() is None


def test_wall_clock_bound_when_audio_stops_arriving() -> None:
    recorder = Recorder(now=0.0, max_duration=30.0)
    feed(recorder, [SPEECH] * 10)
    assert recorder.get_timer() == 30.0
    recorder.handle_timer(now=29.0)
    assert recorder.next_event() is None
    recorder.handle_timer(now=30.0)
    event = finished(recorder)
    assert event.reason is RecordingEndReason.MAX_LENGTH and event.duration == pytest.approx(0.2)
    assert recorder.get_timer() is None


@pytest.mark.parametrize(
    ("end", "reason"),
    [("hang_up", RecordingEndReason.HANG_UP), ("stop", RecordingEndReason.STOPPED)],
)
def test_hang_up_or_stop_keeps_what_was_said(end: str, reason: RecordingEndReason) -> None:
    recorder = Recorder(now=0.0)
    feed(recorder, [SPEECH] * 25 + [SILENCE] * 10)
    getattr(recorder, end)(now=0.7)
    event = finished(recorder)
    assert (event.reason, event.at) == (reason, 0.7)
    assert read_wav(event.wav) == SPEECH * 25
    getattr(recorder, end)(now=0.8)
    assert recorder.next_event() is None


def test_a_caller_who_says_nothing_gets_an_empty_recording() -> None:
    recorder = Recorder(now=0.0, silence_duration=3.0)
    feed(recorder, [SILENCE] * 150)
    event = finished(recorder)
    assert (event.reason, event.duration, read_wav(event.wav)) == (
        RecordingEndReason.SILENCE,
        0.0,
        b"",
    )


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Recorder(now=0.0, max_duration=0)
