"""The engine factory: one engine per URL per process, migrated to head on first use.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions, so concurrent writers
(an ingest flow and a CLI import) queue for the write lock instead of failing mid-transaction;
readers that ask for ``read_only(engine)`` never queue.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from llmops import settings

_engines: dict[str, Engine] = {}
READ_ONLY_OPTION = "llmops_read_only"
"""Execution option that ``read_only`` sets: SQLite transactions begin deferred instead of IMMEDIATE."""
_lock = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        deferred = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """The same engine for transactions that only read, which then never wait for a writer.

    On SQLite they start with a plain (deferred) BEGIN, so in WAL mode they never wait for a
    writer. Writes keep BEGIN IMMEDIATE: a deferred transaction that reads, then writes, fails
    if another writer got in between. On PostgreSQL the option changes nothing.

    Args:
        engine: A store engine (``get_engine``).

    Returns:
        A view of ``engine`` sharing its pool; use it only for transactions that do not write.

    Example:
        ```python
        with read_only(get_engine()).connect() as connection:
            connection.execute(select(TRACES.c.model).limit(1))
        ```
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_store_engine(url: str | None = None) -> Engine:
    """A new engine for ``url``, not cached and not migrated (``get_engine`` does both).

    SQLite engines get WAL, a 60 s busy timeout, foreign keys and ``BEGIN IMMEDIATE``
    transactions, and the database file's directory is created; other backends get
    ``pool_pre_ping``.

    Args:
        url: A SQLAlchemy URL; None reads ``LLMOPS_DATABASE_URL`` (default SQLite in ``LLMOPS_HOME``).

    Returns:
        The engine.

    Example:
        >>> engine = create_store_engine("sqlite://")
        >>> engine.dialect.name
        'sqlite'
    """
    url = url or settings.database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The process-wide engine for ``url``, upgraded to the latest schema the first time.

    Args:
        url: A SQLAlchemy URL; None reads ``LLMOPS_DATABASE_URL`` (default SQLite in ``LLMOPS_HOME``).
        migrate: Run the Alembic migrations when the engine is first created.

    Returns:
        The same engine for the same URL on every call in this process.

    Example:
        ```python
        engine = get_engine()  # LLMOPS_DATABASE_URL, migrated to head
        write_traces(engine, records)
        ```
    """
    url = url or settings.database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_store_engine(url)
            if migrate:
                from llmops.store.migrate import upgrade

                upgrade(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, forked workers).

    The next ``get_engine`` creates (and checks the migrations of) a fresh engine.
    """
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def dialect_insert(connection: Connection, table: Table) -> Any:
    """An INSERT that offers ``on_conflict_do_nothing``/``on_conflict_do_update`` on either backend.

    Args:
        connection: A connection to SQLite or PostgreSQL.
        table: The table to insert into.

    Returns:
        The dialect's own ``Insert`` construct (SQLite's or PostgreSQL's).

    Raises:
        NotImplementedError: Another backend.

    Example:
        ```python
        stmt = dialect_insert(connection, SETTINGS).values(key="rollup_timezone", value="UTC")
        connection.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
        ```
    """
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")
