"""Every catalogue prompt exists as an 8 kHz mono 16-bit WAV in every language."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from ivr.check import node_prompts
from ivr.config import ServiceConfig
from ivr.prompts import Catalogue, CatalogueError, parse_catalogue, render_spec, spec_digest

PROMPTS = Path(__file__).resolve().parents[3] / "config" / "prompts"
LANGUAGES = ("it", "en")


def test_catalogue_has_both_languages(catalogue: Catalogue) -> None:
    assert set(catalogue.languages) == set(LANGUAGES)


def test_every_prompt_is_a_valid_wav_in_both_languages(catalogue: Catalogue) -> None:
    bad: list[str] = []
    for language in LANGUAGES:
        for prompt_id in sorted(catalogue.prompts):
            path = PROMPTS / language / f"{prompt_id}.wav"
            if not path.exists():
                bad.append(f"{language}/{prompt_id}: missing")
                continue
            with wave.open(str(path), "rb") as wav:
                shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
                frames = wav.getnframes()
            if shape != (8000, 1, 2) or frames < 800:  # at least 0.1 s of audio
                bad.append(f"{language}/{prompt_id}: {shape}, {frames} frames")
    assert bad == []


def test_no_stray_wav_files(catalogue: Catalogue) -> None:
    for language in LANGUAGES:
        stray = {p.stem for p in (PROMPTS / language).glob("*.wav")} - catalogue.ids()
        assert stray == set(), f"{language}: {stray}"


def test_rendered_files_match_the_catalogue(catalogue: Catalogue) -> None:
    # The renderer records what each WAV was made from: a stale WAV means someone
    # edited catalogue.yaml without running tools/make_prompts.py.
    manifest = json.loads((PROMPTS / ".manifest.json").read_text())
    stale = [
        f"{language}/{prompt_id}"
        for language in LANGUAGES
        for prompt_id in catalogue.prompts
        if manifest.get(f"{language}/{prompt_id}")
        != spec_digest(render_spec(catalogue, prompt_id, language))
    ]
    assert stale == []


def test_total_size_stays_under_10_mb() -> None:
    total = sum(p.stat().st_size for p in PROMPTS.rglob("*.wav"))
    assert total < 10 * 1024 * 1024


def test_every_configured_prompt_is_in_the_catalogue(
    services: dict[str, ServiceConfig], catalogue: Catalogue
) -> None:
    used = {
        prompt
        for service in services.values()
        for node in service.ivr.values()
        for _, prompt in node_prompts(node)
    }
    assert used - catalogue.ids() == set()


def test_catalogue_covers_the_issue_prompts(catalogue: Catalogue) -> None:
    needed = {
        "welcome-trentino-digitale",
        "welcome-agenzia-lavoro",
        "welcome-uru",
        "welcome-io-partecipo",
        "welcome-pagopa",
        "menu-trentino-digitale",
        "invalid-choice",
        "no-input",
        "opening-hours",
        "voicemail-intro",
        "goodbye",
        "queue-position-pre",
        "expected-wait-pre",
        "minutes",
        "music-on-hold",
        "notice-placeholder",
    }
    needed |= {f"number-{n}" for n in range(21)}
    assert needed - catalogue.ids() == set()


def test_music_on_hold_is_a_tone_not_speech(catalogue: Catalogue) -> None:
    spec = render_spec(catalogue, "music-on-hold", "it")
    assert "tone" in spec and spec == render_spec(catalogue, "music-on-hold", "en")


def test_variant_voice_overrides_the_language_voice(catalogue: Catalogue) -> None:
    assert render_spec(catalogue, "for-english", "it")["voice"] == "en-gb"
    assert render_spec(catalogue, "goodbye", "it")["voice"] == "it"


def test_missing_language_is_refused() -> None:
    data = {
        "languages": {"it": {"voice": "it"}, "en": {"voice": "en-gb"}},
        "prompts": {"goodbye": {"it": "Arrivederci."}},
    }
    with pytest.raises(CatalogueError, match=r"prompts\.goodbye: missing language 'en'"):
        parse_catalogue(data)


def test_malformed_tone_is_refused() -> None:
    data = {"languages": {"it": {"voice": "it"}}, "prompts": {"beep": {"tone": [[1000]]}}}
    with pytest.raises(CatalogueError):
        parse_catalogue(data)
