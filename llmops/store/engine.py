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
_lock = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        deferred = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """The same engine for transactions that only read: on SQLite they start with a plain
    (deferred) BEGIN, so in WAL mode they never wait for a writer. Writes keep BEGIN IMMEDIATE:
    a deferred transaction that reads, then writes, fails if another writer got in between."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_store_engine(url: str | None = None) -> Engine:
    """A new engine for ``url`` (default: ``LLMOPS_DATABASE_URL`` or SQLite in ``LLMOPS_HOME``)."""
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
    """The process-wide engine for ``url``, upgraded to the latest schema the first time."""
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
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def dialect_insert(connection: Connection, table: Table) -> Any:
    """INSERT with ``on_conflict_*`` for the connection's backend."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")
