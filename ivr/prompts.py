"""The prompt catalogue (``config/prompts/catalogue.yaml``): ids, texts and tones.

Every prompt exists in every catalogue language, so a caller who pressed 9 for
English never hears a gap. A text prompt is spoken by espeak-ng in the language's
voice (or a voice of its own for one variant); a tone prompt (music on hold, the
voicemail beep) is a list of ``[frequency_hz, seconds]`` notes rendered by sox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ivr.config import Language, PromptId

Voice = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9+-]*$")]


class CatalogueError(ValueError):
    """The catalogue document is malformed; ``problems`` lists each issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguageVoice(_Model):
    voice: Voice


class Spoken(_Model):
    text: Annotated[str, StringConstraints(min_length=1)]
    voice: Voice | None = None


class Tone(_Model):
    """Notes as ``(frequency Hz, seconds)``; frequency 0 is silence."""

    tone: list[tuple[Annotated[float, Field(ge=0, le=3800)], Annotated[float, Field(gt=0, le=10)]]]
    repeat: int = Field(default=1, ge=1, le=20)


Entry = Tone | dict[Language, str | Spoken]


class Catalogue(_Model):
    languages: dict[Language, LanguageVoice] = Field(min_length=1)
    speed: int = Field(default=150, ge=80, le=300)
    prompts: dict[PromptId, Entry]

    def ids(self) -> set[str]:
        return set(self.prompts)


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """Validate a parsed catalogue; every text prompt must cover every language.

    Raises :class:`CatalogueError` naming each bad key path.
    """
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as error:
        raise CatalogueError(
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        ) from None
    problems = [
        f"prompts.{prompt_id}: missing language {language!r}"
        for prompt_id, entry in catalogue.prompts.items()
        if not isinstance(entry, Tone)
        for language in sorted(set(catalogue.languages) - set(entry))
    ]
    if problems:
        raise CatalogueError(problems)
    return catalogue


def render_spec(catalogue: Catalogue, prompt_id: str, language: str) -> dict[str, Any]:
    """What one WAV is made from: the renderer skips a file whose spec is unchanged."""
    entry = catalogue.prompts[prompt_id]
    if isinstance(entry, Tone):
        return {"tone": [list(note) for note in entry.tone], "repeat": entry.repeat}
    variant = entry[language]
    spoken = variant if isinstance(variant, Spoken) else Spoken(text=variant)
    voice = spoken.voice or catalogue.languages[language].voice
    return {"text": spoken.text, "voice": voice, "speed": catalogue.speed}


def spec_digest(spec: Mapping[str, Any]) -> str:
    """A stable digest of a render spec (sorted-key JSON, SHA-256)."""
    encoded = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
