"""The sans-I/O rule (DESIGN.md): only server/ touches sockets, the event loop or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ("sip", "media", "ivr", "acd", "routing", "metrics")
FORBIDDEN_MODULES = {"asyncio", "socket", "uvloop", "threading", "selectors", "random", "secrets"}
FORBIDDEN_CALLS = {
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "sleep"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("os", "urandom"),
}


def _pure_files() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
            names += [f"{node.module}.{a.name}" for a in node.names if node.module]
        elif isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (owner_name, node.attr) in FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} uses {owner_name}.{node.attr}")
            continue
        else:
            continue
        for name in names:
            base = name.split(".")[0]
            dotted = tuple(name.split(".")[-2:])
            if base in FORBIDDEN_MODULES or dotted in FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_or_clock(path: Path) -> None:
    assert _violations(path) == []


def test_scanner_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncio\nfrom time import monotonic\nimport datetime\nx = datetime.datetime.now()\n"
    )
    found = _violations(bad)
    assert len(found) == 3
