"""Every module imports on its own, whatever was imported before it: import cycles
between call-control modules stay harmless only if they import each other as modules
(`from routing import x`), never names out of a half-initialised one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sip", "media", "ivr", "acd", "routing", "metrics", "server")

# In a fresh interpreter: for each module, forget every project module, then import it.
PROBE = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in {packages!r}]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{{name}}: {{exc}}")
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    names = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__main__.py"
    )
    probe = PROBE.format(packages=set(PACKAGES))
    done = subprocess.run(
        [sys.executable, "-c", probe, *names],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert len(names) > 100
