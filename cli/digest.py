"""``llmops digest``: the daily cost/quality digest, printed, queued in the outbox and sent to Slack."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from llmops.report.digest import DEFAULT_TOP_FEATURES, compute_digest
from llmops.report.slack import SlackConfig, deliver_pending, enqueue_digest, render_digest
from llmops.store.engine import get_engine
from prefect_llmops.cli.output import EXIT_PARTIAL, echo, fail, print_json


def digest(
    day: Annotated[
        str | None, typer.Option("--date", help="Day to report (YYYY-MM-DD, in LLMOPS_TIMEZONE); default yesterday.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the message as text; store and send nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON; store and send nothing.")] = False,
    environment: Annotated[str | None, typer.Option(help="Only this environment (default: all).")] = None,
    top: Annotated[
        int, typer.Option(min=1, max=20, help="Features listed before the rest is summed as 'other'.")
    ] = DEFAULT_TOP_FEATURES,
    preview: Annotated[
        Path | None,
        typer.Option("--preview", help="Also draw the message as Slack shows it (its thread included) into this PNG file."),
    ] = None,
) -> None:
    """Compute the day's digest; store it in the outbox and send it to Slack when configured.

    Slack comes from SLACK_BOT_TOKEN + SLACK_CHANNEL (with the chart) or SLACK_WEBHOOK_URL.
    Without them the message waits in the outbox. A day's digest is sent once per channel,
    however often this runs; messages a failed run left pending are sent now. Exit 3: stored,
    but Slack did not take it (it is retried on the next run).
    """
    try:
        wanted = date.fromisoformat(day) if day else None
    except ValueError:
        raise fail(f"--date expects YYYY-MM-DD, got {day!r}") from None
    try:
        numbers = compute_digest(get_engine(), wanted, environment=environment, top_features=top)
    except ValueError as exc:  # a malformed LLMOPS_TIMEZONE, LLMOPS_MONTHLY_BUDGET_USD or LLMOPS_FEATURE_OWNERS
        raise fail(str(exc)) from None
    if as_json:
        print_json(numbers.as_dict())
        return
    message = render_digest(numbers, with_chart=not dry_run)
    echo(message.plain)
    if preview is not None:
        from llmops.report.preview import render_preview

        try:
            preview.write_bytes(render_preview(message.blocks, message.thread_blocks))
        except OSError as exc:
            raise fail(f"--preview: cannot write {preview}: {exc.strerror}") from None
        echo(f"\npreview of the Slack message: {preview}")
    if dry_run:
        return
    config = SlackConfig.from_env()
    engine = get_engine()
    entry = enqueue_digest(engine, numbers, config, message)
    stored = "stored in the outbox" if entry.created else "already in the outbox"
    if not config.configured:
        echo(
            f"\n{stored} ({entry.dedupe_key}); Slack is not configured, so it waits there "
            "(set SLACK_BOT_TOKEN and SLACK_CHANNEL, or SLACK_WEBHOOK_URL)."
        )
        return
    report = deliver_pending(engine, config)
    echo(f"\n{stored} ({entry.dedupe_key}); Slack: {report.summary()}")
    if not report.ok:
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    app.command("digest")(digest)
