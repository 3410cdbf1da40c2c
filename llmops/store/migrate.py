"""Alembic, driven from code: ``upgrade(engine)`` runs on first use and from ``llmops db upgrade``.

Each feature's tables live on their own branch from the first revision, so the store is at
"all heads" rather than one head.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "llmops.store:migrations"
"""The migrations as package resources, so they are found wherever llmops is installed."""


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic's configuration for the store's migrations, without an ``alembic.ini``.

    Args:
        engine: The store to migrate; ``migrations/env.py`` runs on it. None for a
            configuration that only reads the scripts.

    Returns:
        The configuration.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
        config.attributes["engine"] = engine
    return config


def head_revisions() -> set[str]:
    """The head revision of every branch of the migration scripts.

    Example:
        >>> len(head_revisions()) >= 1
        True
    """
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the store is at (empty for a database never migrated).

    Example:
        >>> from sqlalchemy import create_engine
        >>> current_revisions(create_engine("sqlite://"))
        set()
    """
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine) -> None:
    """Bring the schema to every head; a no-op when it is already there.

    ``get_engine`` calls it on first use; ``llmops db upgrade`` calls it explicitly.

    Args:
        engine: The store.

    Example:
        ```python
        upgrade(create_store_engine("postgresql+psycopg://llmops@db/llmops"))
        ```
    """
    if current_revisions(engine) == head_revisions():
        return
    command.upgrade(alembic_config(engine), "heads")
