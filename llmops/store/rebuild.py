"""Recut the daily rollups from raw traces: after a timezone change, or to repair them.

The rollups are derived data; the traces are the record. Rebuilding reads every trace once in
batches and replaces every rollup in one transaction (ingest waits for it), recording the
timezone the new days are cut in.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from llmops import settings
from llmops.money import usd_to_pico
from llmops.store import rollups
from llmops.store.engine import dialect_insert
from llmops.store.models import Trace, TraceRollup
from llmops.store.tables import SETTINGS, TRACES
from llmops.store.writer import ROLLUP_TIMEZONE_KEY, lock_for_ingest

BATCH = 20_000


def rebuild_rollups(engine: Engine) -> int:
    """Replace every rollup with one computed in the configured timezone.

    Run by ``llmops db rebuild-rollups`` after ``LLMOPS_TIMEZONE`` changes (until then, writes
    refuse with ``RollupTimezoneMismatch``), or after migration 0008 to fill the sums of squares.

    Args:
        engine: The store.

    Returns:
        How many traces were read.

    Example:
        ```python
        os.environ["LLMOPS_TIMEZONE"] = "Europe/Berlin"
        rebuild_rollups(get_engine())
        ```
    """
    timezone = settings.timezone().key
    columns = [TRACES.c[name] for name in rollups.TRACE_COLUMNS_FOR_ROLLUPS]
    count = 0
    with engine.begin() as connection:
        lock_for_ingest(connection)
        connection.execute(delete(TraceRollup))
        stmt = dialect_insert(connection, SETTINGS).values(key=ROLLUP_TIMEZONE_KEY, value=timezone)
        connection.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": timezone}))
        result = connection.execute(select(*columns).order_by(Trace.id).execution_options(yield_per=BATCH))
        for partition in result.partitions():
            rows = [
                rollups.rollup_row(
                    trace,
                    trace.timestamp.replace(tzinfo=None),
                    None if trace.cost_usd is None else usd_to_pico(trace.cost_usd),
                    timezone,
                )
                for trace in partition
            ]
            rollups.add_rows(connection, rows)
            count += len(rows)
    return count
