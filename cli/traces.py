"""``llmops traces``: import trace files and pull from an application's store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from llmops.ingest.pipeline import ImportReport, import_file
from llmops.store.engine import get_engine
from prefect_llmops.cli import pull
from prefect_llmops.cli.output import EXIT_PARTIAL, echo, errors, fail, safe_text

traces_app = typer.Typer(help="Import and pull LLM call traces.", no_args_is_help=True)
FORMATS = ("jsonl", "csv", "otel")


@traces_app.command("import")
def import_traces(
    files: Annotated[list[Path], typer.Argument(help="Trace files (JSONL, CSV or OTLP/JSON).")],
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl | csv | otel; default: by file extension.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 5_000,
    workers: Annotated[
        int | None, typer.Option(min=0, help="Worker processes for JSONL (0: none); default by file size and cores.")
    ] = None,
) -> None:
    """Import files; prints `imported N, duplicates D, rejected R` and exits 3 if any line was rejected."""
    if fmt is not None and fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    for path in files:
        if not path.is_file():
            raise fail(f"{path}: no such file")
    engine = get_engine()
    total_rejected = 0
    for path in files:
        with Progress(
            TextColumn("{task.fields[file]}", style="bold", markup=False),
            BarColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=None, file=safe_text(path.name))

            def show(report: ImportReport, task_id=task, progress=progress) -> None:  # type: ignore[no-untyped-def]
                progress.update(task_id, description=report.summary())

            try:
                report = import_file(engine, path, fmt, batch_size=batch_size, workers=workers, on_batch=show)
            except ValueError as exc:  # a whole-file problem: unknown format, missing CSV columns
                raise fail(str(exc)) from None
        for rejection in report.first_rejections:
            field = f" {rejection.field}:" if rejection.field else ""
            echo(f"{path}:{rejection.line}:{field} {rejection.reason}", err=True)
        if report.rejected > len(report.first_rejections):
            echo(f"… {report.rejected - len(report.first_rejections)} more", err=True)
        if report.rejects_path:
            echo(f"rejected lines written to {report.rejects_path}", err=True)
        echo(f"{path}: {report.summary()}")
        for note in report.notes():
            echo(f"  {note}")
        total_rejected += report.rejected
    if total_rejected:
        raise typer.Exit(EXIT_PARTIAL)


pull.register(traces_app)


def register(app: typer.Typer) -> None:
    app.add_typer(traces_app, name="traces")
