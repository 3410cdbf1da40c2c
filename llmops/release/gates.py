"""Gates: may a candidate prompt version move on? The verdict types, and the evaluation gate.

A rollout asks its gates at every step: the evaluation gate here (the candidate's latest
complete eval run against the baseline's, per dataset), the trace gate and the A/B report in
``rollouts``. ``baseline_run`` is the run a version's evaluation is compared with by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine

from llmops.evals.store import RunRecord, find_runs
from llmops.evals.verdicts import Comparison, VerdictPolicy, combined_verdict, compare_runs
from llmops.release.registry import PRODUCTION, Registry

GATE_RUNS_LOOKED_AT = 50
"""The candidate's latest complete runs the gate reads to find each dataset it was evaluated on."""

GateVerdict = Literal["pass", "fail", "wait", "missing", "forced"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict, a one-line summary and its table (one row per metric) for artifacts."""

    gate: str
    verdict: GateVerdict
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "verdict": self.verdict, "summary": self.summary, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(data["gate"], data["verdict"], data["summary"], list(data.get("rows", [])))


@dataclass(frozen=True, slots=True)
class EvalGateContext:
    """What an evaluation gate is asked: is ``candidate`` not worse than ``baseline``?"""

    engine: Engine
    prompt_name: str
    candidate: str
    baseline: str | None
    environment: str


EvalGate = Callable[[EvalGateContext], GateResult]
"""Verdict ``pass``, ``fail`` (evaluated and worse) or ``missing`` (no complete evaluation to judge by)."""


def baseline_run(engine: Engine, candidate: RunRecord, registry: Registry, environment: str = PRODUCTION) -> RunRecord | None:
    """The default baseline: the production version's latest complete run on the same dataset content.

    When the candidate is the production version itself, its reference run: the earliest
    complete run of the version on that content, so a provider-side change shows as drift.
    """
    production = registry.labels(candidate.prompt_name, environment).production
    if production is None:
        return None
    runs = find_runs(
        engine, candidate.prompt_name, version=production, dataset_hash=candidate.dataset_hash,
        exclude=[candidate.id], newest_first=production != candidate.prompt_version,
    )  # fmt: skip
    return runs[0] if runs else None


def _unfinished(runs: list[RunRecord]) -> str:
    return "; ".join(
        f"run {run.id} on {run.dataset_name} is {run.status}" + (f" ({run.status_reason})" if run.status_reason else "")
        for run in runs
    )


def eval_gate(context: EvalGateContext, policy: VerdictPolicy | None = None) -> GateResult:
    """The rollouts' evaluation gate from eval runs: on each dataset the candidate was evaluated on,
    its latest complete run against the baseline version's latest complete run on the same content.

    ``fail`` on a regression on any dataset, naming metric, delta and interval; ``missing`` when
    the candidate has no complete run, or too few pairs to judge: an incomplete run (an outage)
    is neither a regression nor a pass, and the summary says so; ``pass`` otherwise, including
    when the baseline has no run on those datasets to compare with (the summary says so too).
    """
    policy = policy or VerdictPolicy()
    engine, name, version = context.engine, context.prompt_name, context.candidate
    latest: dict[str, RunRecord] = {}
    unfinished: list[RunRecord] = []
    for run in find_runs(engine, name, version=version, status=None, limit=GATE_RUNS_LOOKED_AT):
        if run.status == "complete":
            latest.setdefault(run.dataset_hash, run)
        elif run.status != "running" and run.dataset_hash not in latest:
            unfinished.append(run)
    not_counted = (
        f"; not counted: {_unfinished(unfinished)} — an incomplete run is neither a regression nor a pass"
        if unfinished else ""
    )  # fmt: skip
    if not latest:
        return GateResult(
            "evaluation", "missing",
            f"no complete eval run of {name} {version}{not_counted} (evaluate it: llmops eval run {name} --version {version})",
        )  # fmt: skip
    comparisons: list[Comparison] = []
    uncompared: list[str] = []
    for dataset_hash, candidate in latest.items():
        baselines = find_runs(engine, name, version=context.baseline, dataset_hash=dataset_hash) if context.baseline else []
        if baselines:
            comparisons.append(compare_runs(engine, baselines[0].id, candidate.id, policy))
        else:
            uncompared.append(f"run {candidate.id} on {candidate.dataset_name}")
    if not comparisons:
        against = f"{context.baseline} has no complete run on the same datasets" if context.baseline else "no baseline"
        return GateResult(
            "evaluation", "pass", f"evaluated ({', '.join(uncompared)}); nothing to compare with: {against}{not_counted}"
        )
    verdict = combined_verdict([comparison.verdict for comparison in comparisons])
    rows = [{"dataset": c.candidate.dataset_name, **row} for c in comparisons for row in c.rows()]
    if verdict == "regression":
        regressed = "; ".join(
            f"on {c.candidate.dataset_name} (run {c.candidate.id} vs run {c.baseline.id}): {', '.join(c.regression_changes())}"
            for c in comparisons if c.verdict == "regression"
        )  # fmt: skip
        summary = (
            f"{name} {version} regressed against {context.baseline} {regressed} "
            f"(mean paired difference, {policy.confidence:.0%} interval below -{policy.tolerance:g})"
        )
        return GateResult("evaluation", "fail", summary, rows)
    summary = "; ".join(
        f"run {c.candidate.id} vs run {c.baseline.id} on {c.candidate.dataset_name}: {c.verdict}, {c.reason}" for c in comparisons
    )
    gate_verdict = "missing" if verdict == "inconclusive" else "pass"
    return GateResult("evaluation", gate_verdict, summary + not_counted, rows)
