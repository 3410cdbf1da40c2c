"""The store's tables as SQLAlchemy Core handles, for the queries that work on columns, not objects.

Each handle is defined beside its model (``table_of`` in ``models``) and loaded from there the
first time it is imported, so a command that reads the rollups does not build the tables of
every feature (``llmops.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.lazy import lazy_exports

__all__ = [
    "ALERTS",
    "DRIFT_REPORTS",
    "EVAL_CACHE",
    "EVAL_RESULTS",
    "EVAL_RUNS",
    "LABEL_EVENTS",
    "OUTBOX",
    "PINNED_OUTPUTS",
    "PINNED_REFERENCES",
    "PROMPT_LABELS",
    "PROMPT_VERSIONS",
    "ROLLOUTS",
    "ROLLUPS",
    "SETTINGS",
    "TRACES",
    "WATERMARKS",
]

if TYPE_CHECKING:
    from llmops.store.drift_models import DRIFT_REPORTS
    from llmops.store.eval_models import EVAL_CACHE, EVAL_RESULTS, EVAL_RUNS
    from llmops.store.models import SETTINGS, TRACES, WATERMARKS
    from llmops.store.outbox_models import ALERTS, OUTBOX
    from llmops.store.pinned_models import PINNED_OUTPUTS, PINNED_REFERENCES
    from llmops.store.registry_tables import LABEL_EVENTS, PROMPT_LABELS, PROMPT_VERSIONS
    from llmops.store.rollout_models import ROLLOUTS
    from llmops.store.rollup_tables import ROLLUPS
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "TRACES": "llmops.store.models",
            "ROLLUPS": "llmops.store.rollup_tables",
            "WATERMARKS": "llmops.store.models",
            "SETTINGS": "llmops.store.models",
            "EVAL_RUNS": "llmops.store.eval_models",
            "EVAL_RESULTS": "llmops.store.eval_models",
            "EVAL_CACHE": "llmops.store.eval_models",
            "DRIFT_REPORTS": "llmops.store.drift_models",
            "OUTBOX": "llmops.store.outbox_models",
            "ALERTS": "llmops.store.outbox_models",
            "PINNED_REFERENCES": "llmops.store.pinned_models",
            "PINNED_OUTPUTS": "llmops.store.pinned_models",
            "PROMPT_VERSIONS": "llmops.store.registry_tables",
            "PROMPT_LABELS": "llmops.store.registry_tables",
            "LABEL_EVENTS": "llmops.store.registry_tables",
            "ROLLOUTS": "llmops.store.rollout_models",
        },
    )
