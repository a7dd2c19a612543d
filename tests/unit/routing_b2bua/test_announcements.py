"""What a waiting caller hears: position and expected wait, from catalogue prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.acd_glue import number_prompts, wait_prompts

CATALOGUE = Path(__file__).resolve().parents[3] / "config" / "prompts" / "catalogue.yaml"


@pytest.mark.parametrize(
    ("value", "prompts"),
    [
        (1, ["number-1"]),
        (20, ["number-20"]),
        (21, ["number-20", "number-1"]),
        (40, ["number-40"]),
        (100, ["number-100"]),
        (137, ["number-100", "number-30", "number-7"]),
    ],
)
def test_numbers_are_said_from_number_prompts(value: int, prompts: list[str]) -> None:
    assert number_prompts(value) == prompts


@pytest.mark.parametrize(
    ("seconds", "prompts"),
    [
        (None, []),
        (20.0, ["less-than-a-minute"]),
        (75.0, ["expected-wait-pre", "number-1", "minute"]),
        (330.0, ["expected-wait-pre", "number-6", "minutes"]),
    ],
)
def test_expected_wait_in_whole_minutes(seconds: float | None, prompts: list[str]) -> None:
    assert wait_prompts(seconds) == prompts


def test_every_announcement_prompt_is_in_the_catalogue() -> None:
    known = set(yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["prompts"])
    said = {p for n in range(0, 200) for p in number_prompts(n)}
    said |= {p for s in (20.0, 75.0, 600.0) for p in wait_prompts(s)}
    said |= {"queue-position-pre", "queue-position-post"}
    assert said - known == set()
