"""``llmops costs``: cost, tokens, errors and latency per grouping, from the daily rollups."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

import typer

from llmops import settings
from llmops.store.groupings import GROUPINGS
from prefect_llmops.cli.output import fail, print_json, print_table


def _parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} expects a date as YYYY-MM-DD, got {value!r}") from None


def costs(
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD, in LLMOPS_TIMEZONE); default 30 days ago.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, inclusive; default today.")] = None,
    by: Annotated[str, typer.Option(help=f"Grouping: {' | '.join(GROUPINGS)}.")] = "feature",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Requests, cost, tokens, error rate and p50/p95/p99 latency per group."""
    from llmops.store.engine import get_engine  # SQLAlchemy only when the store is read, not for --help
    from llmops.store.rollups import cost_report, report_total

    if by not in GROUPINGS:
        raise fail(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    last = _parse_day(until, "--until") if until else datetime.now(settings.timezone()).date()
    first = _parse_day(since, "--since") if since else last - timedelta(days=29)
    if first > last:
        raise fail(f"--since {first} is after --until {last}")
    lines = cost_report(get_engine(), first, last, by)
    if as_json:
        print_json(lines)
        return
    total = report_total(lines)
    total[by] = "total"
    print_table(lines, title=f"Costs by {by}, {first} to {last}", footer=total)
    unpriced = total["unpriced_requests"]
    if unpriced:
        typer.echo(f"{unpriced:,} requests used models genai-prices does not know: their cost is not included.")


def register(app: typer.Typer) -> None:
    app.command("costs")(costs)
