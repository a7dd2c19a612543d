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


def _valid(prompt: str, language: str) -> bool:
    """Ids and languages are file names inside the catalogue, never paths."""
    if _SAFE_NAME.fullmatch(prompt) and _SAFE_NAME.fullmatch(language):
        return True
    log.error("prompt %r in language %r: not a valid prompt name", prompt, language)
    return False


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
        return self._publish_encoded(key, pcm)

    def preload(
        self,
        prompts: Sequence[str],
        languages: Sequence[str],
        *,
        stopped: Callable[[], bool] = lambda: False,
    ) -> int:
        """Read and encode prompts for every codec ahead of the first call; returns a count.

        Safe in a worker thread while the loop plays: it reads only catalogue files (never
        `resolve`, which belongs to the loop), builds each frames tuple on its own and
        publishes it with one dict insertion that keeps whatever was published first.
        `stopped` is asked between prompts (shutdown).
        """
        loaded = 0
        for language in languages:
            for prompt in prompts:
                if stopped():
                    return loaded
                pcm = self._read(prompt, language, self._dir / language / f"{prompt}.wav")
                if pcm is None:
                    continue
                for codec in codec_names(self._g729):
                    cached = self._encoded.get((prompt, language, codec))
                    loaded += (
                        cached or self._publish_encoded((prompt, language, codec), pcm)
                    ) is not None
        return loaded

    def catalogue(self, languages: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
        """The prompt ids and languages on disk (`<dir>/<language>/<id>.wav`), sorted."""
        if languages is None:
            languages = sorted(p.name for p in self._dir.iterdir() if p.is_dir())
        ids = {w.stem for lang in languages for w in (self._dir / lang).glob("*.wav")}
        return sorted(ids), list(languages)

    def runtime_made(self, prompts: Sequence[str], languages: Sequence[str]) -> set[str]:
        """The ids `resolve` serves (notices recorded at run time): preload leaves them."""
        return {p for p in prompts for lang in languages if self.resolve(p, lang) is not None}

    def _load(self, prompt: str, language: str) -> Frames | None:
        cached = self._pcm.get((prompt, language))
        if cached is not None:
            return cached
        if not _valid(prompt, language):
            return None
        path = self.resolve(prompt, language) or self._dir / language / f"{prompt}.wav"
        return self._read(prompt, language, path)

    def _read(self, prompt: str, language: str, path: Path) -> Frames | None:
        key = (prompt, language)
        cached = self._pcm.get(key)
        if cached is not None:
            return cached
        if not _valid(prompt, language):
            return None
        try:
            frames = tuple(split_frames(read_wav(path.read_bytes())))
        except (OSError, WavError) as exc:
            log.error("prompt %s unavailable: %s", path, exc)
            return None
        # One insertion, first writer wins: the loop and the preload worker may race here.
        return self._pcm.setdefault(key, frames)

    def _publish_encoded(self, key: tuple[str, str, str], pcm: Frames) -> Frames | None:
        encoded = self._encode(pcm, key[2])
        if encoded is None:
            return None
        return self._encoded.setdefault(key, encoded)

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
