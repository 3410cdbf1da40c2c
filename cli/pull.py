"""``llmops traces pull``: pull new rows from an application's SQL table into the store.

The source comes from a saved TraceSource block (``--block``; imports Prefect, only then)
or from options. The URL may hold a password, so it can come from ``LLMOPS_SOURCE_URL``
instead of the command line, where shell history and ``ps`` would show it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError

from llmops import settings
from llmops.ingest.pull import (
    DEFAULT_BATCH_SIZE,
    SourceConfig,
    SourceConfigError,
    SourceUnavailable,
    pull_traces,
)
from llmops.store.engine import get_engine
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, EXIT_PARTIAL, echo, fail, print_json


def _column_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise fail(f"--map takes field=column (e.g. trace_id=call_id), got {pair!r}")
        mapping[field.strip()] = column.strip()
    return mapping


def _explain(exc: ValidationError) -> str:
    """Pydantic's messages without the offending input, which could be the URL."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False))


def _config_from_block(name: str) -> SourceConfig:
    try:
        from prefect_llmops.blocks.source import TraceSource
    except ImportError:
        raise fail("--block needs Prefect: pip install 'prefect-llmops[ops]'") from None
    try:
        return TraceSource.load(name).config()
    except ValueError as exc:  # Prefect's "Unable to find block document named …"
        raise fail(f"cannot load TraceSource block {name!r}: {exc}") from None


def pull(
    block: Annotated[str | None, typer.Option("--block", help="Name of a saved TraceSource block (needs Prefect).")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar=settings.LLMOPS_SOURCE_URL,
            show_envvar=True,
            help="SQLAlchemy URL of the application's database (unused with --block).",
        ),
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="Table or view to read (schema.table allowed).")] = None,
    column_map: Annotated[
        list[str] | None, typer.Option("--map", help="field=column for a column not named like the trace field.")
    ] = None,
    cursor_column: Annotated[
        str | None, typer.Option("--cursor-column", help="Ever-growing column; default: the timestamp column.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Unique tie-breaker column; default: the trace_id column.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Watermark key; default sql:<table>.")] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows per transaction (a block sets its own).")
    ] = DEFAULT_BATCH_SIZE,
    max_rows: Annotated[int | None, typer.Option("--max-rows", min=1, help="Stop after this many rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Pull rows added since the last pull; prints `pulled N, imported I, duplicates D, rejected R, watermark …`."""
    if block is not None:
        options = (
            ("--table", table),
            ("--map", column_map),
            ("--cursor-column", cursor_column),
            ("--id-column", id_column),
            ("--name", name),
        )
        given = [flag for flag, value in options if value]
        if given:
            raise fail(f"--block already says where to read; drop {', '.join(given)}")
        config = _config_from_block(block)
    else:
        if not url or not table:
            raise fail(f"give --block NAME, or --table and --url (or {settings.LLMOPS_SOURCE_URL})")
        try:
            config = SourceConfig(
                url=SecretStr(url),
                table=table,
                column_map=_column_map(column_map or []),
                cursor_column=cursor_column,
                id_column=id_column,
                name=name,
                batch_size=batch_size,
            )
        except ValidationError as exc:
            raise fail(_explain(exc)) from None
    try:
        report = pull_traces(get_engine(), config, max_rows=max_rows)
    except SourceConfigError as exc:
        raise fail(str(exc)) from None
    except SourceUnavailable as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    for rejection in report.first_rejections:
        column = f" {rejection.column}:" if rejection.column else ""
        echo(f"row {rejection.row_id!r}:{column} {rejection.reason}", err=True)
    if report.rejected > len(report.first_rejections):
        echo(f"… {report.rejected - len(report.first_rejections)} more rejected", err=True)
    if as_json:
        print_json(report.as_dict())
    else:
        echo(report.summary())
    if report.rejected:
        raise typer.Exit(EXIT_PARTIAL)


def register(traces_app: typer.Typer) -> None:
    traces_app.command("pull")(pull)
