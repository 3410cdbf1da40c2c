"""Alembic, driven from code: ``upgrade(engine)`` runs on first use and from ``llmops db upgrade``.

Each feature's tables live on their own branch from the first revision, so the store is at
"all heads" rather than one head.
"""

from __future__ import annotations

import ast
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

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
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the store is at (empty for a database never migrated).

    Example:
        >>> from sqlalchemy import create_engine
        >>> current_revisions(create_engine("sqlite://"))
        set()
    """
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


@cache
def script_heads() -> frozenset[str]:
    """``head_revisions`` read from the scripts' ``revision`` and ``down_revision`` alone, without
    importing Alembic (a quarter of a second): the check every command makes on first use.

    Example:
        >>> script_heads() == head_revisions()
        True
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in resources.files("llmops.store.migrations").joinpath("versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        for node in ast.parse(script.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, expression = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, expression = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                value = ast.literal_eval(expression)
                names = {value} if isinstance(value, str) else set(value or ())
                (revisions if target.id == "revision" else parents).update(names)
    return frozenset(revisions - parents)


def stored_revisions(engine: Engine) -> set[str]:
    """``current_revisions`` read with one query, without importing Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return set()
        return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


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
    if stored_revisions(engine) == script_heads():
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "heads")
