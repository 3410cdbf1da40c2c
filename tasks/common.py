"""What every task module shares: the store a task writes to, the run it belongs to, and the
retry policies, each defined once so that "retried twice after 10 s and 60 s" means the same
thing everywhere.

A policy is chosen by what a task talks to: the store recovers in seconds (a lock, a restart),
a model API within a minute (rate limits), an application's database over minutes (a
failover). Work that is expensive to repeat (an evaluation run, a compression) is not retried
by Prefect at all: its own calls are retried inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from sqlalchemy import Engine

from llmops.store.engine import get_engine
from prefect_llmops.blocks.store import TraceStore


@dataclass(frozen=True)
class RetryPolicy:
    """Prefect's ``retries`` and ``retry_delay_seconds`` for one kind of dependency."""

    retries: int
    delays: tuple[int, ...]

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``@task(...)``."""
        return {"retries": self.retries, "retry_delay_seconds": list(self.delays)}


STORE = RetryPolicy(2, (10, 60))
"""A task that reads or writes the llmops store."""
MODEL_API = RetryPolicy(3, (5, 30, 60))
"""A task that calls the model provider's API outside the eval runner (counting tokens)."""
SOURCE = RetryPolicy(3, (30, 120, 300))
"""A pull from the application's own database, which may be failing over."""
QUICK = RetryPolicy(2, (5, 30))
"""A short step whose rerun is cheap and safe (a comparison, a registration)."""


def store_engine(store: TraceStore | None) -> Engine:
    """The store of the TraceStore block, else the one ``LLMOPS_DATABASE_URL`` names."""
    return store.get_engine() if store is not None else get_engine()


def current_flow_run_id() -> str | None:
    """This flow run's id, for the audit log and events; None outside a flow run."""
    return str(flow_run.id) if flow_run.id else None


def flow_run_page(flow_run_id: Any) -> str | None:
    """A flow run's page in the Prefect UI (``PREFECT_UI_URL``/runs/flow-run/<id>), when the UI address is known."""
    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base and flow_run_id else None
