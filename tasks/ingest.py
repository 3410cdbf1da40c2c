"""The pull of an application's trace table, as a Prefect task with retries and a timeout.

Retrying the whole pull is safe: each batch commits with its watermark, so a retry resumes
after the last committed batch. Connection blips inside a run are already retried with
backoff by ``llmops.ingest.pull``; these task retries cover the rest (a source down for
minutes, a store restarting), spaced out with jitter so several sources do not retry in step.
Configuration errors are not retried: they fail the same way every time.
"""

from __future__ import annotations

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import task_run
from prefect.states import State

from llmops.ingest.pull import PullReport, SourceConfig, pull_traces
from llmops.store.engine import get_engine
from llmops.store.writer import RollupTimezoneMismatch
from prefect_llmops.blocks.source import TraceSource
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import SOURCE

PULL_TIMEOUT_SECONDS = 14 * 60
"""Shorter than the 15-minute schedule, so runs never pile up; a cut-off pull keeps its batches."""


def _source_config(source: TraceSource | SourceConfig) -> SourceConfig:
    return source.config() if isinstance(source, TraceSource) else source


def _run_name() -> str:
    return f"pull-{_source_config(task_run.parameters['source']).watermark_name}"


def _worth_retrying(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry anything but a configuration error, which would fail identically again.

    A bad source row is no error: the pull rejects it (``PullReport.rejected``) and goes on, so
    a ValueError here always means configuration, never data.
    """
    try:
        state.result()
    except (ValueError, RollupTimezoneMismatch):  # SourceConfigError, an invalid max_rows; LLMOPS_TIMEZONE
        return False
    except Exception:
        return True
    return False


@task(
    name="pull-source",
    task_run_name=_run_name,
    **SOURCE.options(),
    retry_jitter_factor=0.5,
    retry_condition_fn=_worth_retrying,
    timeout_seconds=PULL_TIMEOUT_SECONDS,
    cache_policy=NO_CACHE,  # a pull must always read the source afresh
)
def pull_source(source: TraceSource | SourceConfig, store: TraceStore | None = None, max_rows: int | None = None) -> PullReport:
    """Pull new rows of ``source`` into ``store`` (default: the configured store)."""
    logger = get_run_logger()
    config = _source_config(source)
    engine = store.get_engine() if store is not None else get_engine()
    logger.info("pulling %s from table %s of %s", config.watermark_name, config.table, config.safe_url())
    report = pull_traces(engine, config, max_rows=max_rows)
    for rejection in report.first_rejections:
        logger.warning("rejected row %r: %s %s", rejection.row_id, rejection.column or "", rejection.reason)
    logger.info("%s: %s", config.watermark_name, report.summary())
    return report
