"""Shared fixtures: an isolated LLMOPS_HOME per test, and the store on SQLite and PostgreSQL.

PostgreSQL tests use a database created for this session on 127.0.0.1:5432 and dropped at the
end. Without a server they are skipped — unless LLMOPS_REQUIRE_POSTGRES=1 (CI), where a missing
server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from llmops import settings
from llmops.store.engine import dispose_engines, get_engine

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

POSTGRES_ADMIN_URL = os.environ.get(settings.LLMOPS_TEST_POSTGRES_URL, "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STORE_TABLES = (
    "traces",
    "trace_rollups",
    "ingest_watermarks",
    "store_settings",
    "label_events",
    "prompt_labels",
    "prompt_versions",
    "outbox",
    "alerts",
    "rollouts",
    "drift_reports",
    "pinned_reference_outputs",
    "pinned_references",
    "eval_results",
    "eval_runs",
    "eval_cache",
)


@pytest.fixture(autouse=True)
def llmops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own state directory and the default (SQLite) store inside it."""
    home = tmp_path / "llmops-home"
    monkeypatch.setenv(settings.LLMOPS_HOME, str(home))
    monkeypatch.delenv(settings.LLMOPS_DATABASE_URL, raising=False)
    monkeypatch.delenv(settings.LLMOPS_TIMEZONE, raising=False)
    # A salt of the tests' own: the default-salt warning (tests/unit/test_privacy.py) never lands in
    # another test's captured output depending on which test wrote first.
    monkeypatch.setenv(settings.LLMOPS_USER_ID_SALT, "llmops-test-salt")
    yield home
    dispose_engines()


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    url = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@contextmanager
def fresh_postgres_database(prefix: str = "llmops_test") -> Iterator[str]:
    """A new database's URL (psycopg driver), dropped on exit; skips or fails the test without a server."""
    try:
        admin = _admin_connection()
    except Exception as exc:  # psycopg.OperationalError and friends
        if os.environ.get(settings.LLMOPS_REQUIRE_POSTGRES) == "1":
            pytest.fail(f"LLMOPS_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    with fresh_postgres_database() as url:
        yield url
        dispose_engines()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, llmops_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store's URL, once per backend; also set as LLMOPS_DATABASE_URL for code under test."""
    if request.param == "sqlite":
        url = settings.database_url()
    else:
        url = request.getfixturevalue("postgres_url")
        engine = get_engine(url)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(STORE_TABLES)} RESTART IDENTITY"))
    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, url)
    return url


@pytest.fixture
def store(store_url: str) -> Engine:
    """A migrated, empty store on each backend."""
    return get_engine(store_url)
