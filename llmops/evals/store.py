"""Reading and writing evaluation runs: the run row, its results in batches, the lookups verdicts need.

Results are written in batches of a few hundred rows, each batch in one transaction with the
cache entries it produced and the run's running counters, so a run of any size holds only one
batch in memory and a crash leaves a consistent, partial run (marked by its ``running`` status).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, or_, select, update

from llmops.evals.cache import store_outputs
from llmops.store.engine import read_only
from llmops.store.tables import EVAL_RESULTS as RESULTS
from llmops.store.tables import EVAL_RUNS as RUNS


class RunNotFound(LookupError):
    """No eval run with that id."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One ``eval_runs`` row: what ran (prompt version, model, dataset content), how it ended, its aggregates.

    ``scores`` is ``{metric: {"mean", "n"}}`` over the answered cases; ``details`` holds the
    run's settings, scorers, judge and whatever the caller added (e.g. the flow run id).
    """

    id: int
    prompt_name: str
    prompt_version: str
    content_hash: str
    model: str
    dataset_name: str
    dataset_hash: str
    mode: str
    repeats: int
    status: str
    status_reason: str | None
    started_at: datetime
    finished_at: datetime | None
    cost_usd: Decimal
    unpriced_calls: int
    cases_total: int
    cases_done: int
    cases_failed: int
    cases_cached: int
    calls: int
    retries: int
    scores: dict[str, Any]
    details: dict[str, Any]

    @property
    def ref(self) -> str:
        """How logs name the run: ``run 42 (support-chat 1.2.0 on golden, complete)``."""
        return f"run {self.id} ({self.prompt_name} {self.prompt_version} on {self.dataset_name}, {self.status})"

    @property
    def subset(self) -> dict[str, Any] | None:
        """What part of its dataset a quick run (``eval run --limit/--sample``) saw; None for the whole.

        Such a run never counts at the rollouts' evaluation gate.
        """
        subset = self.details.get("subset")
        return subset if isinstance(subset, dict) else None

    def metric_means(self) -> dict[str, float]:
        """``{metric: mean}`` of the metrics that have one."""
        return {name: float(value["mean"]) for name, value in self.scores.items() if value.get("mean") is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``--json``, artifacts)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["cost_usd"] = float(self.cost_usd)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


def _record(row: Row[Any]) -> RunRecord:
    values = {name: getattr(row, name) for name in RunRecord.__dataclass_fields__}
    values["scores"] = values["scores"] or {}
    values["details"] = values["details"] or {}
    return RunRecord(**values)


def _now() -> datetime:
    return datetime.now(UTC)


def create_run(
    engine: Engine,
    *,
    prompt_name: str,
    prompt_version: str,
    content_hash: str,
    model: str,
    dataset_name: str,
    dataset_hash: str,
    mode: str,
    repeats: int,
    cases_total: int,
    details: dict[str, Any],
    created_by: str | None = None,
) -> int:
    """Insert the run as ``running``, its counters at zero; returns its id (the runner calls this)."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                RUNS.insert()
                .values(
                    prompt_name=prompt_name,
                    prompt_version=prompt_version,
                    content_hash=content_hash,
                    model=model,
                    dataset_name=dataset_name,
                    dataset_hash=dataset_hash,
                    mode=mode,
                    repeats=repeats,
                    status="running",
                    started_at=_now(),
                    cost_usd=Decimal(0),
                    unpriced_calls=0,
                    cases_total=cases_total,
                    cases_done=0,
                    cases_failed=0,
                    cases_cached=0,
                    calls=0,
                    retries=0,
                    details=details,
                    created_by=created_by,
                )  # fmt: skip
                .returning(RUNS.c.id)
            ).scalar_one()
        )


def write_batch(
    engine: Engine,
    run_id: int,
    results: Sequence[dict[str, Any]],
    cache_entries: Sequence[dict[str, Any]] = (),
    *,
    replace_cache: bool = False,
) -> None:
    """One transaction: the results, the new cache entries and the run's counters."""
    if not results and not cache_entries:
        return
    done = sum(1 for result in results if result["error"] is None)
    cached = sum(1 for result in results if result["cached"])
    cost = sum((result["cost_usd"] for result in results if result["cost_usd"] is not None), Decimal(0))
    with engine.begin() as connection:
        if results:
            connection.execute(RESULTS.insert(), [{**result, "run_id": run_id} for result in results])
        store_outputs(connection, cache_entries, replace=replace_cache)
        connection.execute(
            update(RUNS)
            .where(RUNS.c.id == run_id)
            .values(
                cases_done=RUNS.c.cases_done + done,
                cases_failed=RUNS.c.cases_failed + len(results) - done,
                cases_cached=RUNS.c.cases_cached + cached,
                cost_usd=RUNS.c.cost_usd + cost,
            )
        )


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    reason: str | None,
    scores: dict[str, Any],
    calls: int,
    retries: int,
    unpriced_calls: int,
    details: dict[str, Any],
) -> RunRecord:
    """Record the outcome; the counters written batch by batch stay as they are."""
    with engine.begin() as connection:
        connection.execute(
            update(RUNS)
            .where(RUNS.c.id == run_id)
            .values(
                status=status,
                status_reason=reason,
                finished_at=_now(),
                scores=scores,
                calls=calls,
                retries=retries,
                unpriced_calls=unpriced_calls,
                details=details,
            )  # fmt: skip
        )
    return get_run(engine, run_id)


def get_run(engine: Engine, run_id: int) -> RunRecord:
    """One run by id.

    Args:
        engine: The store.
        run_id: The run's id.

    Returns:
        The run as it stands (a ``running`` run's counters grow batch by batch).

    Raises:
        RunNotFound: If there is no such run.

    Example:
        ```python
        run = get_run(get_engine(), 42)
        run.status, run.metric_means()  # ('complete', {'assertions': 0.94, 'judge': 0.81, ...})
        ```
    """
    with read_only(engine).connect() as connection:
        row = connection.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no eval run {run_id}")
    return _record(row)


PINNED_DRIFT_CREATOR = "pinned-drift"
"""``created_by`` of the runs pinned-model drift makes on a fixed subset; never a gate's or baseline's run."""
COMPRESSION_CANDIDATE_CREATOR = "compression-candidate"
"""``created_by`` of a compression candidate's runs: its version's own only once it is registered."""
NOT_A_VERSIONS_OWN_RUN = (PINNED_DRIFT_CREATOR, COMPRESSION_CANDIDATE_CREATOR)


def is_versions_own_run() -> ColumnElement[bool]:
    """The condition that leaves out runs which do not judge a version on its dataset."""
    return or_(RUNS.c.created_by.is_(None), RUNS.c.created_by.not_in(NOT_A_VERSIONS_OWN_RUN))


def adopt_run(engine: Engine, run_id: int, created_by: str) -> None:
    """Make a candidate's run its (now registered) version's own, so gates and reports read it."""
    with engine.begin() as connection:
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(created_by=created_by))


def find_runs(
    engine: Engine,
    prompt_name: str,
    *,
    version: str | None = None,
    dataset_hash: str | None = None,
    status: str | None = "complete",
    exclude: Sequence[int] = (),
    newest_first: bool = True,
    limit: int = 1,
) -> list[RunRecord]:
    """Evaluation runs of a prompt (optionally one version, one dataset content, one status).

    Pinned-drift subset runs are left out (comparing them at a gate would judge a version on
    40 examples chosen for drift, not on its dataset), and so are the runs of compression
    candidates that were never registered.

    Args:
        engine: The store.
        prompt_name: The prompt.
        version: Only this prompt version's runs.
        dataset_hash: Only runs on this dataset content (``Dataset.content_hash``).
        status: Only runs with this status; None for any.
        exclude: Run ids to leave out (the candidate's own run, when looking for a baseline).
        newest_first: Order by id, newest first (else oldest first).
        limit: At most this many runs.

    Returns:
        The runs, in the order asked.

    Example:
        ```python
        runs = find_runs(engine, "support-chat", version="1.2.0", dataset_hash=dataset.content_hash)
        baseline = runs[0] if runs else None  # its newest complete run on this dataset
        ```
    """
    query = select(RUNS).where(RUNS.c.prompt_name == prompt_name, is_versions_own_run())
    if version is not None:
        query = query.where(RUNS.c.prompt_version == version)
    if dataset_hash is not None:
        query = query.where(RUNS.c.dataset_hash == dataset_hash)
    if status is not None:
        query = query.where(RUNS.c.status == status)
    if exclude:
        query = query.where(RUNS.c.id.not_in(list(exclude)))
    query = query.order_by(RUNS.c.id.desc() if newest_first else RUNS.c.id).limit(limit)
    with read_only(engine).connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def list_runs(engine: Engine, prompt_name: str | None = None, *, limit: int = 20) -> list[RunRecord]:
    """The stored eval runs, newest first, every kind (pinned-drift and subset runs too): ``llmops eval list``.

    Args:
        engine: The store.
        prompt_name: Only this prompt's runs.
        limit: At most this many runs.

    Returns:
        The runs, newest first.

    Example:
        ```python
        [run.ref for run in list_runs(engine, "support-chat", limit=2)]
        # ['run 12 (support-chat 1.3.0 on golden, complete)', 'run 11 (support-chat 1.2.0 on golden, complete)']
        ```
    """
    query = select(RUNS)
    if prompt_name is not None:
        query = query.where(RUNS.c.prompt_name == prompt_name)
    with read_only(engine).connect() as connection:
        return [_record(row) for row in connection.execute(query.order_by(RUNS.c.id.desc()).limit(limit))]


def example_scores(engine: Engine, run_id: int) -> dict[str, dict[str, float]]:
    """``{example_id: {metric: mean over repeats}}`` of the cases that were answered and scored."""
    sums: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    query = select(RESULTS.c.example_id, RESULTS.c.scores).where(RESULTS.c.run_id == run_id, RESULTS.c.error.is_(None))
    with read_only(engine).connect() as connection:
        for example_id, scores in connection.execute(query.execution_options(yield_per=2000)):
            for metric, value in (scores or {}).items():
                if value is None:
                    continue
                total = sums[example_id][metric]
                total[0] += float(value)
                total[1] += 1
    return {
        example_id: {metric: total / count for metric, (total, count) in metrics.items()} for example_id, metrics in sums.items()
    }


def results(engine: Engine, run_id: int, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The run's result rows, by example and repeat (for reports and tests)."""
    query = select(RESULTS).where(RESULTS.c.run_id == run_id).order_by(RESULTS.c.id)
    if limit is not None:
        query = query.limit(limit)
    with read_only(engine).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
