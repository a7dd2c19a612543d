"""Service notices over HTTP: text to speech or an uploaded WAV, persisted, resolvable."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from api_harness import Api, Clock, client_for, detail, fake_render, make_runtime, tone_wav

from media.wav import read_wav, write_wav
from server.api_notices import SpeechError, render_speech

SERVICE = "trentino-digitale"
TEXT = {
    "it": "Il servizio CPS è sospeso fino alle 14.",
    "en": "The CPS service is down until 2 pm.",
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    clock = Clock()
    runtime = make_runtime(tmp_path / "var", clock)
    async with client_for(runtime) as client:
        yield Api(runtime, clock, client)


def folder(tmp_path: Path) -> Path:
    return tmp_path / "var" / "notices" / SERVICE


async def test_text_notice_is_rendered_in_every_language(api: Api, tmp_path: Path) -> None:
    assert api.runtime.notices.lookup(SERVICE, "it") is None
    response = await api.client.put(f"/api/services/{SERVICE}/notice", json={"text": TEXT})
    assert response.status_code == 200
    body = response.json()
    assert body["languages"] == ["en", "it"]
    assert body["text"] == TEXT
    prompt = api.runtime.notices.lookup(SERVICE, "it")
    assert prompt == body["prompt"]
    assert prompt is not None and prompt.startswith(f"notice-{SERVICE}-")
    for language in ("it", "en"):
        path = api.runtime.notices.wav_path(prompt, language)
        assert path == folder(tmp_path) / f"{language}.wav"
        assert len(read_wav(path.read_bytes())) == 2 * int(8000 * 0.01 * len(TEXT[language]))
    assert api.runtime.notices.lookup("uru", "it") is None


async def test_notice_is_shown_with_the_service(api: Api) -> None:
    await api.client.put(f"/api/services/{SERVICE}/notice", json={"text": {"it": "Guasto."}})
    services = {s["service"]: s for s in (await api.client.get("/api/services")).json()}
    assert services[SERVICE]["notice"]["text"] == {"it": "Guasto."}
    assert services["uru"]["notice"] is None


async def test_every_change_gets_a_fresh_prompt_id(api: Api, tmp_path: Path) -> None:
    url = f"/api/services/{SERVICE}/notice"
    first = (await api.client.put(url, json={"text": TEXT})).json()["prompt"]
    second = (await api.client.put(url, json={"text": {"it": "Risolto a breve."}})).json()
    assert second["prompt"] != first
    # The notice is replaced as a whole: the English rendering of the old text is gone.
    assert second["languages"] == ["it"]
    assert not (folder(tmp_path) / "en.wav").exists()
    # An English caller hears the Italian recording rather than nothing.
    assert api.runtime.notices.wav_path(second["prompt"], "en") == folder(tmp_path) / "it.wav"


async def test_uploaded_recording_replaces_one_language(api: Api, tmp_path: Path) -> None:
    await api.client.put(f"/api/services/{SERVICE}/notice", json={"text": TEXT})
    wav = tone_wav(0.5)
    response = await api.client.put(
        f"/api/services/{SERVICE}/notice/it", content=wav, headers={"content-type": "audio/wav"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["languages"] == ["en", "it"]
    assert body["text"] == {"en": TEXT["en"]}
    assert (folder(tmp_path) / "it.wav").read_bytes() == wav
    listened = await api.client.get(f"/api/services/{SERVICE}/notice/it")
    assert (listened.status_code, listened.content) == (200, wav)


@pytest.mark.parametrize(
    ("language", "content", "kind", "status"),
    [
        ("it", b"RIFF not a wav", "audio/wav", 422),
        ("it", None, "application/json", 415),
        ("IT", None, "audio/wav", 422),
        (".hidden", None, "audio/wav", 422),
        ("IT", None, "audio/wav", 422),
        (".hidden", None, "audio/wav", 422),
    ],
)
async def test_bad_upload_is_refused(
    api: Api, language: str, content: bytes | None, kind: str, status: int
) -> None:
    body = content if content is not None else tone_wav(0.1)
    response = await api.client.put(
        f"/api/services/{SERVICE}/notice/{language}", content=body, headers={"content-type": kind}
    )
    assert response.status_code == status
    assert api.runtime.notices.lookup(SERVICE, "it") is None


async def test_upload_in_the_wrong_format_says_why(api: Api) -> None:
    stereo = bytearray(write_wav(b"\x00\x00" * 800))
    stereo[22] = 2  # two channels
    response = await api.client.put(
        f"/api/services/{SERVICE}/notice/it",
        content=bytes(stereo),
        headers={"content-type": "audio/wav"},
    )
    assert response.status_code == 422
    assert "mono" in detail(response) or "WAV" in detail(response)


async def test_text_in_a_language_the_service_lacks_is_refused(api: Api) -> None:
    response = await api.client.put(
        f"/api/services/{SERVICE}/notice", json={"text": {"de": "Störung."}}
    )
    assert response.status_code == 422
    assert "de" in detail(response)
    empty = await api.client.put(f"/api/services/{SERVICE}/notice", json={"text": {}})
    assert empty.status_code == 422


async def test_failed_rendering_keeps_the_previous_notice(tmp_path: Path) -> None:
    clock = Clock()
    calls: list[str] = []

    def flaky(text: str, language: str, target: Path) -> None:
        calls.append(language)
        if text == "boom":
            raise SpeechError("espeak-ng failed (1): boom")
        fake_render(text, language, target)

    runtime = make_runtime(tmp_path / "var", clock, render=flaky)
    async with client_for(runtime) as client:
        url = f"/api/services/{SERVICE}/notice"
        before = (await client.put(url, json={"text": TEXT})).json()
        old_it = (folder(tmp_path) / "it.wav").read_bytes()
        failed = await client.put(url, json={"text": {"it": "nuovo", "en": "boom"}})
        assert failed.status_code == 503
        assert "espeak-ng" in detail(failed)
        assert runtime.notices.lookup(SERVICE, "it") == before["prompt"]
        assert (folder(tmp_path) / "it.wav").read_bytes() == old_it
        assert sorted(p.name for p in folder(tmp_path).iterdir()) == ["en.wav", "it.wav"]


async def test_notice_survives_a_restart_and_delete_clears_it(api: Api, tmp_path: Path) -> None:
    url = f"/api/services/{SERVICE}/notice"
    prompt = (await api.client.put(url, json={"text": TEXT})).json()["prompt"]
    stored = json.loads((tmp_path / "var" / "notices" / "notices.json").read_text())
    assert stored[SERVICE]["prompt"] == prompt
    restarted = make_runtime(tmp_path / "var", api.clock)
    assert restarted.notices.lookup(SERVICE, "en") == prompt
    async with client_for(restarted) as client:
        newer = (await client.put(url, json={"text": TEXT})).json()["prompt"]
        assert newer != prompt
        deleted = await client.delete(url)
        assert deleted.status_code == 200
        assert deleted.json()["notice"] is None
        assert (await client.delete(url)).status_code == 404
        assert (await client.get(url)).status_code == 404
    assert restarted.notices.lookup(SERVICE, "it") is None
    assert list(folder(tmp_path).glob("*.wav")) == []
    assert make_runtime(tmp_path / "var", api.clock).notices.lookup(SERVICE, "it") is None


async def test_notice_with_an_end_lapses(api: Api) -> None:
    until = (api.clock.wall(api.clock.now) + timedelta(minutes=30)).isoformat()
    url = f"/api/services/{SERVICE}/notice"
    await api.client.put(url, json={"text": TEXT, "until": until})
    assert api.runtime.notices.lookup(SERVICE, "it") is not None
    api.clock.now += 1800
    assert api.runtime.notices.lookup(SERVICE, "it") is None


def test_prompt_ids_of_other_services_do_not_resolve(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "var", Clock())
    assert runtime.notices.wav_path("welcome-uru", "it") is None
    assert runtime.notices.wav_path(f"notice-{SERVICE}-x", "it") is None
    assert runtime.notices.wav_path("notice-nope-1", "it") is None


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="no TTS")
def test_espeak_and_sox_render_an_8khz_mono_wav(tmp_path: Path) -> None:
    target = tmp_path / "it.wav"
    render_speech("-Il servizio è sospeso.", "it", target)
    pcm = read_wav(target.read_bytes())
    assert len(pcm) > 2 * 8000 * 0.5  # more than half a second of speech
    assert (
        max(
            abs(int.from_bytes(pcm[i : i + 2], "little", signed=True))
            for i in range(0, len(pcm), 2)
        )
        > 1000
    )


def test_rendering_failure_is_a_notice_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError):
        render_speech("testo", "it", tmp_path / "missing-folder" / "it.wav")
