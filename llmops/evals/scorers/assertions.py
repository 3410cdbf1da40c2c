"""Deterministic assertions: the checks a CI would run on one output, and the scorer that counts them.

Each assertion (``equals``, ``contains``, ``json_schema``, ``max_cost``, …; their models live with
the datasets) either holds or not, with a reason a reviewer can act on. ``AssertionScorer``
scores the fraction that hold rather than all-or-nothing, so a version passing more checks
scores higher and the paired comparison of two versions sees it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmops.evals.datasets import (
    Assertion,
    Contains,
    Equals,
    EvalExample,
    JsonSchema,
    JsonValid,
    MaxCost,
    MaxLatency,
    MaxLength,
    NotContains,
    Regex,
)
from llmops.evals.scorers.base import Score, Scorer, ScorerInput, parse_json


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """Whether one assertion held, and why (or why not)."""

    passed: bool
    reason: str


def _phrases(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _check_json_schema(schema: dict[str, Any], text: str) -> AssertionResult:
    try:
        import jsonschema
    except ImportError as exc:
        raise RuntimeError("json_schema assertions need the jsonschema package: pip install jsonschema") from exc
    data, error = parse_json(text)
    if error:
        return AssertionResult(False, error)
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return AssertionResult(True, "JSON matches the schema")
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(root)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return AssertionResult(False, f"JSON does not match the schema at {where}: {first.message}{more}")


def check_assertion(assertion: Assertion, output: ScorerInput) -> AssertionResult:
    """Whether one deterministic check holds for ``output``, and why (or why not).

    A cost or latency limit fails when the cost or latency is unknown: it is never assumed 0.

    Args:
        assertion: One of an example's (or a scorer configuration's) assertions.
        output: The answer, with its cost and latency.

    Returns:
        The result, with a one-line reason.

    Raises:
        RuntimeError: For a ``json_schema`` assertion when ``jsonschema`` is not installed.

    Example:
        >>> from llmops.evals.datasets import Contains
        >>> check_assertion(Contains(type="contains", value="30 days"), ScorerInput(text="Within 30 days."))
        AssertionResult(passed=True, reason="contains '30 days'")
    """
    text = output.text
    match assertion:
        case Equals(value=value, ignore_case=ignore_case):
            ok = _fold(text.strip(), ignore_case) == _fold(value.strip(), ignore_case)
            return AssertionResult(ok, "output equals the expected text" if ok else f"output is not {value!r}")
        case Contains(value=value, ignore_case=ignore_case):
            haystack = _fold(text, ignore_case)
            missing = [p for p in _phrases(value) if _fold(p, ignore_case) not in haystack]
            return AssertionResult(not missing, f"missing {missing!r}" if missing else f"contains {value!r}")
        case NotContains(value=value, ignore_case=ignore_case):
            haystack = _fold(text, ignore_case)
            found = [p for p in _phrases(value) if _fold(p, ignore_case) in haystack]
            return AssertionResult(not found, f"contains {found!r}" if found else f"does not contain {value!r}")
        case Regex(value=pattern, ignore_case=ignore_case):
            ok = re.search(pattern, text, re.IGNORECASE if ignore_case else 0) is not None
            return AssertionResult(ok, f"{'matches' if ok else 'does not match'} /{pattern}/")
        case JsonValid():
            _, error = parse_json(text)
            return AssertionResult(error is None, error or "valid JSON")
        case JsonSchema(value=schema):
            return _check_json_schema(schema, text)
        case MaxLength(value=limit):
            ok = len(text) <= limit
            return AssertionResult(ok, f"{len(text)} characters {'<=' if ok else '>'} {limit}")
        case MaxCost(value=limit):
            if output.cost_usd is None:
                return AssertionResult(False, "cost unknown (the model is not priced), so not within the limit")
            ok = float(output.cost_usd) <= limit
            return AssertionResult(ok, f"cost ${float(output.cost_usd):.6f} {'<=' if ok else '>'} ${limit}")
        case MaxLatency(value=limit):
            if output.latency_ms is None:
                return AssertionResult(False, "latency not recorded")
            ok = output.latency_ms <= limit
            return AssertionResult(ok, f"latency {output.latency_ms:.0f} ms {'<=' if ok else '>'} {limit:.0f} ms")
    raise TypeError(f"not an assertion: {assertion!r}")


class AssertionScorer(Scorer):
    """The fraction of an example's assertions (plus the config's, for every example) that hold.

    A fraction rather than all-or-nothing, so that a version passing more checks scores higher
    and the paired comparison of two versions sees it; the threshold decides pass/fail.

    Args:
        extra: Assertions checked on every example, in addition to its own (a cost budget).
        name: The metric the score is stored under.

    Example:
        >>> from llmops.evals.datasets import EvalExample
        >>> case = EvalExample.model_validate(
        ...     {"id": "refund", "input": "Can I get a refund?", "assertions": [{"type": "contains", "value": "30 days"}]}
        ... )
        >>> AssertionScorer().score(case, ScorerInput(text="Within 30 days.")).reason
        '1/1 assertions passed'
    """

    def __init__(self, extra: Sequence[Assertion] = (), name: str = "assertions") -> None:
        self.name = name
        self.extra = list(extra)

    def applies(self, example: EvalExample) -> bool:
        """Whether there is anything to check: the example's assertions or the extra ones."""
        return bool(self.extra or example.assertions)

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        """The fraction of the checks that hold, each one's result in ``details``."""
        checks = [*self.extra, *example.assertions]
        if not checks:
            raise ValueError(f"example {example.id!r} has no assertions to score")
        results = [(assertion, check_assertion(assertion, output)) for assertion in checks]
        passed = sum(result.passed for _, result in results)
        failed = [f"{assertion.type}: {result.reason}" for assertion, result in results if not result.passed]
        reason = f"{passed}/{len(results)} assertions passed" + (f"; failed: {'; '.join(failed)}" if failed else "")
        details = {
            "assertions": [
                {"type": assertion.type, "passed": result.passed, "reason": result.reason} for assertion, result in results
            ]
        }
        return Score(passed / len(results), reason, details)
