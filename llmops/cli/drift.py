"""``llmops drift``: what drifted on a day, and which calls ran off their pinned model."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from llmops.cli.output import console, fail, print_json, print_table
from llmops.drift_report import check_day, finding_rows
from llmops.store.engine import get_engine


def drift(
    day: Annotated[str | None, typer.Option("--date", help="Day to check (YYYY-MM-DD, in LLMOPS_TIMEZONE); default yesterday.")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Only show this feature's findings.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as a JSON list ([] when nothing drifted).")] = False,
) -> None:
    """Trace drift against the 14 days before, and the pinning audit, computed now from the store.

    Every group of the day is tested and corrected for the night's many tests together, so
    --feature filters what is shown, not what is tested: the verdicts are the nightly
    drift-detection flow's. Nothing is stored or sent (the flow does that). Exit 0 whether or
    not anything drifted.
    """
    try:
        wanted = date.fromisoformat(day) if day else None
    except ValueError:
        raise fail(f"--date expects YYYY-MM-DD, got {day!r}") from None
    try:
        check = check_day(get_engine(), wanted)
    except ValueError as exc:  # a malformed LLMOPS_TIMEZONE or an invalid prompt file
        raise fail(str(exc)) from None
    findings = [finding for finding in check.findings if feature is None or finding.group.feature == feature]
    if as_json:
        print_json([finding.as_dict() for finding in findings])
        return
    scope = f" ({feature})" if feature else ""
    tested = f"{len(check.report.tests)} tests, {len(check.report.skipped)} skipped (too few calls or reference days)"
    if not findings:
        console.print(f"{check.day}{scope}: nothing drifted, no pinning problems; {tested}", highlight=False)
        return
    print_table(finding_rows(findings), title=f"Drift findings of {check.day}{scope}")
    console.print(tested, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
