"""Printing for the CLI: rich tables for people, JSON for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode())


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], title: str, footer: dict[str, Any] | None = None) -> None:
    if not rows:
        console.print(f"{title}: no data")
        return
    table = Table(title=title, show_footer=footer is not None)
    for column in rows[0]:
        numeric = isinstance(rows[0][column], int | float) or rows[0][column] is None
        table.add_column(
            column, justify="right" if numeric else "left", footer=_cell(footer.get(column)) if footer else ""
        )
    for row in rows:
        table.add_row(*(_cell(value) for value in row.values()))
    console.print(table)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (code 2 = usage error)."""
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)
