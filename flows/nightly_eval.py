"""The ``nightly-eval`` flow: every prompt's production and canary versions on their datasets.

Two questions each night, per prompt and dataset:
- has production regressed against its own reference run (its first complete run on the same
  dataset content)? With the version and the dataset unchanged, that is the provider's model
  changing under its pinned id; runs therefore refresh the cache by default;
- has the canary regressed against production (production's latest complete run)?
Either regression emits ``llmops.eval.regression``; an incomplete run (an outage) never does.
One task run per version and dataset: the runner does the fan-out to the model inside it, and
with ``LLMOPS_DASK_ADDRESS`` set the versions and datasets fan out over a Dask cluster.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from llmops import settings
from llmops.evals.datasets import dataset_paths
from llmops.evals.runner import RunSettings
from llmops.evals.store import RunRecord
from llmops.evals.verdicts import Comparison, VerdictPolicy
from llmops.prompts import prompt_names
from llmops.release.gates import baseline_run
from llmops.release.registry import PRODUCTION, Registry, get_registry
from llmops.text import markdown_code, markdown_escape
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.artifact_keys import artifact_key
from prefect_llmops.tasks.common import store_engine
from prefect_llmops.tasks.evals import CANARY_CHECK, PRODUCTION_CHECK, compare_task, emit_regression, evaluate_version

SUMMARY_KEY = "nightly-eval"


class EvalRunsFailed(RuntimeError):
    """Some evaluations could not run (not an outage, which ends a run incomplete); the others did."""


def prompt_artifact_key(prompt_name: str) -> str:
    """One artifact history per prompt."""
    return artifact_key("nightly-eval", prompt_name)


def _row(label: str, run: RunRecord, comparison: Comparison | None) -> dict[str, Any]:
    worst = (
        min(comparison.metrics, key=lambda m: m.delta if m.delta is not None else 0.0)
        if comparison and comparison.metrics
        else None
    )
    return {
        "dataset": run.dataset_name,
        "label": label,
        "version": run.prompt_version,
        "run": run.id,
        "status": run.status,
        "cases": f"{run.cases_done}/{run.cases_total}",
        "cost_usd": round(float(run.cost_usd), 6),
        "scores": ", ".join(f"{metric} {mean:.3f}" for metric, mean in run.metric_means().items()) or "–",
        "compared_with": f"run {comparison.baseline.id} ({comparison.baseline.prompt_version})" if comparison else "–",
        "verdict": comparison.verdict if comparison else ("no reference yet" if run.status == "complete" else "–"),
        "worst_delta": f"{worst.metric} {worst.delta:+.3f}" if worst and worst.delta is not None else "–",
        "note": run.status_reason or (comparison.reason if comparison else ""),
    }


def _line(name: str, kind: str, comparison: Comparison) -> str:
    candidate, baseline = comparison.candidate, comparison.baseline
    md = markdown_escape  # names, versions, datasets and reasons are data
    who = (
        f"canary {md(candidate.prompt_version)} vs production {md(baseline.prompt_version)}"
        if kind == CANARY_CHECK
        else (f"production {md(candidate.prompt_version)} vs its reference run {md(baseline.id)}")
    )
    details = md("; ".join(comparison.regression_changes()))
    verdict = f"**{md(comparison.verdict)}**" + (f" — {details}" if details else f" — {md(comparison.reason)}")
    return (
        f"- **{md(name)}** {who} on {markdown_code(candidate.dataset_name)}: {verdict} "
        f"(run {md(candidate.id)} vs run {md(baseline.id)})"
    )


def missing_dask() -> str | None:
    """Why ``LLMOPS_DASK_ADDRESS`` cannot be honoured, or None. Said when the flow runs, not when it
    is imported: an import error would stop ``prefect deploy`` of every other flow too."""
    if not settings.env(settings.LLMOPS_DASK_ADDRESS) or importlib.util.find_spec("prefect_dask") is not None:
        return None
    return f"{settings.LLMOPS_DASK_ADDRESS} is set but prefect-dask is not installed: pip install 'prefect-llmops[dask]'"


def eval_task_runner() -> TaskRunner[Any]:
    """Where the per-version evaluations run: one at a time in the flow's process (each already
    makes ``concurrency`` calls at once), or, with ``LLMOPS_DASK_ADDRESS`` set, on that Dask
    cluster, one version and dataset per worker at the same time. Workers need the store by URL
    (PostgreSQL), the prompt and eval files, and the model's key or address in their environment."""
    address = settings.env(settings.LLMOPS_DASK_ADDRESS)
    if not address or missing_dask():
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


@flow(
    name="nightly-eval",
    description="Evaluate every prompt's production and canary versions; alert on regressions (nightly; by hand before a promotion).",
    task_runner=eval_task_runner(),
)
def nightly_eval(
    prompts: list[str] | None = None,
    environment: str = PRODUCTION,
    concurrency: int = 16,
    repeats: int = 1,
    mode: Literal["live", "batch"] = "live",
    cache: Literal["use", "refresh", "off"] = "refresh",
    tolerance: float = 0.02,
    store_block: str | None = None,
    model_block: str | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``prompts`` (default: every prompt with a production version) and compare.

    Every evaluation is submitted to the flow's task runner first (see ``eval_task_runner``),
    then the comparisons are made in order as the runs finish. Returns one line per comparison;
    the UI shows a table per prompt and a markdown summary. Fails at the end (after evaluating
    everything else) if some version could not be run.
    """
    if problem := missing_dask():
        raise RuntimeError(problem)
    logger = get_run_logger()
    store = TraceStore.load(store_block) if store_block else None
    model = AnthropicModel.load(model_block) if model_block else None
    engine = store_engine(store)
    registry = Registry(engine) if store is not None else get_registry()
    run_settings = RunSettings(concurrency=concurrency, repeats=repeats, mode=mode, cache=cache)
    policy = VerdictPolicy(tolerance=tolerance)
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    failures: list[str] = []

    planned: list[tuple[str, list[str], list[Path]]] = []
    evaluations: dict[tuple[str, str, Path], PrefectFuture[RunRecord]] = {}
    for name in prompts or prompt_names():
        labels = registry.labels(name, environment)
        if labels.production is None:
            logger.info("%s: no production version in %s, nothing to evaluate", name, environment)
            continue
        try:
            paths = dataset_paths(name)
        except FileNotFoundError as exc:
            lines.append(f"- **{name}**: not evaluated, {exc}")
            continue
        versions = [labels.production] + ([labels.canary] if labels.canary and labels.canary != labels.production else [])
        planned.append((name, versions, paths))
        for path in paths:
            for version in versions:
                evaluations[(name, version, path)] = evaluate_version.submit(name, version, path, run_settings, store, model)

    def finished(name: str, version: str, path: Path) -> RunRecord | None:
        try:
            return evaluations[(name, version, path)].result()
        except Exception as exc:
            failures.append(f"{name} {version} on {path.stem}: {exc}")
            return None

    for name, versions, paths in planned:
        rows: list[dict[str, Any]] = []
        for path in paths:
            # Every submitted run is read, so a canary's failure is reported even when production's run failed too.
            production, *canaries = (finished(name, version, path) for version in versions)
            if production is None:
                continue
            checks: list[tuple[str, RunRecord, Comparison | None]] = []
            reference = baseline_run(engine, production, registry, environment) if production.status == "complete" else None
            checks.append(
                (PRODUCTION_CHECK, production, compare_task(reference.id, production.id, policy, store) if reference else None)
            )
            rows.append(_row("production", production, checks[-1][2]))
            for canary in canaries:
                if canary is not None:
                    against = baseline_run(engine, canary, registry, environment)
                    checks.append((CANARY_CHECK, canary, compare_task(against.id, canary.id, policy, store) if against else None))
                    rows.append(_row("canary", canary, checks[-1][2]))
            for kind, checked, comparison in checks:
                if comparison is None:
                    lines.append(
                        f"- **{markdown_escape(name)}** {kind.replace('_', ' ')} on {markdown_code(path.stem)}: "
                        f"run {markdown_escape(checked.id)} {markdown_escape(checked.status)}, nothing to compare with"
                    )
                    continue
                lines.append(_line(name, kind, comparison))
                results.append({"prompt": name, "check": kind, **comparison.to_dict()})
                if comparison.verdict == "regression":
                    emit_regression(comparison, kind, environment)
        if rows:
            create_table_artifact(
                key=prompt_artifact_key(name), table=rows, description=f"Nightly evaluation of {name} in {environment}"
            )
    regressions = sum(result["verdict"] == "regression" for result in results)
    headline = f"{regressions} regression(s)" if regressions else "no regressions"
    create_markdown_artifact(
        key=SUMMARY_KEY,
        markdown="\n".join(
            [f"## Nightly evaluation: {headline}", "", *lines, *(f"- could not run: {markdown_escape(f)}" for f in failures)]
        ),
        description=f"Nightly evaluation in {environment}: {headline}",
    )
    if failures:
        raise EvalRunsFailed("; ".join(failures))
    return results
