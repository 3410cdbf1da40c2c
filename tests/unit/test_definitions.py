"""Smoke: every module imports, and the core library stays importable without Prefect."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("llmops", "prefect_llmops")


def _modules(package: str) -> list[str]:
    module = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        if not info.name.endswith("__main__") and ".migrations" not in info.name:
            names.append(info.name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package: str) -> None:
    for name in _modules(package):
        importlib.import_module(name)


def test_core_library_does_not_import_prefect() -> None:
    core = [name for name in _modules("llmops") if not name.startswith("llmops.demo")]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({name!r})\n" for name in core)
    script += "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
    script += "assert not bad, bad[:5]\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
