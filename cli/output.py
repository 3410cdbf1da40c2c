"""Printing for the CLI: rich tables for people, JSON for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

# Piped output is read by tools and wide terminals: never wrap a line at 80 columns.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
TABLE_WIDTH_WHEN_PIPED = 200
LABELS = {
    "cost_usd": "cost $",
    "avg_cost_per_request": "$ / request",
    "input_tokens": "input tok",
    "output_tokens": "output tok",
    "error_rate": "error rate",
    "p50_latency_ms": "p50 ms",
    "p95_latency_ms": "p95 ms",
    "p99_latency_ms": "p99 ms",
    "unpriced_requests": "unpriced",
}


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode())


FORMATS = {
    "cost_usd": "{:,.2f}",
    "avg_cost_per_request": "{:.5f}",
    "error_rate": "{:.2%}",
    "p50_latency_ms": "{:,.0f}",
    "p95_latency_ms": "{:,.0f}",
    "p99_latency_ms": "{:,.0f}",
}


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return "–"
    if column in FORMATS and isinstance(value, int | float):
        return FORMATS[column].format(value)
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
            LABELS.get(column, column),
            justify="right" if numeric else "left",
            footer=_cell(footer.get(column), column) if footer else "",
        )
    for row in rows:
        table.add_row(*(_cell(value, column) for column, value in row.items()))
    (console if console.is_terminal else Console(width=TABLE_WIDTH_WHEN_PIPED)).print(table)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (code 2 = usage error)."""
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)
