"""``llmops eval run`` (evaluate a prompt version on its datasets) and ``llmops eval compare``.

``run`` calls the same runner as the nightly-eval flow, in this process, with a progress bar on
stderr; after each run it compares with the default baseline (production's latest complete run
on the same dataset content). Exit status: 0 complete, 3 a run incomplete (an outage: never a
regression), 1 a run failed, or a regression with ``--fail-on-regression``; 2 usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmops.evals.datasets import Dataset, DatasetError, load_dataset, load_datasets, subset
from llmops.evals.runner import ModelUnavailable, RunProgress, RunSettings, run_eval
from llmops.evals.store import RunNotFound, RunRecord, list_runs
from llmops.evals.verdicts import Comparison, VerdictPolicy, compare_runs
from llmops.prompts import PromptFileError, PromptNotFoundError, PromptVersion, get_prompt
from llmops.release.gates import baseline_run
from llmops.release.registry import get_registry
from llmops.store.engine import get_engine
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, EXIT_PARTIAL, echo, errors, fail, print_json, print_table, safe_text


def _prompt(name: str, version: str | None) -> PromptVersion:
    """``version``, else the production version in the registry, else the latest file."""
    try:
        return get_prompt(name, version or get_registry().labels(name).production)
    except (PromptNotFoundError, PromptFileError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


def _datasets(name: str, path: Path | None) -> list[Dataset]:
    try:
        return [load_dataset(path, name)] if path else load_datasets(name)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None


def _summary(run: RunRecord, comparison: Comparison | None) -> dict[str, Any]:
    return {
        "run": run.id,
        "version": run.prompt_version,
        "dataset": run.dataset_name,
        "status": run.status,
        "cases": run.cases_total,
        "failed": run.cases_failed,
        "cached": run.cases_cached,
        "cost_usd": float(run.cost_usd),
        **{metric: round(mean, SCORE_DECIMALS) for metric, mean in run.metric_means().items()},
        "verdict": f"{comparison.verdict} vs run {comparison.baseline.id}" if comparison else "no baseline",
    }


SCORE_DECIMALS = 3
"""Scores, their differences and intervals are shown with the same decimals (``interval_text``'s)."""


def _score(value: float | None, *, signed: bool = False) -> str | None:
    return None if value is None else f"{value:{'+' if signed else ''}.{SCORE_DECIMALS}f}"


def compare_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """``comparison.rows()`` for the terminal: means, delta and interval at the same three decimals."""
    return [
        {**row, "baseline": _score(row["baseline"]), "candidate": _score(row["candidate"]),
         "delta": _score(row["delta"], signed=True)}
        for row in comparison.rows()
    ]  # fmt: skip


def _progress_bar(label: str) -> tuple[Progress, Any]:
    bar = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        TimeElapsedColumn(), console=errors,
    )  # fmt: skip
    task = bar.add_task(safe_text(label), total=None, status="")

    def update(progress: RunProgress) -> None:
        status = f"${progress.cost_usd:.4f}" + (f" · {progress.failed} failed" if progress.failed else "")
        if progress.cached:
            status += f" · {progress.cached} cached"
        if progress.note and progress.note.startswith(("batch", "circuit")):
            status += f" · {progress.note}"
        bar.update(task, total=progress.total, completed=progress.done + progress.failed, status=safe_text(status))

    return bar, update


def run(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[str | None, typer.Option(help="Version; default: production in the registry, else the latest.")] = None,
    dataset: Annotated[Path | None, typer.Option(help="A dataset .jsonl; default: every dataset of the prompt.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight at once.")] = 16,
    repeats: Annotated[int, typer.Option(min=1, help="Answers per example (non-deterministic outputs).")] = 1,
    mode: Annotated[str, typer.Option(help="live, or batch: the Message Batches API at half price.")] = "live",
    cache: Annotated[str, typer.Option(help="use | refresh (call anyway, update the cache) | off.")] = "use",
    rpm: Annotated[float | None, typer.Option(help="Requests per minute at most.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute at most.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per call before it is retried.")] = 60.0,
    fail_on_regression: Annotated[bool, typer.Option("--fail-on-regression", help="Exit 1 on a regression verdict.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs and verdicts as JSON.")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N examples of each dataset: a quick run that no gate counts.")
    ] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="A random sample of N examples of each dataset (see --seed); no gate counts it.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample: the same seed draws the same examples.")] = 0,
) -> None:
    """Evaluate a prompt version against its pinned model and compare with production's last run.

    --limit and --sample make quick runs on part of each dataset: they are stored as subset runs
    (named golden@first20, golden@sample20-seed0), compared only with runs on the same examples,
    and never counted by a rollout's evaluation gate."""
    if limit is not None and sample is not None:
        raise fail("pass --limit or --sample, not both")
    if mode not in ("live", "batch"):
        raise fail(f"--mode must be live or batch, got {mode!r}")
    if cache not in ("use", "refresh", "off"):
        raise fail(f"--cache must be use, refresh or off, got {cache!r}")
    prompt = _prompt(name, version)
    datasets = _datasets(name, dataset)
    settings = RunSettings(
        concurrency=concurrency, repeats=repeats, mode=mode, cache=cache,  # type: ignore[arg-type]
        requests_per_minute=rpm, tokens_per_minute=tpm, call_timeout=timeout,
    )  # fmt: skip
    engine = get_engine()
    registry = get_registry()
    outcomes: list[tuple[RunRecord, Comparison | None]] = []
    for whole in datasets:
        data, part = subset(whole, limit=limit, sample=sample, seed=seed)
        details = {"subset": part} if part else None
        label = f"{prompt.ref} on {data.name}"
        try:
            if as_json:
                record = run_eval(prompt, data, engine=engine, settings=settings, created_by="cli", details=details)
            else:
                bar, update = _progress_bar(label)
                with bar:
                    record = run_eval(
                        prompt, data, engine=engine, settings=settings, progress=update, created_by="cli", details=details
                    )
        except ModelUnavailable as exc:
            raise fail(str(exc)) from None
        baseline = baseline_run(engine, record, registry) if record.status == "complete" else None
        outcomes.append((record, compare_runs(engine, baseline.id, record.id) if baseline else None))
    if as_json:
        print_json([{"run": record.to_dict(), "comparison": c.to_dict() if c else None} for record, c in outcomes])
    else:
        print_table([_summary(record, comparison) for record, comparison in outcomes], title=f"Evaluation of {prompt.ref}")
        for record, comparison in outcomes:
            if record.status_reason:
                echo(f"run {record.id} {record.status}: {record.status_reason}", err=True)
            if comparison and comparison.verdict != "no_difference":
                echo(f"run {record.id}: {comparison.verdict}: {comparison.reason}", err=True)
    statuses = {record.status for record, _ in outcomes}
    regressed = any(c is not None and c.verdict == "regression" for _, c in outcomes)
    if "failed" in statuses or (fail_on_regression and regressed):
        raise typer.Exit(EXIT_CHECK_FAILED)
    if "incomplete" in statuses:
        raise typer.Exit(EXIT_PARTIAL)


def compare(
    run_a: Annotated[int, typer.Argument(help="Baseline run id.")],
    run_b: Annotated[int, typer.Argument(help="Candidate run id.")],
    tolerance: Annotated[float, typer.Option(help="Smallest change in mean score that counts (scores are 0–1).")] = 0.02,
    confidence: Annotated[float, typer.Option(help="Level of the bootstrap interval.")] = 0.95,
    fail_on_regression: Annotated[bool, typer.Option("--fail-on-regression", help="Exit 1 on a regression verdict.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Paired comparison of two runs per metric: mean difference (B − A), interval and verdict."""
    try:
        comparison = compare_runs(get_engine(), run_a, run_b, VerdictPolicy(tolerance=tolerance, confidence=confidence))
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(comparison.to_dict())
    else:
        a, b = comparison.baseline, comparison.candidate
        title = f"Run {b.id} ({b.prompt_version}) vs run {a.id} ({a.prompt_version}) on {b.dataset_name}"
        print_table(compare_rows(comparison), title=title, numeric=("baseline", "candidate", "delta", "interval"))
        echo(f"verdict: {comparison.verdict} — {comparison.reason}")
    if fail_on_regression and comparison.verdict == "regression":
        raise typer.Exit(EXIT_CHECK_FAILED)


def _list_row(run: RunRecord) -> dict[str, Any]:
    part = run.subset
    return {
        "id": run.id, "prompt": run.prompt_name, "version": run.prompt_version, "model": run.model,
        "dataset": run.dataset_name, "started (UTC)": f"{run.started_at:%Y-%m-%d %H:%M}", "status": run.status,
        "examples": f"{part['size']} of {part['of']}" if part else run.cases_total // max(run.repeats, 1),
        **{metric: _score(mean) for metric, mean in run.metric_means().items()},
    }  # fmt: skip


def list_command(
    prompt: Annotated[str | None, typer.Option("--prompt", help="Only this prompt's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as a JSON list.")] = False,
) -> None:
    """The stored eval runs, newest first, with their headline scores: the ids `eval compare A B` takes."""
    runs = list_runs(get_engine(), prompt, limit=limit)
    if as_json:
        print_json([run.to_dict() for run in runs])
        return
    if not runs:
        echo(f"no eval runs{f' of {prompt}' if prompt else ''} stored; start one with: llmops eval run NAME")
        return
    rows = [_list_row(run) for run in runs]
    columns = [*_LIST_COLUMNS, *sorted({key for row in rows for key in row} - set(_LIST_COLUMNS))]
    print_table([{column: row.get(column) for column in columns} for row in rows], title="Eval runs, newest first",
                numeric=[column for column in columns if column not in _LIST_COLUMNS])  # fmt: skip


_LIST_COLUMNS = ("id", "prompt", "version", "model", "dataset", "started (UTC)", "status", "examples")


def register(app: typer.Typer) -> None:
    """Add ``eval run``, ``eval list`` and ``eval compare`` to the root CLI."""
    eval_app = typer.Typer(help="Evaluate prompt versions on their datasets and compare runs.", no_args_is_help=True)
    eval_app.command("run")(run)
    eval_app.command("list")(list_command)
    eval_app.command("compare")(compare)
    app.add_typer(eval_app, name="eval")
