"""Render the prompt catalogue to WAV files: config/prompts/<lang>/<id>.wav.

Text prompts are spoken by espeak-ng (``-v it`` / ``-v en-gb``) and converted by sox to
8 kHz, mono, 16-bit signed PCM, the format the media layer plays and transcodes to
G.711/G.729. Tone prompts (music on hold, the voicemail beep) are synthesised by sox.
A file is skipped when it exists and ``.manifest.json`` records the same render spec,
so a run after editing one text re-renders only that prompt.

Usage: python tools/make_prompts.py [--prompts-dir config/prompts] [--force]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ivr.prompts import Catalogue, parse_catalogue, render_spec, spec_digest

logger = logging.getLogger("make_prompts")

SAMPLE_RATE = 8000
TONE_GAIN_DB = -12  # keep tones well below speech level
SOX_OUTPUT = ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer"]
MANIFEST = ".manifest.json"


def _run(command: Sequence[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def render_text(spec: dict[str, Any], target: Path, workdir: Path) -> None:
    raw = workdir / "speech.wav"
    _run(["espeak-ng", "-v", spec["voice"], "-s", str(spec["speed"]), "-w", str(raw), spec["text"]])
    # Normalise to -3 dBFS so every prompt plays at the same level.
    _run(["sox", str(raw), *SOX_OUTPUT, str(target), "norm", "-3"])


def render_tone(spec: dict[str, Any], target: Path, workdir: Path) -> None:
    notes: list[str] = []
    for index, (frequency, seconds) in enumerate(spec["tone"]):
        note = workdir / f"note{index:03d}.wav"
        if frequency:
            effects = ["synth", str(seconds), "sine", str(frequency), "fade", "q", "0.02"]
            effects += [str(seconds), "0.05", "gain", str(TONE_GAIN_DB)]
        else:
            effects = ["trim", "0", str(seconds)]
        _run(["sox", "-n", *SOX_OUTPUT, str(note), *effects])
        notes.append(str(note))
    repeat = ["repeat", str(spec["repeat"] - 1)] if spec["repeat"] > 1 else []
    _run(["sox", *notes, *SOX_OUTPUT, str(target), *repeat])


def render(catalogue: Catalogue, prompts_dir: Path, *, force: bool = False) -> list[Path]:
    """Render every out-of-date prompt; return the files written."""
    manifest_path = prompts_dir / MANIFEST
    manifest: dict[str, str] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    )
    written: list[Path] = []
    for language in catalogue.languages:
        (prompts_dir / language).mkdir(parents=True, exist_ok=True)
        for prompt_id in sorted(catalogue.prompts):
            key = f"{language}/{prompt_id}"
            spec = render_spec(catalogue, prompt_id, language)
            target = prompts_dir / language / f"{prompt_id}.wav"
            if not force and target.exists() and manifest.get(key) == spec_digest(spec):
                continue
            with tempfile.TemporaryDirectory() as workdir:
                renderer = render_tone if "tone" in spec else render_text
                renderer(spec, target, Path(workdir))
            manifest[key] = spec_digest(spec)
            written.append(target)
            logger.info("rendered %s", key)
    _prune(catalogue, prompts_dir, manifest)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return written


def _prune(catalogue: Catalogue, prompts_dir: Path, manifest: dict[str, str]) -> None:
    """Delete WAVs and manifest entries of prompts no longer in the catalogue."""
    for language in catalogue.languages:
        for path in (prompts_dir / language).glob("*.wav"):
            if path.stem not in catalogue.prompts:
                path.unlink()
                logger.info("removed %s/%s", language, path.stem)
    for key in list(manifest):
        language, _, prompt_id = key.partition("/")
        if language not in catalogue.languages or prompt_id not in catalogue.prompts:
            del manifest[key]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts-dir", type=Path, default=Path("config/prompts"))
    parser.add_argument("--force", action="store_true", help="re-render every prompt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            logger.error("%s is not installed", tool)
            return 2
    data = yaml.safe_load((args.prompts_dir / "catalogue.yaml").read_text(encoding="utf-8"))
    written = render(parse_catalogue(data), args.prompts_dir, force=args.force)
    logger.info("%d prompt file(s) rendered", len(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
