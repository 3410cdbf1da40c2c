"""Evaluation as Prefect tasks: one task run per prompt version and dataset (the runner fans out
to hundreds of concurrent calls inside it), the comparison, and the ``llmops.eval.regression`` event.

No task retries on the run: the runner already retries each call within its bounds, and a
rerun would pay for the whole dataset again. Comparing retries (a store blip).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from llmops.evals.datasets import load_dataset
from llmops.evals.runner import RunSettings, async_client, evaluate
from llmops.evals.store import RunRecord
from llmops.evals.verdicts import Comparison, VerdictPolicy, compare_runs
from llmops.prompts import PromptVersion, get_prompt
from llmops.release.rollouts import resource_id
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import QUICK, current_flow_run_id, store_engine

REGRESSION_EVENT = "llmops.eval.regression"
PRODUCTION_CHECK = "production_vs_reference"
CANARY_CHECK = "canary_vs_production"


def model_client(model: AnthropicModel | None) -> anthropic.AsyncAnthropic:
    """The block's key and endpoint (its model field is unused: each version runs its pinned model)."""
    if model is None:
        return async_client()
    return async_client(model.api_key.get_secret_value() if model.api_key else None, model.base_url)


def _evaluate(
    prompt: PromptVersion,
    dataset_path: Path,
    settings: RunSettings,
    store: TraceStore | None,
    model: AnthropicModel | None,
    created_by: str,
) -> RunRecord:
    """Run one version on one dataset (every case, inside the calling task run) and record it."""
    logger = get_run_logger()
    dataset = load_dataset(dataset_path, prompt.name)
    details = {"flow_run_id": current_flow_run_id()}

    async def run() -> RunRecord:
        async with model_client(model) as client:
            return await evaluate(
                prompt, dataset, engine=store_engine(store), client=client, settings=settings,
                created_by=created_by, details=details, evals_dir=dataset_path.parent.parent,
            )  # fmt: skip

    record = asyncio.run(run())
    logger.info(
        "run %s: %s on %s: %s, %d/%d cases, $%.4f%s", record.id, prompt.ref, dataset.name, record.status,
        record.cases_done, record.cases_total, record.cost_usd, f" ({record.status_reason})" if record.status_reason else "",
    )  # fmt: skip
    return record


@task(name="evaluate-version", task_run_name="eval-{prompt_name}-{version}-{dataset_path.stem}", cache_policy=NO_CACHE)
def evaluate_version(
    prompt_name: str,
    version: str,
    dataset_path: Path,
    settings: RunSettings,
    store: TraceStore | None = None,
    model: AnthropicModel | None = None,
) -> RunRecord:
    """Run one version from its file on one dataset and record it."""
    return _evaluate(get_prompt(prompt_name, version), dataset_path, settings, store, model, "nightly-eval")


@task(name="evaluate-prompt", task_run_name="eval-{label}-{dataset_path.stem}", cache_policy=NO_CACHE)
def evaluate_prompt(
    prompt: PromptVersion,
    label: str,
    dataset_path: Path,
    settings: RunSettings,
    created_by: str,
    store: TraceStore | None = None,
    model: AnthropicModel | None = None,
) -> RunRecord:
    """Run a version that may exist only in memory (a compression candidate) on one dataset."""
    return _evaluate(prompt, dataset_path, settings, store, model, created_by)


@task(
    name="compare-runs",
    task_run_name="compare-{baseline_id}-{candidate_id}",
    **QUICK.options(),
    cache_policy=NO_CACHE,
)
def compare_task(baseline_id: int, candidate_id: int, policy: VerdictPolicy, store: TraceStore | None = None) -> Comparison:
    comparison = compare_runs(store_engine(store), baseline_id, candidate_id, policy)
    get_run_logger().info("run %s vs run %s: %s (%s)", candidate_id, baseline_id, comparison.verdict, comparison.reason)
    return comparison


def emit_regression(comparison: Comparison, kind: str, environment: str) -> None:
    """``llmops.eval.regression`` on ``llmops.prompt.<name>``: the worst metric, its delta and interval, both runs.

    ``kind`` (``canary_vs_production`` or ``production_vs_reference``) and the label checked are
    resource labels too, so an automation can roll back a regressed canary only (a production
    version that regressed against itself is the provider's model changing: rolling back to the
    previous version does not undo that).
    """
    worst = min(comparison.regressions, key=lambda metric: metric.delta or 0.0)
    candidate, baseline = comparison.candidate, comparison.baseline
    run_id = current_flow_run_id()
    emit_event(
        event=REGRESSION_EVENT,
        resource={
            "prefect.resource.id": resource_id(candidate.prompt_name),
            "prefect.resource.name": candidate.prompt_name,
            "llmops.environment": environment,
            "llmops.prompt.version": candidate.prompt_version,
            "llmops.prompt.label": "canary" if kind == CANARY_CHECK else "production",
            "llmops.eval.comparison": kind,
        },
        related=[{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}] if run_id else [],
        payload={
            "metric": worst.metric,
            "delta": worst.delta,
            "interval": list(worst.interval or ()),
            "comparison": kind,
            "candidate_run_id": candidate.id,
            "baseline_run_id": baseline.id,
            "candidate_version": candidate.prompt_version,
            "baseline_version": baseline.prompt_version,
            "dataset": candidate.dataset_name,
            "dataset_hash": candidate.dataset_hash,
            "regressed": [metric.to_dict() for metric in comparison.regressions],
            "reason": comparison.reason,
        },
    )
