"""The engine factory: one engine per URL per process, migrated to head on first use.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions, so concurrent writers
(an ingest flow and a CLI import) queue for the write lock instead of failing mid-transaction;
readers that ask for ``read_only(engine)`` never queue.

PostgreSQL gets a connect timeout that covers the server's startup answer, a statement timeout
and TCP keepalives (``LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS``,
``LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS``), so a hung server fails a command instead of hanging
it. Engines are created under a lock per URL: a store that hangs never blocks another store.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url

from llmops import privacy, settings
from llmops.store import usage

_engines: dict[str, Engine] = {}
READ_ONLY_OPTION = "llmops_read_only"
"""Execution option that ``read_only`` sets: SQLite transactions begin deferred instead of IMMEDIATE."""
STORE_URL_ATTRIBUTE = "llmops_store_url"
"""Set on every SQLAlchemy error a store engine raises: the store's URL with the password masked."""
_lock = threading.Lock()
"""Guards ``_engines`` and ``_url_locks`` only; never held while connecting."""
_url_locks: dict[str, threading.Lock] = {}
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
"""libpq TCP keepalives: a PostgreSQL server that vanished mid-statement is noticed within about 60 s."""
LIBPQ_DRIVERS = {"psycopg", "psycopg2"}


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


def _name_store_in_errors(engine: Engine) -> None:
    masked = engine.url.render_as_string(hide_password=True)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if context.sqlalchemy_exception is not None:
            setattr(context.sqlalchemy_exception, STORE_URL_ATTRIBUTE, masked)


def postgres_connect_args(url: URL) -> dict[str, Any]:
    """libpq's connect timeout, keepalives and statement timeout for a PostgreSQL store.

    What the URL's own query already sets wins; a statement timeout given in the URL's
    ``options`` overrides the setting's.

    Args:
        url: The store's URL.

    Returns:
        Connection arguments for ``create_engine``.

    Example:
        >>> args = postgres_connect_args(make_url("postgresql+psycopg://llmops@db/llmops?connect_timeout=3"))
        >>> args["keepalives"], "connect_timeout" in args, args["options"].startswith("-c statement_timeout=")
        (1, False, True)
    """
    args: dict[str, Any] = {"connect_timeout": settings.store_connect_timeout(), **KEEPALIVES}
    args = {key: value for key, value in args.items() if key not in url.query}
    statement_ms = settings.store_statement_timeout() * 1000
    own = url.query.get("options")
    own_options = " ".join(own) if isinstance(own, tuple) else own
    args["options"] = " ".join(part for part in (f"-c statement_timeout={statement_ms}", own_options) if part)
    return args


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
    ``pool_pre_ping`` (and PostgreSQL through libpq the timeouts of ``postgres_connect_args``).
    Errors it raises carry the masked URL as ``llmops_store_url``.

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
            database = Path(parsed.database)
            if parsed.query.get("uri") or parsed.database.startswith("file:"):
                database.parent.mkdir(parents=True, exist_ok=True)
            else:
                privacy.private_file(database)  # a new store (and its folder): owner only, 0600 (0700)
        engine = create_engine(url, connect_args={"timeout": 60})
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in LIBPQ_DRIVERS:
        engine = create_engine(url, pool_pre_ping=True, connect_args=postgres_connect_args(parsed))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _name_store_in_errors(engine)
    return engine


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The process-wide engine for ``url``, upgraded to the latest schema the first time.

    Args:
        url: A SQLAlchemy URL; None reads ``LLMOPS_DATABASE_URL`` (default SQLite in ``LLMOPS_HOME``).
        migrate: Run the Alembic migrations when the engine is first created.

    Returns:
        The same engine for the same URL on every call in this process. Creating it holds a
        lock for this URL only: a hung store never blocks ``get_engine`` for another one.

    Example:
        ```python
        engine = get_engine()  # LLMOPS_DATABASE_URL, migrated to head
        write_traces(engine, records)
        ```
    """
    url = url or settings.database_url()
    usage.used(url)  # the command line names the store a command read
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _lock:
        url_lock = _url_locks.setdefault(url, threading.Lock())
    with url_lock:  # connecting and migrating happen under this URL's lock only
        engine = _engines.get(url)
        if engine is None:
            engine = create_store_engine(url)
            if migrate:
                from llmops.store.migrate import upgrade

                try:
                    upgrade(engine)
                except BaseException:
                    engine.dispose()
                    raise
            with _lock:
                _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, forked workers).

    The next ``get_engine`` creates (and checks the migrations of) a fresh engine.
    """
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


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
    # the dialect's own module, imported here: PostgreSQL's takes 20 ms, which a SQLite store never pays
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")
