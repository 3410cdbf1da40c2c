"""Alembic environment: runs on the engine handed over in ``config.attributes``.

On PostgreSQL an advisory lock serialises processes that migrate at the same moment (with no
statement timeout: migrations may take long); on SQLite the engine's ``BEGIN IMMEDIATE`` does
the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from llmops.store import drift_models, eval_models, outbox_models, pinned_models, registry_models, rollout_models  # noqa: F401  (tables autogenerate must see)
from llmops.store.engine import create_store_engine
from llmops.store.models import Base

MIGRATION_LOCK_ID = 74_115_001


def run_migrations() -> None:
    """Migrate the engine Alembic was given (or one for its ``sqlalchemy.url``) inside one transaction."""
    engine = context.config.attributes.get("engine") or create_store_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # a schema change on a big store, or the wait for another process's migration,
                # may outlast LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS: migrations run without it
                connection.execute(text("SET LOCAL statement_timeout = 0"))
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()


if hasattr(context, "config"):  # only under Alembic; importing the module alone (pytest --doctest-modules) does nothing
    run_migrations()
