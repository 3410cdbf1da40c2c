"""The pinning audit: calls that did not run on the model their prompt version was tested with.

Evaluations, drift references and cost forecasts all assume a version runs on its pinned,
dated model. Three things break that silently, and each is a finding of the day:

- ``unpinned_model``: the call asked for an alias or an undated id (``claude-3-5-sonnet-latest``),
  which the provider may move to another snapshot at any time;
- ``off_pinned_model``: a dated model, but not the one the prompt version pins (a hard-coded
  model in the application, a fallback path, a config drift between services);
- ``response_model_differs``: a pinned request answered by another model id (a gateway's
  fallback, a provider-side substitution).

Pinned models come from the registry (released versions) and, for versions not registered
yet, from the prompt files. Whether an id is pinned is ``llmops.prompts.is_pinned_model``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, func, select

from llmops.days import day_bounds
from llmops.drift.history import TraceGroup, trace_group_columns
from llmops.prompts import is_pinned_model, load_prompts
from llmops.store.engine import read_only
from llmops.store.tables import PROMPT_VERSIONS, TRACES

EXAMPLES = 5
"""Trace ids kept per finding: enough to open a few calls, few enough for a Slack line."""

Problem = Literal["unpinned_model", "off_pinned_model", "response_model_differs"]
"""What is wrong with the calls (see the module's docstring)."""


@dataclass(frozen=True)
class PinningFinding:
    """Calls of one group (environment × feature × prompt version × requested model) with one problem.

    Attributes:
        group: The calls' group; its ``model`` is the model they asked for.
        problem: What is wrong with them.
        calls: How many calls have the problem.
        out_of: What ``calls`` is a share of: all the prompt version's calls (in that environment
            and feature) for a model problem, the group's own for a substituted answer.
        pinned_model: The model the version pins (None for calls without a known version).
        examples: A few of the calls' trace ids, oldest first.
        served_by: For ``response_model_differs``: calls per model that answered, most first.

    Example:
        >>> group = TraceGroup("production", "chat", "support-chat", "2.3.1", "claude-3-5-sonnet-latest")
        >>> finding = PinningFinding(group, "unpinned_model", 412, 2006, "claude-3-5-sonnet-20241022", [])
        >>> f"{finding.share:.1%}"
        '20.5%'
    """

    group: TraceGroup
    problem: Problem
    calls: int
    out_of: int
    pinned_model: str | None
    examples: list[str]
    served_by: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """``calls / out_of`` (0 when there is nothing to share)."""
        return self.calls / self.out_of if self.out_of else 0.0

    @property
    def summary(self) -> str:
        """The finding in words, e.g. "412 of 2,006 calls (20.5%) of support-chat 2.3.1 (production, chat) asked for …"."""
        who = f"of {self.group.prompt_name} {self.group.prompt_version}" if self.group.prompt_name else "without a prompt version"
        where = f"({self.group.environment}, {self.group.feature or 'no feature'})"
        counted = f"{self.calls:,} of {self.out_of:,} calls ({self.share:.1%}) {who} {where}"
        pinned = f"; the version pins {self.pinned_model}" if self.pinned_model else ""
        if self.problem == "unpinned_model":
            return f"{counted} asked for {self.group.model}, an alias or undated id the provider can move{pinned}"
        if self.problem == "off_pinned_model":
            return f"{counted} asked for {self.group.model}, not the pinned {self.pinned_model}"
        served = ", ".join(f"{model} ({count:,})" for model, count in self.served_by.items())
        return f"{counted} asked for {self.group.model} and were answered by {served}"


def pinned_models(engine: Engine, prompts_dir: Path | str | None = None) -> dict[tuple[str, str], str]:
    """Every prompt version's pinned model: registered versions, then prompt files not registered yet.

    A missing prompts directory is not an error here (a deployment may run from the registry alone).

    Args:
        engine: The store (its registry).
        prompts_dir: Where the prompt files are; the default prompts directory when None.

    Returns:
        ``{(prompt, version): pinned model}``; the registry's record wins over a file.

    Example:
        ```python
        pinned = pinned_models(engine)
        pinned[("support-chat", "2.3.1")]  # "claude-3-5-sonnet-20241022"
        ```
    """
    pinned: dict[tuple[str, str], str] = {}
    try:
        for name, versions in load_prompts(prompts_dir).items():
            for version, prompt in versions.items():
                pinned[(name, version)] = prompt.model
    except FileNotFoundError:
        pass
    with read_only(engine).connect() as connection:
        for row in connection.execute(select(PROMPT_VERSIONS.c.name, PROMPT_VERSIONS.c.version, PROMPT_VERSIONS.c.model)):
            pinned[(row.name, row.version)] = row.model  # the released record wins over a file
    return pinned


def audit_pinning(
    engine: Engine, day: date, zone: ZoneInfo, pinned: Mapping[tuple[str, str], str] | None = None, examples: int = EXAMPLES
) -> list[PinningFinding]:
    """Every pinning problem of the local ``day`` in ``zone``, per group, with example trace ids.

    An alias is reported as unpinned only (it is never the pinned id, and what it resolved to is
    in its response model).

    Args:
        engine: The store.
        day: The audited local day.
        zone: Where the day is cut.
        pinned: ``{(prompt, version): pinned model}``; ``pinned_models(engine)`` when None.
        examples: Trace ids kept per finding.

    Returns:
        The problems, by group.

    Example:
        ```python
        for problem in audit_pinning(engine, date(2025, 3, 19), ZoneInfo("Europe/Paris")):
            print(problem.summary, problem.examples)
        ```
    """
    pinned = pinned_models(engine) if pinned is None else pinned
    start, end = day_bounds(day, zone)
    in_day = (TRACES.c.timestamp >= start, TRACES.c.timestamp < end)
    keys = trace_group_columns()
    query = select(*keys, TRACES.c.response_model, func.count()).where(*in_day).group_by(*keys, TRACES.c.response_model)
    group_calls: dict[TraceGroup, int] = defaultdict(int)
    version_calls: dict[tuple[str, ...], int] = defaultdict(int)
    answered_by: dict[TraceGroup, dict[str, int]] = defaultdict(dict)
    with read_only(engine).connect() as connection:
        for *key, response_model, count in connection.execute(query):
            group = TraceGroup(*key)
            group_calls[group] += count
            version_calls[group[:-1]] += count
            if response_model is not None and response_model != group.model:
                answered_by[group][response_model] = answered_by[group].get(response_model, 0) + count

        def example_ids(group: TraceGroup, *conditions: ColumnElement[bool]) -> list[str]:
            matching = [column == value for column, value in zip(keys, group, strict=True)]
            rows = connection.execute(
                select(TRACES.c.trace_id).where(*in_day, *matching, *conditions).order_by(TRACES.c.timestamp).limit(examples)
            )
            return list(rows.scalars())

        findings = []
        for group, calls in sorted(group_calls.items()):
            pinned_model = pinned.get((group.prompt_name, group.prompt_version))
            of_version = version_calls[group[:-1]]
            if not is_pinned_model(group.model):
                findings.append(PinningFinding(group, "unpinned_model", calls, of_version, pinned_model, example_ids(group)))
                continue
            if pinned_model is not None and group.model != pinned_model:
                findings.append(PinningFinding(group, "off_pinned_model", calls, of_version, pinned_model, example_ids(group)))
            if served := answered_by.get(group):
                differs = TRACES.c.response_model != group.model
                ordered = dict(sorted(served.items(), key=lambda item: -item[1]))
                findings.append(
                    PinningFinding(
                        group,
                        "response_model_differs",
                        sum(served.values()),
                        calls,
                        pinned_model,
                        example_ids(group, differs),
                        ordered,
                    )
                )
    return findings
