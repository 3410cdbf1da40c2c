"""What every scorer takes and gives: a ``ScorerInput`` in, a ``Score`` in [0, 1] out.

The contract lives apart from the scorers so each kind (assertions, similarity, the judge) and
the per-prompt configuration that builds them depend on it alone, not on one another. It also
owns reading an output as JSON, which assertions check and similarity looks inside.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llmops.evals.datasets import EvalExample
from llmops.pricing import TokenUsage


@dataclass(frozen=True, slots=True)
class ScorerInput:
    """One output of the model under evaluation, with what the call cost and took.

    Args:
        text: The model's answer.
        model: The model that answered, when known.
        cost_usd: What the call cost; None when it could not be priced (never read as 0).
        latency_ms: How long the call took, when recorded.
        usage: The call's token counts, when known.

    Example:
        >>> ScorerInput(text="Refunds within 30 days.", cost_usd=0.0004).text
        'Refunds within 30 days.'
    """

    text: str
    model: str | None = None
    cost_usd: Decimal | float | None = None
    """None when the call could not be priced (unknown model); never read as 0."""
    latency_ms: float | None = None
    usage: TokenUsage | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one output: a value in [0, 1], a reason, and what backs it.

    Args:
        value: The score, 0 (worst) to 1 (best).
        reason: One line a reviewer reads next to the score.
        details: Anything else worth keeping (each assertion's result, the judge's model and cost).

    Raises:
        ValueError: If ``value`` is not a finite number in [0, 1].

    Example:
        >>> Score(0.75, "3/4 assertions passed").value
        0.75
    """

    value: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.value, int | float) and math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise ValueError(f"a score is a number in [0, 1], got {self.value!r}")


class Scorer(ABC):
    """Scores one output; ``applies`` says whether the example has what the scorer needs.

    Subclasses set ``name`` (the metric the score is stored under) and implement ``score``;
    only scorers that do I/O (the judge) override ``ascore``.

    Example:
        ```python
        class Short(Scorer):
            name = "short"

            def score(self, example: EvalExample, output: ScorerInput) -> Score:
                return Score(float(len(output.text) < 200), "under 200 characters")
        ```
    """

    name: str

    def applies(self, example: EvalExample) -> bool:
        """Whether this scorer can score ``example`` (a similarity scorer needs ``expected``)."""
        return True

    @abstractmethod
    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        """The score of ``output`` as an answer to ``example``."""

    async def ascore(self, example: EvalExample, output: ScorerInput) -> Score:
        """The async runner's entry point; only scorers that do I/O override it."""
        return self.score(example, output)


def parse_json(text: str) -> tuple[Any, str | None]:
    """The output as JSON (surrounding whitespace allowed, nothing else), or the parse error.

    Args:
        text: A model's output.

    Returns:
        ``(value, None)`` when ``text`` is one JSON document, else ``(None, reason)``.

    Example:
        >>> parse_json(' {"a": 1} ')
        ({'a': 1}, None)
        >>> parse_json("Sure! {}")[1]
        'not JSON: Expecting value at line 1 column 1'
    """
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
