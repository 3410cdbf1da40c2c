"""Printing for the CLI: rich tables for people, JSON for scripts.

Data is never markup: every value from traces, users or files reaches the terminal through
``safe_text`` (control characters, escape sequences and bidi overrides removed) and then as a
rich ``Text`` (never parsed for markup or emoji codes) or through ``echo``. JSON output is
data already: orjson escapes control characters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import typer
from rich import box
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
    "traffic_percent": "traffic %",
    "step_started_at": "step since",
    "environment": "env",
    "adjusted_p": "adj. p",
    "content_hash": "content hash",
    "dataset_hash": "dataset hash",
}
FREE_TEXT = frozenset({"reason", "summary", "statistic", "examples", "message", "changelog", "gates", "status_reason", "note"})
"""Columns of prose: the only ones a table wraps (at spaces). Every other column (ids, models,
versions, numbers, times) is printed whole on one line, or the table turns vertical."""
FREE_TEXT_LENGTH = 32
"""A text column whose values have spaces and reach this length is prose too (wrapped at spaces)."""


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


def _free_text(column: str, cells: Sequence[str], tight: bool) -> bool:
    if column in FREE_TEXT:
        return True
    return any(" " in cell for cell in cells) and (tight or max(map(len, cells), default=0) >= FREE_TEXT_LENGTH)


def _numeric(column: str, values: Sequence[Any], numeric: Collection[str]) -> bool:
    if column in numeric:
        return True
    present = [value for value in values if value is not None]
    return bool(present) and all(isinstance(value, int | float) and not isinstance(value, bool) for value in present)


PROSE_MIN_WIDTH = 20
"""The narrowest a prose column gets (less when its longest cell is shorter), never below its longest word."""


def _atomic_width(label: str, footer_text: str, cells: Sequence[str]) -> int:
    return max(len(label), len(footer_text), *(len(cell) for cell in cells))


def _prose_width(label: str, cells: Sequence[str], tight: bool) -> int:
    longest_word = max((len(word) for cell in [label, *cells] for word in cell.split()), default=0)
    if tight:
        return longest_word
    return max(
        longest_word, min(PROSE_MIN_WIDTH, max((len(cell) for cell in cells), default=0)), min(len(label), PROSE_MIN_WIDTH)
    )


UNBOUNDED_WIDTH = 100_000
"""A width no table reaches: measured against it, a table's minimum is not capped by the terminal."""


def _narrowest(table: Table, out: Console) -> int:
    """The table's width with every column at its minimum: cells plus padding and the borders, as Rich measures it."""
    return out.measure(table, options=out.options.update_width(UNBOUNDED_WIDTH)).minimum


def _header(label: str, width: int) -> str:
    """``label`` broken at spaces into lines of at most ``width`` (a word longer stays whole)."""
    lines: list[str] = []
    for word in label.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def table_console() -> Console:
    """Where tables go: the terminal at its width; piped, ``$COLUMNS`` wide (else 200 columns)."""
    if console.is_terminal:
        return console
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else TABLE_WIDTH_WHEN_PIPED, soft_wrap=True)


def build_table(
    rows: Sequence[dict[str, Any]],
    title: str,
    footer: dict[str, Any] | None = None,
    *,
    numeric: Collection[str] = (),
    tight: bool = False,
    compact: bool = False,
) -> Table:
    """The rich table of ``rows``, its ids, models and numbers never wrapped or cut.

    Every column but prose (``FREE_TEXT``, or long text with spaces; with ``tight`` any text
    with spaces) is ``no_wrap`` with a minimum width of its widest cell, so Rich can only narrow
    the prose columns, which wrap at spaces and are never narrower than their longest word (so
    no word is split, and nothing gets an ellipsis). Whether it fits at all is ``print_table``'s
    question. ``compact``: no outer border, one space between columns, headers broken at spaces.
    """
    columns = list(rows[0])
    table = Table(title=plain(title), show_footer=footer is not None)
    if compact:
        table = Table(
            title=plain(title), show_footer=footer is not None, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
            collapse_padding=True,
        )  # fmt: skip
    for column in columns:
        values = [row.get(column) for row in rows]
        cells = [_cell_text(value, column) for value in values]
        label = LABELS.get(column, column)
        footer_text = _cell_text(footer.get(column), column) if footer else ""
        right = _numeric(column, values, numeric)
        if _free_text(column, cells, tight):
            table.add_column(plain(label), justify="right" if right else "left", overflow="fold",
                             min_width=_prose_width(label, cells, tight),
                             footer=plain(footer_text) if footer else "")  # fmt: skip
        else:
            width = _atomic_width(label, footer_text, cells)
            if compact:
                width = _atomic_width(max(label.split(" "), key=len), footer_text, cells)
                label = _header(label, width)
            table.add_column(
                plain(label, multiline=True), justify="right" if right else "left", no_wrap=True, overflow="fold", min_width=width,
                footer=plain(footer_text) if footer else "",
            )  # fmt: skip
    for row in rows:
        table.add_row(*(_cell(row.get(column), column) for column in columns))
    return table


def _vertical(out: Console, rows: Sequence[dict[str, Any]], title: str, footer: dict[str, Any] | None) -> None:
    """One block per record, ``field: value`` lines: what a table too wide for the terminal becomes."""
    if footer is not None:  # in the rows' column order
        footer = {column: footer.get(column) for column in rows[0]} | footer
    records = [*rows, footer] if footer else list(rows)
    labels = {column: LABELS.get(column, column) for record in records for column in record}
    pad = max(map(len, labels.values())) + 2
    out.print(plain(title, style="bold"), soft_wrap=True)
    for index, record in enumerate(records):
        out.print(
            plain("── total" if footer is not None and record is footer else f"── {index + 1} of {len(rows)}"), soft_wrap=True
        )
        for column, value in record.items():
            out.print(plain(f"{labels[column] + ':':<{pad}}{_cell_text(value, column)}".rstrip()), soft_wrap=True)


def print_table(
    rows: Sequence[dict[str, Any]],
    title: str,
    footer: dict[str, Any] | None = None,
    *,
    numeric: Collection[str] = (),
    out: Console | None = None,
) -> None:
    """``rows`` as a table that fits: never a truncated id, model or number.

    Only prose columns wrap; when the ids and numbers alone are wider than the terminal, the
    records are printed one block each (``field: value`` lines) instead.

    Args:
        rows: The records, all with the same keys (the columns, in order).
        title: The table's title.
        footer: A totals row, by column.
        numeric: Columns of preformatted numbers (strings) to right-align.
        out: The console; ``table_console()`` when None.
    """
    if not rows:
        console.print(plain(f"{title}: no data"))
        return
    out = out or table_console()
    table = build_table(rows, title, footer, numeric=numeric)
    if _narrowest(table, out) > out.width:  # let every text with spaces wrap, words whole
        table = build_table(rows, title, footer, numeric=numeric, tight=True)
    if _narrowest(table, out) > out.width:  # then lighter borders and headers on two lines
        table = build_table(rows, title, footer, numeric=numeric, tight=True, compact=True)
    if _narrowest(table, out) > out.width:
        _vertical(out, rows, title, footer)
        return
    out.print(table)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (code 2 = usage error)."""
    errors.print(Text.assemble(("error:", "red"), " ", safe_text(message, multiline=True)), highlight=False)
    return typer.Exit(code)
