"""Gates: may a candidate prompt version move on? The verdict type and every gate a rollout asks.

A rollout asks its gates at every step, and each answers with a ``GateResult``: the evaluation
gate (the candidate's latest complete eval run against the baseline's, per dataset), the trace
gate (candidate against control over the step's window, within the plan's tolerances) and, at
the end of an A/B split, the A/B report's decision. The gates know nothing of the rollout that
asks them: each is handed what it judges (``EvalGateContext``, ``TraceGateContext``), so the
state machine in ``llmops.release.rollouts`` depends on them and never the other way round.
``baseline_run`` is the run a version's evaluation is compared with by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, case, func, select

from llmops.evals.store import RunRecord, find_runs
from llmops.evals.verdicts import Comparison, VerdictPolicy, combined_verdict, compare_runs
from llmops.money import PICO
from llmops.release.experiments import (
    CORE_METRICS,
    ABReport,
    ArmSample,
    MetricComparison,
    Tolerances,
    UserHistory,
    arm_samples_from_traces,
    compare_arms,
    gate_verdict,
    with_history,
)
from llmops.release.registry import PRODUCTION, Registry
from llmops.store.models import Trace

GATE_RUNS_LOOKED_AT = 50
"""The candidate's latest complete runs the gate reads to find each dataset it was evaluated on."""

GateVerdict = Literal["pass", "fail", "wait", "missing", "forced"]
ABDirection = Literal["candidate", "baseline", "undecided"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict, a one-line summary and its table (one row per metric) for artifacts.

    ``fail`` and ``missing`` stop a rollout, ``wait`` holds it, ``pass`` and ``forced`` (an
    evaluation skipped on purpose, recorded in the audit log) let it go on.

    Example:
        >>> GateResult("traces", "wait", "waiting for traffic").to_dict()
        {'gate': 'traces', 'verdict': 'wait', 'summary': 'waiting for traffic', 'rows': []}
    """

    gate: str
    verdict: GateVerdict
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as stored with the rollout (JSON-ready)."""
        return {"gate": self.gate, "verdict": self.verdict, "summary": self.summary, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """A result read back from ``to_dict``'s form."""
        return cls(data["gate"], data["verdict"], data["summary"], list(data.get("rows", [])))


# -- the evaluation gate ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvalGateContext:
    """What an evaluation gate is asked: is ``candidate`` not worse than ``baseline``?

    Example:
        ```python
        context = EvalGateContext(engine, "support-chat", candidate="1.3.0", baseline="1.2.0", environment="production")
        eval_gate(context).verdict  # "pass", "fail" or "missing"
        ```
    """

    engine: Engine
    prompt_name: str
    candidate: str
    baseline: str | None
    environment: str


EvalGate = Callable[[EvalGateContext], GateResult]
"""Verdict ``pass``, ``fail`` (evaluated and worse) or ``missing`` (no complete evaluation to judge by)."""


def baseline_run(engine: Engine, candidate: RunRecord, registry: Registry, environment: str = PRODUCTION) -> RunRecord | None:
    """The run an eval run is compared with by default.

    That is the production version's latest complete run on the same dataset content. When the
    candidate is the production version itself, it is its reference run instead: the earliest
    complete run of the version on that content, so a provider-side change shows as drift.

    Args:
        engine: The store.
        candidate: The run to compare.
        registry: Where the production version is read.
        environment: Whose production version.

    Returns:
        The baseline run, or None when there is no production version or it has no other
        complete run on that content.

    Example:
        ```python
        run = find_runs(engine, "support-chat", version="1.3.0")[0]
        baseline = baseline_run(engine, run, Registry(engine))
        ```
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


def _subsets(runs: list[RunRecord]) -> str:
    return "; ".join(
        f"run {run.id} on {run.dataset_name} saw {run.subset['size']} of {run.subset['of']} examples" if run.subset else ""
        for run in runs
    )


def eval_gate(context: EvalGateContext, policy: VerdictPolicy | None = None) -> GateResult:
    """The rollouts' evaluation gate, from eval runs.

    On each dataset the candidate was evaluated on, its latest complete run is compared with the
    baseline version's latest complete run on the same content. An incomplete run (an outage)
    is neither a regression nor a pass, and a subset run (``eval run --limit/--sample``) is not
    counted at all; the summary says so.

    Args:
        context: The candidate, its baseline and the store.
        policy: How a regression is judged; the default ``VerdictPolicy`` when None.

    Returns:
        ``fail`` on a regression on any dataset, naming metric, delta and interval; ``missing``
        when the candidate has no complete run, or too few pairs to judge; ``pass`` otherwise,
        including when the baseline has no run on those datasets to compare with (the summary
        says so too).

    Example:
        ```python
        result = eval_gate(EvalGateContext(engine, "support-chat", "1.3.0", "1.2.0", "production"))
        print(result.verdict, result.summary)
        ```
    """
    policy = policy or VerdictPolicy()
    engine, name, version = context.engine, context.prompt_name, context.candidate
    latest: dict[str, RunRecord] = {}
    unfinished: list[RunRecord] = []
    subsets: list[RunRecord] = []
    for run in find_runs(engine, name, version=version, status=None, limit=GATE_RUNS_LOOKED_AT):
        if run.subset is not None:  # a quick run on part of a dataset never judges a version
            subsets.append(run)
        elif run.status == "complete":
            latest.setdefault(run.dataset_hash, run)
        elif run.status != "running" and run.dataset_hash not in latest:
            unfinished.append(run)
    not_counted = (
        f"; not counted: {_unfinished(unfinished)} — an incomplete run is neither a regression nor a pass"
        if unfinished else ""
    )  # fmt: skip
    if subsets:
        not_counted += f"; not counted: {_subsets(subsets)} — only a run on a whole dataset judges a version"
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
    result: GateVerdict = "missing" if verdict == "inconclusive" else "pass"
    return GateResult("evaluation", result, summary + not_counted, rows)


def checked_eval_gate(gate: EvalGate, context: EvalGateContext, force: bool) -> GateResult:
    """Ask ``gate``, turning a missing evaluation into ``forced`` when the plan says to promote anyway.

    A regression (``fail``) is never forced.

    Args:
        gate: The evaluation gate to ask.
        context: What it is asked.
        force: The plan's ``force_without_eval``.

    Returns:
        The gate's result, or a ``forced`` copy of a ``missing`` one whose summary says so.

    Example:
        ```python
        result = checked_eval_gate(eval_gate, context, force=True)
        result.verdict  # "forced" where eval_gate said "missing"
        ```
    """
    result = gate(context)
    if result.verdict == "missing" and force:
        return replace(result, verdict="forced", summary=f"{result.summary}; promoted anyway (force_without_eval)")
    return result


# -- the trace gate --------------------------------------------------------------------------------

TRACE_COLUMNS = (
    Trace.prompt_version,
    Trace.user_id,
    Trace.status,
    Trace.latency_ms,
    Trace.cost_usd,
    Trace.user_feedback,
    Trace.automated_eval_score,
    Trace.metadata_.label("metadata"),
)
"""What ``arm_samples_from_traces`` reads of a trace."""


def read_arm(
    engine: Engine,
    prompt_name: str,
    version: str,
    environment: str,
    start: datetime,
    end: datetime,
    outcomes: Sequence[str] = (),
) -> ArmSample:
    """One version's calls over ``[start, end]`` from the ``traces`` table (index ix_traces_prompt).

    Args:
        engine: The store.
        prompt_name: The prompt.
        version: The version whose calls make the arm.
        environment: Where they were served.
        start: The window's start, inclusive.
        end: The window's end, inclusive.
        outcomes: Numeric outcomes to read from trace metadata (``escalated``...).

    Returns:
        The arm's samples; empty when the version served no call in the window.

    Example:
        ```python
        arm = read_arm(engine, "support-chat", "1.3.0", "production", start, end, outcomes=["escalated"])
        len(arm.errors)  # the calls in the window
        ```
    """
    query = select(*TRACE_COLUMNS).where(
        Trace.prompt_name == prompt_name,
        Trace.prompt_version == version,
        Trace.environment == environment,
        Trace.timestamp >= start,
        Trace.timestamp <= end,
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return arm_samples_from_traces(rows, outcomes).get(version, ArmSample())


def read_user_history(engine: Engine, prompt_name: str, environment: str, before: datetime, days: int) -> UserHistory:
    """Each user's averages over the ``days`` before ``before``: their calls before a rollout.

    One grouped query over the prompt's calls (index ix_traces_prompt); anonymous calls have no
    history. Latency and cost are of successful calls, as in the arms.

    Args:
        engine: The store.
        prompt_name: The prompt, any version.
        environment: Where the calls were served.
        before: The rollout's start (excluded).
        days: How far back; 0 reads nothing.

    Returns:
        Per user id, the averages ``with_history`` attaches; empty for 0 days.

    Example:
        ```python
        history = read_user_history(engine, "support-chat", "production", rollout.created_at, days=7)
        history["user-17"]["costs"]  # 0.0031
        ```
    """
    if days <= 0:
        return {}
    ok = Trace.status != "error"
    columns = {
        "errors": func.avg(case((Trace.status == "error", 1.0), else_=0.0)),
        "latencies_ms": func.avg(case((ok, Trace.latency_ms))),
        "costs": func.avg(case((ok, Trace.cost_usd))),  # in stored picodollars: converted below
        "feedback": func.avg(Trace.user_feedback),
        "eval_scores": func.avg(Trace.automated_eval_score),
    }
    query = (
        select(Trace.user_id, *(column.label(name) for name, column in columns.items()))
        .where(
            Trace.prompt_name == prompt_name,
            Trace.environment == environment,
            Trace.timestamp >= before - timedelta(days=days),
            Trace.timestamp < before,
            Trace.user_id.is_not(None),
        )
        .group_by(Trace.user_id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    history: dict[str, dict[str, float]] = {}
    for row in rows:
        averages = {name: float(row[name]) for name in columns if row[name] is not None}
        if "costs" in averages:
            averages["costs"] /= float(PICO)
        if averages.get("latencies_ms", 0) > 0:
            averages["latencies_ms"] = math.log(averages["latencies_ms"])
        else:
            averages.pop("latencies_ms", None)
        history[row["user_id"]] = averages
    return history


@dataclass(frozen=True, slots=True)
class TraceGateContext:
    """What the trace gate is asked: does ``candidate`` do worse than ``baseline`` in the current step?

    ``traffic_percent`` and ``min_requests`` are the step's; ``step_started_at`` opens its window.

    Example:
        ```python
        context = TraceGateContext(
            engine, "support-chat", "1.3.0", "1.2.0", "production",
            step_started_at=started, traffic_percent=25, min_requests=300, tolerances=Tolerances(),
        )
        trace_gate(context, now)
        ```
    """

    engine: Engine
    prompt_name: str
    candidate: str
    baseline: str
    environment: str
    step_started_at: datetime
    traffic_percent: float
    min_requests: int
    tolerances: Tolerances
    rollout_started_at: datetime | None = None
    """Each caller's calls before it narrow the intervals (``Tolerances.history_days``); None: not used."""


def _calls(arm: ArmSample) -> int:
    return len(arm.errors)


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _failure(comparison: MetricComparison) -> str:
    control, candidate = _value(comparison.control_value), _value(comparison.candidate_value)
    evidence = f"; {comparison.evidence}" if comparison.evidence else ""
    return f"{comparison.metric} {control} → {candidate} (tolerance {comparison.tolerance}{evidence})"


def _evidence(comparisons: Sequence[MetricComparison]) -> str:
    """The sequential evidence of the core metrics, and the calls a verdict is still expected to take."""
    core = [comparison for comparison in comparisons if comparison.metric in CORE_METRICS and comparison.evidence]
    if not core:
        return ""
    text = "; ".join(f"{comparison.label}: {comparison.evidence}" for comparison in core)
    remaining = [comparison.calls_to_verdict for comparison in core if comparison.calls_to_verdict is not None]
    if remaining and all(comparison.verdict != "fail" for comparison in comparisons):
        text += f"; about {max(remaining):,} more calls to a verdict at the current estimates"
    return f" — {text}"


def trace_gate(context: TraceGateContext, now: datetime) -> GateResult:
    """Candidate vs control over the current step's window, within the plan's tolerances.

    Control is the baseline in the same window; on a 100 % step (blue-green's last) the baseline
    serves nobody, so it is the baseline over the same length of time just before the step.
    Sequentially (the default), the gate is asked at every look: it fails as soon as harm beyond
    a tolerance is shown, passes as soon as no harm is shown on error rate, latency and cost, and
    otherwise passes once the step has had its minimum candidate traffic with no harm shown (an early
    pass also needs ``min_users_for_early_pass`` candidate users, so one busy user is not enough). With
    ``method="fixed"`` a failure counts at once (its interval already excludes noise) and a pass
    needs the step's minimum candidate traffic: fail fast, pass slowly. Each caller's calls
    before the rollout (``history_days``) narrow the intervals.

    Args:
        context: The versions, the step and the tolerances.
        now: The end of the window.

    Returns:
        ``fail`` naming each metric beyond tolerance, ``wait`` while traffic or data are too few
        to judge, ``pass`` otherwise; one row per metric, with the evidence so far.

    Example:
        ```python
        result = trace_gate(context, datetime.now(UTC))
        [row["metric"] for row in result.rows]  # error_rate, p95_latency_ms, ...
        ```
    """
    start, tolerances = context.step_started_at, context.tolerances
    outcomes = sorted(tolerances.outcomes)
    control_start, control_end = (start - (now - start), start) if context.traffic_percent >= 100 else (start, now)
    name, environment = context.prompt_name, context.environment
    candidate = read_arm(context.engine, name, context.candidate, environment, start, now, outcomes)
    control = read_arm(context.engine, name, context.baseline, environment, control_start, control_end, outcomes)
    if tolerances.history_days and context.rollout_started_at is not None:
        history = read_user_history(context.engine, name, environment, context.rollout_started_at, tolerances.history_days)
        candidate, control = with_history(candidate, history), with_history(control, history)
    comparisons = compare_arms(control, candidate, tolerances)
    rows = [comparison.as_dict() for comparison in comparisons]
    counts = f"{_calls(candidate)} candidate / {_calls(control)} control requests"
    verdict, evidence = gate_verdict(comparisons), _evidence(comparisons)
    if verdict == "fail":
        worse = ", ".join(_failure(comparison) for comparison in comparisons if comparison.verdict == "fail")
        return GateResult("traces", "fail", f"candidate worse than control beyond tolerance: {worse} ({counts})", rows)
    users = len(set(candidate.users.get("errors", [])))
    if verdict == "pass" and tolerances.method == "sequential" and users >= tolerances.min_users_for_early_pass:
        return GateResult("traces", "pass", f"no harm shown, before the step's minimum traffic ({counts}){evidence}", rows)
    if _calls(candidate) < context.min_requests:
        return GateResult(
            "traces", "wait",
            f"waiting for traffic: {counts}, the step needs {context.min_requests} candidate requests{evidence}", rows,
        )  # fmt: skip
    if verdict == "not_enough_data":
        return GateResult(
            "traces",
            "wait",
            f"not enough data to compare yet ({counts}; the gate needs {tolerances.min_samples_per_arm} per arm)",
            rows,
        )
    return GateResult("traces", "pass", f"within tolerances ({counts}){evidence}", rows)


# -- the A/B decision ------------------------------------------------------------------------------


def ab_decision(report: ABReport, baseline: str, candidate: str) -> ABDirection:
    """Which way an A/B report points.

    A version wins when it wins at least one metric while the other wins none; mixed or no
    winners leave it to a person.

    Args:
        report: The A/B report of the two versions.
        baseline: The version serving before the split.
        candidate: The version being tried.

    Returns:
        ``candidate``, ``baseline`` or ``undecided``.

    Example:
        ```python
        ab_decision(ab_report({"1.2.0": control, "1.3.0": candidate}), "1.2.0", "1.3.0")  # "candidate"
        ```
    """
    winners = {metric.winner for metric in report.metrics if metric.verdict == "winner"}
    if winners == {candidate}:
        return "candidate"
    if winners == {baseline}:
        return "baseline"
    return "undecided"


def ab_gate(report: ABReport, direction: ABDirection) -> GateResult:
    """The A/B report as a gate: ``pass`` when it decided for the candidate, else ``wait``.

    Args:
        report: The A/B report.
        direction: ``ab_decision``'s reading of it.

    Returns:
        The gate ``ab_report``, one row per metric with its verdict and winner.

    Example:
        ```python
        ab_gate(report, ab_decision(report, "1.2.0", "1.3.0")).summary  # "1.3.0 on error rate → candidate"
        ```
    """
    rows = [{"metric": metric.metric, "verdict": metric.verdict, "winner": metric.winner} for metric in report.metrics]
    won = [f"{metric.winner} on {metric.label}" for metric in report.metrics if metric.winner]
    summary = f"{'; '.join(won) or 'no winner on any metric'} → {direction}"
    return GateResult("ab_report", "pass" if direction == "candidate" else "wait", summary, rows)
