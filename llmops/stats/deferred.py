"""``scipy.stats``, imported on first use.

Importing SciPy's statistics takes most of a second, and every gate, report and verdict imports
``llmops.stats``; a promotion without an evaluation to compare, or a command that only reads,
never calls a test. ``stats`` here stands for the module and imports it when an attribute is
first read (``importlib.import_module``, so threads share one import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


class Deferred:
    """Stands for the module ``name``; reading an attribute imports it (once) and reads it there.

    Example:
        >>> Deferred("math").sqrt(9.0)
        3.0
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    from scipy import stats
else:
    stats = Deferred("scipy.stats")
