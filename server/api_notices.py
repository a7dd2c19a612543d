"""Service notices over HTTP: an outage message per service, spoken before the menu.

`PUT /api/services/{service}/notice` takes the text in each language and renders it to
speech (espeak-ng, then sox to 8 kHz mono 16-bit PCM, as tools/make_prompts.py renders
the catalogue) in a worker thread; `PUT .../notice/{language}` takes a recorded WAV
instead, validated by media/wav.py; `DELETE` clears the notice. Recordings live in
`<data_dir>/notices/<service>/<language>.wav`, the notices themselves (the JSON of
`ivr.notice.Notices`) in `<data_dir>/notices/notices.json`; both are written atomically
and read at start.

Every change gives the notice a fresh prompt id, `notice-<service>-<revision>`
(`ivr.notice.notice_prompt_id`), so a player that caches prompts by id never replays the
old message. Call control asks `NoticeStore.lookup(service, language)` when an IVR
reaches its notice node; the media runtime asks `NoticeStore.wav_path(prompt, language)`
for the file of such an id (falling back to another language the notice was given in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import AwareDatetime, ValidationError

from ivr.config import ServiceConfig
from ivr.notice import Notice, Notices, notice_prompt_id
from media.wav import WavError, read_wav
from server.api_services import known_service, service_view
from server.api_types import NoticeBody, SwitchApi
from server.persist import read_optional, sync_folder, write_atomically

__all__ = [
    "NoticeError",
    "NoticeStore",
    "Renderer",
    "SpeechError",
    "notices_router",
    "render_speech",
]

log = logging.getLogger(__name__)

VOICES = {"it": "it", "en": "en-gb"}
"""espeak-ng voice per language (the prompt catalogue's choice)."""
SPEED = 150
Renderer = Callable[[str, str, Path], None]
"""(text, language, target WAV path): blocking, run in a worker thread."""


class NoticeError(Exception):
    """A notice that cannot be set: a language the service lacks, unusable audio."""


class SpeechError(NoticeError):
    """Text-to-speech failed (espeak-ng or sox missing or failing): a server problem."""


def render_speech(text: str, language: str, target: Path) -> None:
    """Speak `text` with espeak-ng into `target` as an 8 kHz mono 16-bit WAV."""
    voice = VOICES.get(language, language)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tts-") as work:
            raw = Path(work) / "raw.wav"
            # The text goes on stdin: on the command line a leading "-" would be an option.
            _run(["espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(raw), "--stdin"], text)
            _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                  str(target), "norm", "-3"], None)  # fmt: skip
        read_wav(target.read_bytes())
    except (OSError, WavError) as exc:
        raise SpeechError(f"speech rendering produced no usable audio: {exc}") from exc


def _run(command: list[str], stdin: str | None) -> None:
    try:
        subprocess.run(
            command,
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError as exc:
        raise SpeechError(f"{command[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SpeechError(f"{command[0]} took too long") from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()[:200]
        raise SpeechError(f"{command[0]} failed ({exc.returncode}): {detail}") from exc


class NoticeStore:
    """Current notices, their recordings, and their file."""

    def __init__(
        self,
        folder: Path,
        services: Mapping[str, ServiceConfig],
        *,
        wall: Callable[[], datetime],
        render: Renderer = render_speech,
    ) -> None:
        self.folder = folder
        self.services = services
        self._wall = wall
        self._render = render
        self._notices = Notices()
        self._languages: dict[str, set[str]] = {}
        self._revision = 0
        self._lock = asyncio.Lock()

    # -- reading (from call control and the media runtime) -----------------------------

    def load(self) -> int:
        """Read the persisted notices (at start); returns how many have audio."""
        data = read_optional(self.folder / "notices.json")
        if data is None:
            return 0
        try:
            self._notices = Notices.from_json(data)
        except ValidationError as exc:
            log.error("ignoring %s: not valid notices (%d errors)", self.folder, exc.error_count())
            return 0
        for service in self.services:
            notice = self._notices.active(service, self._wall())
            if notice is not None:
                self._languages[service] = self._recorded(service)
                self._revision = max(self._revision, _revision(service, notice.prompt))
        return sum(bool(languages) for languages in self._languages.values())

    def lookup(self, service: str, language: str) -> str | None:
        """The prompt id of the service's notice now, or None (B2bua's `notices`)."""
        notice = self._notices.active(service, self._wall())
        if notice is None or not self._languages.get(service):
            return None
        return notice.prompt

    def wav_path(self, prompt: str, language: str) -> Path | None:
        """The recording of a notice prompt id in `language`, else in another language."""
        service = self._service_of(prompt)
        if service is None:
            return None
        config = self.services[service].languages
        for candidate in (language, config.default, *config.available):
            path = self.folder / service / f"{candidate}.wav"
            if path.is_file():
                return path
        return None

    def describe(self, service: str) -> dict[str, Any] | None:
        """The notice in force, as the API shows it."""
        notice = self._notices.active(service, self._wall())
        if notice is None:
            return None
        return {
            "prompt": notice.prompt,
            "languages": sorted(self._languages.get(service, ())),
            "text": dict(notice.text),
            "until": notice.until.isoformat() if notice.until else None,
        }

    def recording(self, service: str, language: str) -> Path | None:
        """The file of the service's current notice in exactly `language`."""
        if self.lookup(service, language) is None or language not in self._languages[service]:
            return None
        return self.folder / service / f"{language}.wav"

    # -- changing (from the HTTP API) --------------------------------------------------

    async def set_text(self, service: str, text: Mapping[str, str], until: datetime | None) -> None:
        """Render `text` in every language given; the notice is replaced as a whole."""
        self._check_languages(service, text)
        async with self._lock:
            revision = self._next_revision()
            await asyncio.to_thread(self._render_all, service, dict(text), revision)
            notice = Notice(
                prompt=notice_prompt_id(service, revision), text=dict(text), until=until
            )
            await self._commit(service, notice, set(text))

    async def set_recording(
        self, service: str, language: str, wav: bytes, until: datetime | None
    ) -> None:
        """Use an uploaded WAV for one language; the other languages are kept."""
        self._check_languages(service, [language])
        try:
            read_wav(wav)
        except WavError as exc:
            raise NoticeError(str(exc)) from exc
        async with self._lock:
            current = self._notices.active(service, self._wall())
            text = {k: v for k, v in (current.text if current else {}).items() if k != language}
            until = until if until is not None else (current.until if current else None)
            path = self.folder / service / f"{language}.wav"
            await asyncio.to_thread(write_atomically, path, wav)
            revision = self._next_revision()
            notice = Notice(prompt=notice_prompt_id(service, revision), text=text, until=until)
            languages = (self._languages.get(service, set()) if current else set()) | {language}
            await self._commit(service, notice, languages)

    async def clear(self, service: str) -> bool:
        """Remove the service's notice and its recordings; whether there was one."""
        async with self._lock:
            had = self._notices.active(service, self._wall()) is not None
            candidate = self._copy()
            if not candidate.clear(service):
                return False
            await asyncio.to_thread(self._save, candidate)
            self._notices.clear(service)
            self._languages.pop(service, None)
            await asyncio.to_thread(self._remove_recordings, service, set())
            return had

    def _check_languages(self, service: str, languages: Any) -> None:
        available = self.services[service].languages.available
        unknown = sorted(set(languages) - set(available))
        if unknown:
            raise NoticeError(f"service {service!r} has no language {', '.join(unknown)}")

    async def _commit(self, service: str, notice: Notice, languages: set[str]) -> None:
        candidate = self._copy()
        candidate.set(service, notice)
        await asyncio.to_thread(self._save, candidate)
        self._notices.set(service, notice)
        self._languages[service] = languages
        await asyncio.to_thread(self._remove_recordings, service, languages)
        log.info("service %s notice %s set (%s)", service, notice.prompt, sorted(languages))

    def _copy(self) -> Notices:
        return Notices.from_json(self._notices.to_json())

    def _save(self, notices: Notices) -> None:
        write_atomically(self.folder / "notices.json", notices.to_json())

    def _next_revision(self) -> int:
        self._revision += 1
        return self._revision

    # -- files (worker threads) --------------------------------------------------------

    def _render_all(self, service: str, text: dict[str, str], revision: int) -> None:
        """Render every language to a temporary file, then put them all in place."""
        folder = self.folder / service
        folder.mkdir(parents=True, exist_ok=True)
        rendered: dict[str, Path] = {}
        try:
            for language, words in text.items():
                target = folder / f".{language}.{revision}.wav"
                rendered[language] = target
                self._render(words, language, target)
            for language, target in rendered.items():
                os.replace(target, folder / f"{language}.wav")
        finally:
            for target in rendered.values():
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
        sync_folder(folder)

    def _remove_recordings(self, service: str, keep: set[str]) -> None:
        folder = self.folder / service
        for path in folder.glob("*.wav") if folder.is_dir() else ():
            if path.stem not in keep:
                path.unlink(missing_ok=True)

    def _recorded(self, service: str) -> set[str]:
        folder = self.folder / service
        return {p.stem for p in folder.glob("*.wav")} if folder.is_dir() else set()

    def _service_of(self, prompt: str) -> str | None:
        for service in self.services:
            if _revision(service, prompt):
                return service
        return None


def _revision(service: str, prompt: str) -> int:
    """The revision in `notice-<service>-<revision>`, or 0 if `prompt` is not one."""
    prefix = f"notice-{service}-"
    tail = prompt[len(prefix) :] if prompt.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else 0


MAX_UPLOAD = 16 * 1024 * 1024
"""About 17 minutes of 8 kHz 16-bit audio: far more than any notice needs."""
_WAV_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}


def notices_router(api: SwitchApi) -> APIRouter:
    """`/api/services/{service}/notice`: set (text or WAV), read, clear."""
    router = APIRouter(prefix="/api/services", tags=["notices"])

    @router.get("/{service}/notice")
    async def get_notice(service: str) -> dict[str, Any]:
        notice = api.notices.describe(known_service(api, service))
        if notice is None:
            raise HTTPException(404, f"service {service!r} has no notice")
        return notice

    @router.put("/{service}/notice")
    async def put_notice(service: str, body: NoticeBody) -> dict[str, Any]:
        known_service(api, service)
        await _apply(api.notices.set_text(service, body.text, body.until))
        return api.notices.describe(service) or {}

    @router.put("/{service}/notice/{language}")
    async def put_recording(
        service: str, language: str, request: Request, until: AwareDatetime | None = None
    ) -> dict[str, Any]:
        known_service(api, service)
        wav = await _upload(request)
        await _apply(api.notices.set_recording(service, language, wav, until))
        return api.notices.describe(service) or {}

    @router.get("/{service}/notice/{language}")
    async def get_recording(service: str, language: str) -> Response:
        path = api.notices.recording(known_service(api, service), language)
        if path is None:
            raise HTTPException(404, f"service {service!r} has no notice in {language!r}")
        data = await asyncio.to_thread(read_optional, path)
        if data is None:
            raise HTTPException(404, f"service {service!r} has no notice in {language!r}")
        return Response(data, media_type="audio/wav")

    @router.delete("/{service}/notice")
    async def delete_notice(service: str) -> dict[str, Any]:
        if not await api.notices.clear(known_service(api, service)):
            raise HTTPException(404, f"service {service!r} has no notice")
        return service_view(api, service)

    return router


async def _apply(change: Coroutine[Any, Any, None]) -> None:
    try:
        await change
    except SpeechError as exc:
        log.error("text-to-speech failed: %s", exc)
        raise HTTPException(503, f"text-to-speech failed: {exc}") from exc
    except NoticeError as exc:
        raise HTTPException(422, str(exc)) from exc
    except OSError as exc:
        log.error("cannot store a notice: %s", exc)
        raise HTTPException(503, f"cannot store the notice: {exc.strerror}") from exc


async def _upload(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _WAV_TYPES:
        raise HTTPException(415, "send the recording as audio/wav")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD:
        raise HTTPException(413, f"a notice is at most {MAX_UPLOAD} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD:
            raise HTTPException(413, f"a notice is at most {MAX_UPLOAD} bytes")
    return bytes(body)
