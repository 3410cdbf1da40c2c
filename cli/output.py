"""Printing for the CLI: rich tables for people, JSON for scripts.

Data is never markup: every value from traces, users or files reaches the terminal through
``safe_text`` (control characters, escape sequences and bidi overrides removed) and then as a
rich ``Text`` (never parsed for markup or emoji codes) or through ``echo``. JSON output is
data already: orjson escapes control characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


_ESCAPE_SEQUENCE = (
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?"  # CSI: colours, cursor moves, screen clears
    r"|[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC (titles, hyperlinks), DCS, SOS, PM, APC strings
    r"|[ -/]*[0-~]?)"  # two-character sequences (and a lone ESC)
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # CSI in its 8-bit form (other C1 controls go alone, below)
)
_UNSAFE_ONE_LINE = re.compile(_ESCAPE_SEQUENCE + r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_MULTILINE = re.compile(
    _ESCAPE_SEQUENCE + r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_BREAKS = re.compile(r"\r\n|[\t\n\r\u2028\u2029\x85]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")


def safe_text(value: object, *, multiline: bool = False) -> str:
    r"""``value`` as text that cannot drive the terminal: the one place the CLI makes data printable.

    Escape sequences (CSI, OSC hyperlinks and titles, DCS/APC strings, the 8-bit CSI) are
    removed whole, then every other C0 and C1 control character, DEL and the bidirectional
    marks and overrides (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069) that make text read
    in another order than it is stored. On one line (a table cell, a title) tabs and line breaks
    become spaces; with ``multiline`` line breaks become ``\n`` and tabs stay. The result is
    plain text, not markup: print it as ``Text`` (``plain``) or with ``echo``.

    Args:
        value: Anything; it is turned into a string first.
        multiline: Keep line breaks (as ``\n``) and tabs.

    Returns:
        The printable text.

    Example:
        >>> safe_text("billing\x1b[31m[/red]\nchat\u202e")
        'billing[/red] chat'
    """
    text = str(value)
    if multiline:
        return _UNSAFE_MULTILINE.sub("", _LINE_BREAKS.sub("\n", text))
    return _UNSAFE_ONE_LINE.sub("", _BREAKS.sub(" ", text))


def plain(value: object, *, multiline: bool = False, style: str = "") -> Text:
    """``safe_text(value)`` as a rich ``Text``: shown as it is, never parsed for markup or emoji codes."""
    return Text(safe_text(value, multiline=multiline), style=style)


def echo(message: object, *, err: bool = False) -> None:
    """Print a line of (or with) data, made terminal-safe; line breaks are kept."""
    typer.echo(safe_text(message, multiline=True), err=err)


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


def _cell_text(value: Any, column: str = "") -> str:
    if value is None:
        return "–"
    if column in FORMATS and isinstance(value, int | float):
        return FORMATS[column].format(value)
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value: Any, column: str = "") -> Text:
    return plain(_cell_text(value, column))


def print_table(rows: Sequence[dict[str, Any]], title: str, footer: dict[str, Any] | None = None) -> None:
    if not rows:
        console.print(plain(f"{title}: no data"))
        return
    table = Table(title=plain(title), show_footer=footer is not None)
    for column in rows[0]:
        numeric = isinstance(rows[0][column], int | float) or rows[0][column] is None
        table.add_column(
            plain(LABELS.get(column, column)),
            justify="right" if numeric else "left",
            footer=_cell(footer.get(column), column) if footer else "",
        )
    for row in rows:
        table.add_row(*(_cell(value, column) for column, value in row.items()))
    (console if console.is_terminal else Console(width=TABLE_WIDTH_WHEN_PIPED)).print(table)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (code 2 = usage error)."""
    errors.print(Text.assemble(("error:", "red"), " ", safe_text(message, multiline=True)), highlight=False)
    return typer.Exit(code)
