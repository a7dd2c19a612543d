"""The prompt catalogue on disk, read once and kept as ready-to-send 20 ms payloads.

`config/prompts/<language>/<id>.wav` (8 kHz mono 16-bit, media/wav.py) is decoded to
PCM frames once per (prompt, language) and encoded once per codec, so that playing a
prompt costs one RTP header per packet and no codec work (RFC 3551 §4.5: G.711 carries
one byte per sample; G.729 two 10-byte frames per 20 ms, RFC 3551 §4.5.6).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from media import g711
from media.g729 import G729Error, G729Library
from media.player import split_frames
from media.wav import WavError, read_wav

__all__ = ["PromptLibrary", "codec_names"]

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

Frames = tuple[bytes, ...]


def codec_names(g729: G729Library | None) -> tuple[str, ...]:
    """The codecs the runtime can play and transcode (G.729 only with libbcg729)."""
    return ("PCMU", "PCMA", "G729") if g729 is not None else ("PCMU", "PCMA")


class PromptLibrary:
    """Encoded prompt frames cached per (prompt, language, codec)."""

    def __init__(self, prompts_dir: Path, *, g729: G729Library | None) -> None:
        self._dir = prompts_dir
        self._g729 = g729
        self.resolve: Callable[[str, str], Path | None] = lambda prompt, language: None
        """Where prompts made at run time live (service notices), tried first."""
        self._pcm: dict[tuple[str, str], Frames] = {}
        self._encoded: dict[tuple[str, str, str], Frames] = {}

    def frames(self, prompts: Sequence[str], *, language: str, codec: str) -> Frames | None:
        """The payloads of the prompts in order; None (and a logged error) if one is missing."""
        out: list[bytes] = []
        for prompt in prompts:
            encoded = self.encoded(prompt, language=language, codec=codec)
            if encoded is None:
                return None
            out.extend(encoded)
        return tuple(out)

    def encoded(self, prompt: str, *, language: str, codec: str) -> Frames | None:
        key = (prompt, language, codec)
        cached = self._encoded.get(key)
        if cached is not None:
            return cached
        pcm = self._load(prompt, language)
        if pcm is None:
            return None
        encoded = self._encode(pcm, codec)
        if encoded is not None:
            self._encoded[key] = encoded
        return encoded

    def preload(self, prompts: Sequence[str], languages: Sequence[str]) -> int:
        """Read and encode prompts for every codec ahead of the first call; returns a count."""
        loaded = 0
        for language in languages:
            for prompt in prompts:
                for codec in codec_names(self._g729):
                    loaded += self.encoded(prompt, language=language, codec=codec) is not None
        return loaded

    def _load(self, prompt: str, language: str) -> Frames | None:
        key = (prompt, language)
        cached = self._pcm.get(key)
        if cached is not None:
            return cached
        if not (_SAFE_NAME.fullmatch(prompt) and _SAFE_NAME.fullmatch(language)):
            log.error("prompt %r in language %r: not a valid prompt name", prompt, language)
            return None
        path = self.resolve(prompt, language) or self._dir / language / f"{prompt}.wav"
        try:
            frames = tuple(split_frames(read_wav(path.read_bytes())))
        except (OSError, WavError) as exc:
            log.error("prompt %s unavailable: %s", path, exc)
            return None
        self._pcm[key] = frames
        return frames

    def _encode(self, pcm: Frames, codec: str) -> Frames | None:
        if codec == "PCMU":
            return tuple(g711.PCMU.encode(frame) for frame in pcm)
        if codec == "PCMA":
            return tuple(g711.PCMA.encode(frame) for frame in pcm)
        if codec == "G729" and self._g729 is not None:
            # One encoder per prompt: the stream it starts is self-contained.
            with self._g729.encoder() as encoder:
                try:
                    return tuple(encoder.encode(frame) for frame in pcm)
                except G729Error as exc:
                    log.error("cannot encode a prompt to G.729: %s", exc)
                    return None
        log.error("cannot play prompts in codec %s", codec)
        return None
