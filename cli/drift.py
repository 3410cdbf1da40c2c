"""``llmops drift``: what drifted on a day, and which calls ran off their pinned model;
``llmops drift reference``: a version's pinned-model reference, captured or shown."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from llmops.drift.pinned import references_of, run_pinned_checks, serving_versions
from llmops.drift.report import check_day, finding_rows, findings_of, stored_findings
from llmops.evals.runner import ModelUnavailable
from llmops.release.registry import PRODUCTION, Registry
from llmops.store.engine import get_engine
from prefect_llmops.cli.output import EXIT_PARTIAL, echo, fail, print_json, print_table

drift_app = typer.Typer()


@drift_app.callback(invoke_without_command=True)
def drift(
    context: typer.Context,
    day: Annotated[
        str | None, typer.Option("--date", help="Day to check (YYYY-MM-DD, in LLMOPS_TIMEZONE); default yesterday.")
    ] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Only show this feature's findings.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as a JSON list ([] when nothing drifted).")] = False,
) -> None:
    """Trace drift against the 14 days before and the pinning audit, computed now from the store,
    with the pinned-model drift the nightly flow stored for that day.

    Every group of the day is tested and corrected for the night's many tests together, so
    --feature filters what is shown, not what is tested: the verdicts are the nightly
    drift-detection flow's. Pinned-model drift needs the model, so it is the flow's (its findings
    have no feature). Nothing is stored or sent. Exit 0 whether or not anything drifted.
    """
    if context.invoked_subcommand is not None:
        return
    try:
        wanted = date.fromisoformat(day) if day else None
    except ValueError:
        raise fail(f"--date expects YYYY-MM-DD, got {day!r}") from None
    engine = get_engine()
    try:
        check = check_day(engine, wanted)
    except ValueError as exc:  # a malformed LLMOPS_TIMEZONE or an invalid prompt file
        raise fail(str(exc)) from None
    everything = findings_of(check.day, check.report, check.pinning, stored_findings(engine, check.day, "pinned"))
    findings = [finding for finding in everything if feature is None or finding.group.feature == feature]
    if as_json:
        print_json([finding.as_dict() for finding in findings])
        return
    scope = f" ({feature})" if feature else ""
    tested = f"{len(check.report.tests)} tests, {len(check.report.skipped)} skipped (too few calls or reference days)"
    if not findings:
        echo(f"{check.day}{scope}: nothing drifted, no pinning problems; {tested}")
        return
    print_table(finding_rows(findings), title=f"Drift findings of {check.day}{scope}")
    echo(tested)


@drift_app.command("reference")
def reference(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[str | None, typer.Option("--version", help="Version; default every serving version.")] = None,
    environment: Annotated[str, typer.Option("--environment", help="Whose serving versions.")] = PRODUCTION,
    capture: Annotated[
        bool, typer.Option("--capture/--show", help="Capture a missing reference (asks the model), or only show.")
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Capture again, replacing the stored reference.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the references as JSON.")] = False,
) -> None:
    """A version's pinned-model reference: its answers on a fixed subset of each eval dataset,
    which the nightly drift-detection flow asks again and compares. Captures it when missing
    (or with --force), then lists what is stored. Listing needs no model: with none reachable,
    a missing reference is reported on stderr, what is stored is listed, and the exit status is 3."""
    engine = get_engine()
    if version is not None:
        targets: list[tuple[str, str, str | None]] = [(name, version, None)]
    else:
        targets = [(n, v, label) for n, v, label in serving_versions(Registry(engine), [name], environment)]
        if not targets:
            raise fail(f"{name} has no production or canary version in {environment}; pass --version")
    wanted = {v for _, v, _ in targets}
    stored = {r.prompt_version for r in references_of(engine, name)}
    missing = [target for target in targets if force or target[1] not in stored]  # only these need the model
    uncaptured = False
    if (capture or force) and missing:
        try:
            checks = run_pinned_checks(engine, missing, capture_only=True, force=force, captured_by="cli")
        except ModelUnavailable as exc:  # listing what is stored needs no model
            echo(f"warning: not captured ({', '.join(v for _, v, _ in missing)}): {exc}", err=True)
            checks, uncaptured = [], True
        for check in checks:
            echo(check.line())
        if any(check.status == "failed" for check in checks):
            raise typer.Exit(1)
    references = [r for r in references_of(engine, name) if r.prompt_version in wanted]
    rows = [
        {
            "version": r.prompt_version, "model": r.model, "dataset": r.dataset_name, "examples": r.examples,
            "refusals": sum(a.traits.refused for (_, sample), a in r.answers.items() if sample == 0),
            "judged": sum(a.traits.judge_score is not None for (_, sample), a in r.answers.items() if sample == 0),
            "captured": r.captured_at.isoformat(timespec="seconds"), "by": r.captured_by, "eval_run": r.eval_run_id,
            "dataset_hash": r.dataset_hash[:12],
        }
        for r in references
    ]  # fmt: skip
    if as_json:
        print_json(rows)
    elif rows:
        print_table(rows, title=f"Pinned-model references of {name}")
    else:
        echo(f"{name}: no pinned reference stored for {', '.join(sorted(wanted))}")
    if uncaptured:
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")
