"""Voicemail recording over real sockets: the file appears whole, with the right audio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media_runtime_helpers import Harness, Peer, frames, rtp, tone

from media import g711
from media.wav import read_wav
from routing.media_plane import LegMedia, RecordingFinished
from server.media_recording import safe_file_name
from server.persist import write_atomically

VOICE = tone(300, 1.0, amplitude=6000)


async def talk(peer: Peer, addr: tuple[str, int], pcm: bytes) -> None:
    for seq, frame in enumerate(frames(pcm)):
        peer.send(rtp(0, seq, seq * 160, 0x77, g711.PCMU.encode(frame)), addr)
        await asyncio.sleep(0.001)


async def open_recording(
    harness: Harness, peers: Callable[[], Any], *, max_seconds: float
) -> tuple[Peer, tuple[str, int]]:
    peer = await peers()
    addr = harness.runtime.open_leg("vm/caller")
    harness.runtime.configure_leg(
        "vm/caller",
        LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=None, remote=peer.addr),
    )
    harness.runtime.record("vm/caller", name="box-42/msg 1", max_seconds=max_seconds)
    return peer, addr


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


async def test_recording_ends_at_max_length_and_is_written_whole(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer, addr = await open_recording(harness, peers, max_seconds=0.5)
    await talk(peer, addr, VOICE)
    await harness.events.wait_for(bool)
    (done,) = harness.events.of(RecordingFinished)
    path = Path(done.path)
    assert path == harness.data_dir / "voicemail" / "box-42_msg_1.wav"
    assert (done.leg, done.reason, done.seconds) == ("vm/caller", "max_length", 0.5)
    pcm = read_wav(path.read_bytes())
    assert pcm == b"".join(g711.PCMU.decode(g711.PCMU.encode(f)) for f in frames(VOICE))[:8000]
    assert leftovers(path.parent) == []


async def test_closing_the_leg_finishes_the_recording(
    harness: Harness, peers: Callable[[], Any]
) -> None:
    peer, addr = await open_recording(harness, peers, max_seconds=30)
    await talk(peer, addr, VOICE[:3200])  # 0.2 s
    await asyncio.sleep(0.05)
    harness.runtime.close_leg("vm/caller")
    await harness.events.wait_for(bool)
    (done,) = harness.events.of(RecordingFinished)
    assert done.reason == "closed"
    assert abs(done.seconds - 0.2) < 0.021
    assert len(read_wav(Path(done.path).read_bytes())) == round(done.seconds * 16000)


async def test_a_silent_caller_is_cut_off_by_the_wall_clock(harness: Harness) -> None:
    harness.runtime.open_leg("vm/caller")
    harness.runtime.record("vm/caller", name="quiet", max_seconds=0.2)
    await harness.events.wait_for(bool, timeout=2.0)
    (done,) = harness.events.of(RecordingFinished)
    assert (done.reason, done.seconds) == ("max_length", 0.0)
    assert read_wav(Path(done.path).read_bytes()) == b""


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "voicemail" / "a.wav"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["a.wav"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "a.wav"
    target.mkdir()  # os.replace onto a directory fails after the data was written
    try:
        write_atomically(target, b"data")
    except OSError:
        pass
    else:
        raise AssertionError("replacing a directory must fail")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_recording_names_stay_inside_the_folder() -> None:
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_file_name("...") == "recording"
    assert safe_file_name("box 7/msg") == "box_7_msg"
