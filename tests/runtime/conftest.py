"""Runtime tests: the media runtime on real loopback sockets, on the uvloop event loop.

Every wait is bounded (asyncio.wait_for); peers are plain UDP sockets on port 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from media_runtime_helpers import HOST, Events, Harness, Peer, port_range, tone

from media.g729 import G729Library, G729Unavailable, open_g729
from media.wav import write_wav
from server.media import MediaRuntime


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The production loop: uvloop (DESIGN.md: not optional for media)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def g729() -> G729Library | None:
    try:
        return open_g729()
    except G729Unavailable:
        return None


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """Two languages; `tone` is 0.5 s of 440 Hz (25 frames), `short` 0.1 s (5 frames)."""
    for language in ("it", "en"):
        folder = tmp_path / "prompts" / language
        folder.mkdir(parents=True)
        (folder / "tone.wav").write_bytes(write_wav(tone(440 if language == "it" else 660, 0.5)))
        (folder / "short.wav").write_bytes(write_wav(tone(1000, 0.1)))
        (folder / "broken.wav").write_bytes(b"RIFF not really")
    return tmp_path / "prompts"


@pytest.fixture
async def harness(
    tmp_path: Path, prompts_dir: Path, g729: G729Library | None
) -> AsyncIterator[Harness]:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    events = Events()
    low, high = port_range()
    runtime = MediaRuntime(
        asyncio.get_running_loop(), host=HOST, port_min=low, port_max=high,
        prompts_dir=prompts_dir, data_dir=tmp_path / "data", media_timeout=30.0, g729=g729,
        on_event=events, rtcp_interval=3600.0,
    )  # fmt: skip
    yield Harness(runtime, events, tmp_path / "data")
    runtime.close()
    await runtime.wait_recordings()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[], Any]]:
    """A factory of Peer sockets on loopback port 0, all closed at the end."""
    made: list[Peer] = []
    loop = asyncio.get_running_loop()

    async def make() -> Peer:
        _, peer = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()
