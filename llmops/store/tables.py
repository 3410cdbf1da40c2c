"""The store's tables as SQLAlchemy Core handles, for the queries that work on columns, not objects.

SQLAlchemy types a model's ``__table__`` as the wider ``FromClause``; ``table_of`` narrows it
once, here, so no module needs an ignore or a cast to use ``TRACES.c.timestamp``.
"""

from __future__ import annotations

from sqlalchemy import Table

from llmops.store.drift_models import DriftReportRow
from llmops.store.eval_models import EvalCacheEntry, EvalResult, EvalRun
from llmops.store.models import Base, IngestWatermark, StoreSetting, Trace, TraceRollup
from llmops.store.outbox_models import AlertRecord, OutboxMessage
from llmops.store.pinned_models import PinnedReference, PinnedReferenceOutput
from llmops.store.registry_models import LabelEventRow, PromptLabel, PromptVersionRow
from llmops.store.rollout_models import RolloutRow


def table_of(model: type[Base]) -> Table:
    """A model's ``Table``.

    Args:
        model: A mapped class of the store.

    Returns:
        Its table, for Core queries.

    Example:
        >>> table_of(Trace).name
        'traces'
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


TRACES = table_of(Trace)
ROLLUPS = table_of(TraceRollup)
WATERMARKS = table_of(IngestWatermark)
SETTINGS = table_of(StoreSetting)
EVAL_RUNS = table_of(EvalRun)
EVAL_RESULTS = table_of(EvalResult)
EVAL_CACHE = table_of(EvalCacheEntry)
DRIFT_REPORTS = table_of(DriftReportRow)
OUTBOX = table_of(OutboxMessage)
ALERTS = table_of(AlertRecord)
PINNED_REFERENCES = table_of(PinnedReference)
PINNED_OUTPUTS = table_of(PinnedReferenceOutput)
PROMPT_VERSIONS = table_of(PromptVersionRow)
PROMPT_LABELS = table_of(PromptLabel)
LABEL_EVENTS = table_of(LabelEventRow)
ROLLOUTS = table_of(RolloutRow)
