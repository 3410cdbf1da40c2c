"""Incremental pull from an application's SQL table (and `llmops traces pull`): every row once.

The application's database is a separate SQLite file when the store is SQLite, and a table in
its own schema (``app``) of the PostgreSQL test database when the store is PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from pydantic import SecretStr
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from llmops.ingest import pull
from llmops.ingest.pull import SourceConfig, SourceConfigError, SourceUnavailable, pull_traces
from llmops.settings import LLMOPS_SOURCE_URL
from llmops.store.models import Trace
from llmops.store.writer import load_watermark
from prefect_llmops.cli.pull import register

T0 = datetime(2025, 11, 1, 12, 0)
COLUMN_MAP = {
    "trace_id": "call_id",
    "timestamp": "created_at",
    "model": "model_name",
    "cost_usd": "cost",
    "metadata": "metadata_json",
}


def _app_table(schema: str | None) -> Table:
    return Table(
        "llm_calls",
        MetaData(schema=schema),
        Column("seq", Integer, primary_key=True),
        Column("call_id", String(64), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("model_name", String(128)),
        Column("environment", String(64)),
        Column("input_tokens", Integer),
        Column("output_tokens", Integer),
        Column("cost", Numeric(20, 12)),
        Column("tags", Text),
        Column("metadata_json", Text),
    )


class AppDatabase:
    """The application's own database, which the pull only reads."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.table = _app_table(schema)
        self.engine = create_engine(url)
        self.table_name = f"{schema}.llm_calls" if schema else "llm_calls"
        self._next = 0

    def add(self, count: int = 1, **overrides: Any) -> list[str]:
        rows = []
        for _ in range(count):
            self._next += 1
            row = {
                "seq": self._next,
                "call_id": f"call-{self._next:04d}",
                "created_at": T0 + timedelta(seconds=self._next),
                "model_name": "claude-3-5-sonnet-20241022",
                "environment": "production",
                "input_tokens": 1000,
                "output_tokens": 100,
                "cost": None,
                "tags": '["support", "beta"]',
                "metadata_json": '{"region": "eu"}',
            }
            row.update(overrides)
            rows.append(row)
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), rows)
        return [row["call_id"] for row in rows]

    def config(self, **overrides: Any) -> SourceConfig:
        fields: dict[str, Any] = {"url": SecretStr(self.url), "table": self.table_name, "column_map": COLUMN_MAP}
        fields.update(overrides)
        return SourceConfig(**fields)


@pytest.fixture
def app_db(store_url: str, tmp_path: Path) -> Iterator[AppDatabase]:
    if store_url.startswith("sqlite"):
        database = AppDatabase(f"sqlite:///{tmp_path / 'app.db'}", schema=None)
    else:
        database = AppDatabase(store_url, schema="app")
        with database.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS app CASCADE"))
            connection.execute(text("CREATE SCHEMA app"))
    database.table.metadata.create_all(database.engine)
    yield database
    database.engine.dispose()


def _stored_ids(store: Engine) -> list[str]:
    with Session(store) as session:
        return list(session.scalars(select(Trace.trace_id).order_by(Trace.trace_id)))


def test_pull_maps_columns_and_a_rerun_pulls_nothing(store: Engine, app_db: AppDatabase) -> None:
    ids = app_db.add(5)
    app_db.add(1, cost=Decimal("0.5"))
    first = pull_traces(store, app_db.config())
    again = pull_traces(store, app_db.config())

    assert (first.pulled, first.inserted, first.duplicates, first.rejected) == (6, 6, 0, 0)
    assert (again.pulled, again.inserted) == (0, 0)
    assert again.watermark == first.watermark
    assert first.watermark is not None and first.watermark["id"] == "call-0006"
    with Session(store) as session:
        stored = session.scalars(select(Trace).where(Trace.trace_id == ids[0])).one()
        priced_as_given = session.scalars(select(Trace).where(Trace.trace_id == "call-0006")).one()
    assert stored.model == "claude-3-5-sonnet-20241022"
    assert stored.tags == ["support", "beta"]
    assert stored.metadata_ == {"region": "eu"}
    assert stored.cost_source == "computed"
    assert priced_as_given.cost_usd == Decimal("0.5") and priced_as_given.cost_source == "provided"


def test_rows_sharing_a_cursor_value_across_batches_are_all_taken(store: Engine, app_db: AppDatabase) -> None:
    app_db.add(2)
    app_db.add(7, created_at=T0 + timedelta(hours=1))
    app_db.add(2, created_at=T0 + timedelta(hours=2))

    report = pull_traces(store, app_db.config(batch_size=2))

    assert (report.pulled, report.inserted, report.duplicates) == (11, 11, 0)
    assert len(_stored_ids(store)) == 11


def test_rows_arriving_later_at_the_last_cursor_value_are_pulled_once(store: Engine, app_db: AppDatabase) -> None:
    app_db.add(3, created_at=T0)
    pull_traces(store, app_db.config(batch_size=2))
    late = app_db.add(2, created_at=T0)  # same timestamp, higher ids: committed after our read
    newer = app_db.add(1)

    report = pull_traces(store, app_db.config(batch_size=2))

    assert (report.pulled, report.inserted, report.duplicates) == (3, 3, 0)
    assert set(late + newer) <= set(_stored_ids(store))


def test_a_crash_between_batches_loses_nothing_and_doubles_nothing(
    store: Engine, app_db: AppDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = app_db.add(7)
    real_write = pull.write_traces
    calls = 0

    def write_then_crash(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("worker killed")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(pull, "write_traces", write_then_crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        pull_traces(store, app_db.config(batch_size=3))
    assert _stored_ids(store) == ids[:3]
    assert load_watermark(store, "sql:" + app_db.table_name)["id"] == ids[2]  # type: ignore[index]

    monkeypatch.setattr(pull, "write_traces", real_write)
    resumed = pull_traces(store, app_db.config(batch_size=3))

    assert (resumed.pulled, resumed.inserted, resumed.duplicates) == (4, 4, 0)
    assert _stored_ids(store) == ids
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Trace)).scalar_one() == 7


def test_invalid_rows_are_rejected_with_their_id_and_do_not_hold_the_watermark(
    store: Engine, app_db: AppDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    app_db.add(2)
    app_db.add(1, call_id="bad-tokens", input_tokens=-5)
    app_db.add(1, call_id="zz-no-model", model_name=None)

    with caplog.at_level(logging.WARNING, logger="llmops.ingest.pull"):
        report = pull_traces(store, app_db.config(batch_size=2))
    again = pull_traces(store, app_db.config(batch_size=2))

    assert (report.pulled, report.inserted, report.rejected) == (4, 2, 2)
    assert [(r.row_id, r.column) for r in report.first_rejections] == [
        ("bad-tokens", "input_tokens"),
        ("zz-no-model", "model_name"),
    ]
    assert "bad-tokens" in caplog.text and "input_tokens" in caplog.text
    assert report.watermark is not None and report.watermark["id"] == "zz-no-model"
    assert again.pulled == 0


def test_max_rows_limits_one_run_and_the_next_run_continues(store: Engine, app_db: AppDatabase) -> None:
    ids = app_db.add(5)

    first = pull_traces(store, app_db.config(batch_size=2), max_rows=3)
    rest = pull_traces(store, app_db.config(batch_size=2), max_rows=3)

    assert (first.pulled, rest.pulled) == (3, 2)
    assert _stored_ids(store) == ids


def test_an_integer_cursor_column_works(store: Engine, app_db: AppDatabase) -> None:
    app_db.add(3, created_at=T0)  # timestamps say nothing about order here; seq does
    config = app_db.config(cursor_column="seq", id_column="seq", batch_size=2, name="by-seq")
    pull_traces(store, config)
    app_db.add(2, created_at=T0 - timedelta(days=1))

    report = pull_traces(store, config)

    assert (report.pulled, report.inserted) == (2, 2)
    assert report.watermark == {"cursor_column": "seq", "id_column": "seq", "cursor": 5, "id": 5}


def test_missing_columns_are_named_with_the_columns_the_table_has(store: Engine, app_db: AppDatabase) -> None:
    config = app_db.config(column_map={**COLUMN_MAP, "model": "llm"}, id_column="uuid")

    with pytest.raises(SourceConfigError) as error:
        pull_traces(store, config)

    message = str(error.value)
    assert "model -> 'llm'" in message and "id_column 'uuid'" in message
    assert "call_id, created_at, model_name" in message


def test_an_unknown_table_lists_the_tables_there(store: Engine, app_db: AppDatabase) -> None:
    schema = "app." if "." in app_db.table_name else ""
    with pytest.raises(SourceConfigError, match=r"table '.*llm_cals' not found .*tables there: llm_calls"):
        pull_traces(store, app_db.config(table=f"{schema}llm_cals"))


def test_changing_the_cursor_column_of_a_named_source_is_refused(store: Engine, app_db: AppDatabase) -> None:
    app_db.add(2)
    pull_traces(store, app_db.config())

    with pytest.raises(SourceConfigError, match="set a new source name"):
        pull_traces(store, app_db.config(cursor_column="seq"))


def test_an_unknown_trace_field_in_the_mapping_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown: modle"):
        SourceConfig(url=SecretStr("sqlite://"), table="t", column_map={"modle": "model_name"})


def test_an_unreachable_source_is_retried_then_reported_without_its_password(
    store: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-pa55word"
    config = SourceConfig(
        url=SecretStr(f"postgresql+psycopg://app:{password}@127.0.0.1:1/app"),
        table="llm_calls",
        connect_attempts=3,
        connect_timeout_seconds=2,
    )
    delays: list[float] = []

    with caplog.at_level(logging.DEBUG), pytest.raises(SourceUnavailable) as error:
        pull_traces(store, config, sleep=delays.append)

    assert len(delays) == 2  # doubling backoff, ±50 % jitter
    assert 0.5 <= delays[0] <= 1.5 and 1.0 <= delays[1] <= 3.0
    assert "(attempts: 3)" in str(error.value) and "app:***@127.0.0.1:1/app" in str(error.value)
    assert password not in str(error.value) and password not in repr(config) and password not in caplog.text
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_a_missing_sqlite_source_file_is_not_created(store: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(SourceConfigError, match="no such file"):
        pull_traces(store, SourceConfig(url=SecretStr(f"sqlite:///{missing}"), table="t"))
    assert not missing.exists()


def test_timestamps_with_a_timezone_resume_exactly(store: Engine, tmp_path: Path) -> None:
    """An aware cursor round-trips through the JSON watermark to the same instant."""
    url = f"sqlite:///{tmp_path / 'aware.db'}"
    table = Table(
        "calls",
        MetaData(),
        Column("trace_id", String(32)),
        Column("timestamp", DateTime(timezone=True)),
        Column("model", String(64)),
    )
    engine = create_engine(url)
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [{"trace_id": f"t{i}", "timestamp": datetime(2025, 1, 1, tzinfo=UTC), "model": "m-20250101"} for i in range(3)],
        )
    engine.dispose()
    config = SourceConfig(url=SecretStr(url), table="calls", batch_size=2)

    assert pull_traces(store, config).pulled == 3
    assert pull_traces(store, config).pulled == 0


def _cli() -> typer.Typer:
    """The `traces` sub-app with the pull command, as the lead wires it into `llmops`."""
    app = typer.Typer()
    traces_app = typer.Typer()
    register(traces_app)
    app.add_typer(traces_app, name="traces")
    return app


def _map_options() -> list[str]:
    return [option for field, column in COLUMN_MAP.items() for option in ("--map", f"{field}={column}")]


def test_cli_pull_reports_counts_and_watermark(store: Engine, app_db: AppDatabase) -> None:
    app_db.add(3)
    app_db.add(1, input_tokens=-1)
    args = ["traces", "pull", "--table", app_db.table_name, *_map_options(), "--batch-size", "2"]

    first = CliRunner().invoke(_cli(), args, env={LLMOPS_SOURCE_URL: app_db.url})
    again = CliRunner().invoke(_cli(), [*args, "--json"], env={LLMOPS_SOURCE_URL: app_db.url})

    assert first.exit_code == 3, first.output  # partial: one row rejected
    assert "pulled 4, imported 3, duplicates 0, rejected 1, watermark created_at=" in first.stdout
    assert "call-0004" in first.stderr and "input_tokens" in first.stderr
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout)["pulled"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "t"], "give --block NAME, or --table and --url"),
        (["--url", "sqlite://", "--table", "t", "--map", "trace_id"], "--map takes field=column"),
        (["--url", "sqlite://", "--table", "t", "--map", "modle=m"], "unknown: modle"),
        (["--block", "b", "--table", "t"], "--block already says where to read; drop --table"),
    ],
)
def test_cli_pull_usage_errors_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_cli(), ["traces", "pull", *args])

    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


@pytest.mark.postgres
def test_cli_pull_never_prints_the_source_password(postgres_url: str, store: Engine) -> None:
    password = "cli-pw-7f31"
    url_with_password = postgres_url.replace("postgres@", f"postgres:{password}@")  # trust auth ignores it

    result = CliRunner().invoke(_cli(), ["traces", "pull", "--url", url_with_password, "--table", "no_such_table"])

    assert result.exit_code == 2
    assert "not found in postgresql+psycopg://postgres:***@" in " ".join(result.stderr.split())
    assert password not in result.output
