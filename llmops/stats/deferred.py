"""``scipy.stats``, imported on first use.

Importing SciPy's statistics takes most of a second, and every gate, report and verdict imports
``llmops.stats``; a promotion without an evaluation to compare, or a command that only reads,
never calls a test. ``stats`` here stands for the module and imports it when an attribute is
first read (``llmops.lazy.LazyModule``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.lazy import LazyModule

if TYPE_CHECKING:
    from scipy import stats
else:
    stats = LazyModule("scipy.stats")
