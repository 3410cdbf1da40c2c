"""Names loaded on first use, so a command that only reads the store starts fast (issue 14).

A command that resolves a prompt must not pay for the Anthropic SDK, the scorers, SciPy or the
tables of every feature. Every lazy name in llmops is made here, in one of two shapes:

- ``lazy_exports``: a package's names, each read from its module the first time it is used
  (the package's ``__getattr__`` and ``__dir__``, PEP 562);
- ``LazyModule``: a module imported when one of its attributes is first read, for a module
  bound at import time (``from llmops.stats import scipy_stats``).

Both import with ``importlib.import_module``, so threads share one import. Type checkers see
the real names: import them under ``if TYPE_CHECKING:`` and make the lazy ones under its
``else:``, so a misspelt name is still an error to mypy. This module imports nothing from
llmops, so every package may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: each of ``exports`` is read from its module on first use.

    The value read is then set on the package, so later reads are plain attribute reads.

    Args:
        package: The package's ``__name__``.
        exports: Each name and the module that defines it.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's top level.

    Example:
        ```python
        if TYPE_CHECKING:
            from llmops.evals.datasets import Dataset
        else:
            __getattr__, __dir__ = lazy_exports(__name__, {"Dataset": "llmops.evals.datasets"})
        ```
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


class LazyModule:
    """Stands for the module ``name``; reading an attribute imports it (once) and reads it there.

    Example:
        >>> LazyModule("math").sqrt(9.0)
        3.0
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
