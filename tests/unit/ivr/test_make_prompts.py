"""The prompt renderer: format, skipping up-to-date files, pruning removed prompts."""

from __future__ import annotations

import importlib.util
import shutil
import wave
from pathlib import Path

import pytest

from ivr.prompts import parse_catalogue

TOOL = Path(__file__).resolve().parents[3] / "tools" / "make_prompts.py"
_spec = importlib.util.spec_from_file_location("make_prompts", TOOL)
assert _spec is not None and _spec.loader is not None
make_prompts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_prompts)
render = make_prompts.render

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are needed to render prompts",
)


def catalogue(goodbye: str) -> dict[str, object]:
    return {
        "languages": {"it": {"voice": "it"}, "en": {"voice": "en-gb"}},
        "prompts": {
            "goodbye": {"it": goodbye, "en": "Goodbye."},
            "beep": {"tone": [[1000, 0.2], [0, 0.1]], "repeat": 2},
        },
    }


def test_render_skip_and_prune(tmp_path: Path) -> None:
    written = render(parse_catalogue(catalogue("Arrivederci.")), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "en/beep.wav",
        "en/goodbye.wav",
        "it/beep.wav",
        "it/goodbye.wav",
    ]
    with wave.open(str(tmp_path / "it" / "beep.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() == 4800  # (0.2 + 0.1) s x 2 at 8 kHz
    assert render(parse_catalogue(catalogue("Arrivederci.")), tmp_path) == []
    changed = render(parse_catalogue(catalogue("Arrivederci e grazie.")), tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in changed] == ["it/goodbye.wav"]
    smaller = catalogue("Arrivederci e grazie.")
    del smaller["prompts"]["beep"]  # type: ignore[attr-defined]
    render(parse_catalogue(smaller), tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == ["goodbye.wav", "goodbye.wav"]
