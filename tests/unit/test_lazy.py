"""Names loaded on first use (``llmops.lazy``): the package exports of ``llmops``, ``llmops.evals``
and ``llmops.store.tables``, and ``llmops.stats.scipy_stats``, load their module only when used."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from sqlalchemy import Table

import llmops
from llmops.lazy import LazyModule, lazy_exports
from llmops.store import tables


def loaded_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules starting with one of ``prefixes`` that a fresh interpreter holds after ``code``."""
    script = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout)  # noqa: S307 - our own printed list


def test_an_export_loads_its_module_on_first_use_and_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("lazy_package")
    package.__getattr__, package.__dir__ = lazy_exports("lazy_package", {"sqrt": "math", "dumps": "json"})  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_package", package)

    assert "sqrt" not in vars(package)
    assert package.sqrt(9.0) == 3.0
    assert "sqrt" in vars(package)  # read once, then a plain attribute
    assert {"sqrt", "dumps"} <= set(dir(package))
    with pytest.raises(AttributeError, match="module 'lazy_package' has no attribute 'cbrt'"):
        package.cbrt  # noqa: B018 - the read is the test


def test_a_lazy_module_imports_on_first_attribute_read() -> None:
    assert LazyModule("math").sqrt(16.0) == 4.0
    assert loaded_after("from llmops.stats import scipy_stats", ("scipy",)) == []
    assert "scipy.stats" in loaded_after("from llmops.stats import scipy_stats\nscipy_stats.norm", ("scipy.stats",))


def test_the_packages_exports_load_only_what_is_used() -> None:
    assert loaded_after("import llmops", ("llmops.release", "llmops.tracing", "sqlalchemy", "anthropic")) == []
    assert loaded_after("from llmops.evals import load_dataset", ("llmops.evals.scorers", "anthropic")) == []
    # what costs, resolve and prompts list read is Core: no model class, no ORM
    for handle in ("ROLLUPS", "PROMPT_LABELS", "PROMPT_VERSIONS"):
        assert loaded_after(f"from llmops.store.tables import {handle}", ("llmops.store.models", "sqlalchemy.orm")) == []
    assert "sqlalchemy.orm" in loaded_after("from llmops.store.tables import TRACES", ("sqlalchemy.orm",))
    assert llmops.get_registry.__module__ == "llmops.release.registry"
    assert "get_registry" in dir(llmops)


def test_every_table_handle_is_a_table_named_once() -> None:
    handles = {name: getattr(tables, name) for name in tables.__all__}

    assert all(isinstance(table, Table) for table in handles.values())
    assert len({table.name for table in handles.values()}) == len(handles) == 16
    assert set(tables.__all__) <= set(dir(tables))
