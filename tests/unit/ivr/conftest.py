"""Shared fixtures: the example services and prompt catalogue, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.config import ServiceConfig, load_services
from ivr.prompts import Catalogue, parse_catalogue

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "services.example.yaml"
PROMPTS = ROOT / "config" / "prompts"


@pytest.fixture(scope="session")
def example_document() -> dict[str, object]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def services(example_document: dict[str, object]) -> dict[str, ServiceConfig]:
    return load_services(example_document)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return parse_catalogue(yaml.safe_load((PROMPTS / "catalogue.yaml").read_text("utf-8")))
