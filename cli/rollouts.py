"""``llmops promote``, ``rollouts``, ``rollback``, ``rollout approve`` and ``ab report``.

``promote`` and ``rollback`` submit a run of the cockpit's promote-prompt and rollback-prompt
deployments when ``PREFECT_API_URL`` is set, so the run shows in the Prefect UI and the
rollback's event reaches automations, and print the run's link; without it they call the same
core functions here, with no Prefect server (``cockpit_runs``). Reading and approving need no flow.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError

from llmops.release.registry import PRODUCTION
from llmops.release.rollouts import (
    PromotionForm,
    RolloutAlert,
    RolloutError,
    Strategy,
    approve,
    default_actor,
    latest_rollout,
    live_rollouts,
    prompt_name_from,
    rollback,
    rollout_ab_report,
    start_rollout,
    tag_if_released,
)
from llmops.store.engine import get_engine
from prefect_llmops.cli.cockpit_runs import (
    PROMOTE_DEPLOYMENT,
    RAN_HERE,
    ROLLBACK_DEPLOYMENT,
    SubmitError,
    api_url,
    submit,
    submitted_line,
)
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, echo, errors, fail, print_json, print_table

rollout_app = typer.Typer(help="A live rollout: approve its next step.", no_args_is_help=True)
ab_app = typer.Typer(help="A/B comparisons of a prompt's versions from traces.", no_args_is_help=True)


def _steps(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise fail(f"--steps takes traffic percentages separated by commas, e.g. 5,25,100; got {text!r}") from None


def _submit(deployment: str, parameters: dict[str, Any], as_json: bool) -> None:
    """Run ``deployment`` of the cockpit with ``parameters`` and print the run (its UI link), or fail in one line."""
    try:
        run = submit(deployment, parameters)
    except SubmitError as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    if as_json:
        print_json(run)
    else:
        echo(submitted_line(run))


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {str(error['msg']).removeprefix('Value error, ')}"
        for error in exc.errors(include_url=False)
    )


def promote(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[str, typer.Argument(help="Version to promote (registered from its file if needed).")],
    strategy: Annotated[str, typer.Option(help=" | ".join(get_args(Strategy)) + ".")] = "canary",
    steps: Annotated[str | None, typer.Option(help="Traffic % per step, e.g. 5,25,100 (canary, blue_green).")] = None,
    environment: Annotated[str, typer.Option(help="Registry environment.")] = PRODUCTION,
    min_step_minutes: Annotated[float, typer.Option(help="Minimum minutes per step.")] = 60,
    min_requests: Annotated[int, typer.Option(help="Candidate requests a step needs before a verdict.")] = 200,
    ab_split: Annotated[float, typer.Option(help="ab: the candidate's share, in %.")] = 50,
    ab_duration_hours: Annotated[float, typer.Option(help="ab: hours before the report decides.")] = 24,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="Wait for `llmops rollout approve` between steps.")
    ] = False,
    force_without_eval: Annotated[
        bool, typer.Option("--force-without-eval", help="Promote without a complete eval run (audited); never past a regression.")
    ] = False,
    git_tag: Annotated[
        bool, typer.Option("--tag/--no-tag", help="Tag prompt/NAME/VERSION in git when it becomes production.")
    ] = True,
    tolerances: Annotated[
        str, typer.Option(help="strict | default | lenient: how much worse than control a step may be.")
    ] = "default",
    reason: Annotated[str, typer.Option(help="Why; stored with every label move.")] = "promoted from the command line",
    actor: Annotated[str | None, typer.Option(help="Who; default: your login name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rollout as JSON.")] = False,
) -> None:
    """Start a promotion; staged ones are then moved on by the advance-rollouts flow every 15 minutes."""
    try:
        form = PromotionForm.model_validate({
            "prompt_name": name, "version": version, "environment": environment, "strategy": strategy,
            "tolerances": tolerances, "require_approval": require_approval, "force_without_eval": force_without_eval,
            "git_tag": git_tag, "reason": reason, "actor": actor or default_actor(),
            "advanced": {"steps": _steps(steps), "min_step_minutes": min_step_minutes, "min_requests_per_step": min_requests,
                         "ab_split": ab_split, "ab_duration_hours": ab_duration_hours},
        })  # fmt: skip
        request = form.request()
    except ValidationError as exc:
        raise fail(_explain(exc)) from None
    if api_url():
        _submit(PROMOTE_DEPLOYMENT, {"request": form.model_dump(mode="json")}, as_json)
        return
    try:
        outcome = start_rollout(get_engine(), request)
    except RolloutError as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    try:
        tag_if_released(outcome)
    except RolloutError as exc:  # the labels moved and committed; a missing tag must not undo that
        errors.print(f"warning: {exc}", highlight=False, markup=False)
    _alert(outcome.alert())
    shown = outcome.rollout.to_dict()
    if as_json:
        print_json(shown)
        return
    echo(
        f"rollout {shown['id']}: {shown['prompt']} {shown['baseline'] or '–'} → {shown['candidate']} "
        f"({shown['strategy']}), step {shown['step']} at {shown['traffic_percent']:g} %, {shown['status']}; gates: {shown['gates']}"
    )
    errors.print(RAN_HERE, highlight=False, markup=False, style="dim")


def _alert(alert: RolloutAlert | None) -> None:
    """Tell Slack as the flows do (through the outbox: a Slack that is down gets it on the next flush)."""
    if alert is not None:
        from llmops.report.outbox import enqueue_alert  # Slack's modules only when there is something to say

        enqueue_alert(alert.kind, alert.title, alert.details, severity=alert.severity, engine=get_engine())


def rollouts(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list with plans and gate tables.")] = False,
) -> None:
    """Live rollouts: step, traffic, status and gates."""
    live = live_rollouts(get_engine())
    if as_json:
        print_json([rollout.to_dict() for rollout in live])
        return
    if not live:
        typer.echo("no live rollouts")
        return
    print_table([rollout.summary() for rollout in live], title="Live rollouts")


def rollback_command(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    reason: Annotated[str, typer.Option(help="Why; stored in the audit log and sent with the event.")],
    to: Annotated[str | None, typer.Option("--to", help="Version to restore; default: the one before.")] = None,
    environment: Annotated[str, typer.Option(help="Registry environment.")] = PRODUCTION,
    actor: Annotated[str | None, typer.Option(help="Who; default: your login name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Restore the previous production version (or --to), ending any rollout of the prompt."""
    who = actor or default_actor()
    if api_url():
        parameters = {"prompt_name": name, "reason": reason, "to_version": to, "environment": environment, "actor": who}
        _submit(ROLLBACK_DEPLOYMENT, parameters, as_json)
        return
    try:
        done = rollback(get_engine(), name, reason=reason, actor=who, environment=environment, to_version=to)
    except RolloutError as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    _alert(done.alert(who, reason))
    result: dict[str, Any] = {
        "prompt_name": done.prompt_name,
        "environment": done.environment,
        "restored": done.restored,
        "replaced": done.replaced,
        "ended_rollout": done.ended_rollout.id if done.ended_rollout else None,
        "message": done.message,
    }  # as the rollback-prompt flow returns it
    if as_json:
        print_json(result)
        return
    echo(result["message"])
    errors.print(RAN_HERE, highlight=False, markup=False, style="dim")


@rollout_app.command("approve")
def approve_command(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    environment: Annotated[str, typer.Option(help="Registry environment.")] = PRODUCTION,
    actor: Annotated[str | None, typer.Option(help="Who approves; default: your login name.")] = None,
) -> None:
    """Let a rollout waiting for approval take its next step (or resume a paused one)."""
    try:
        outcome = approve(get_engine(), name, environment=environment, actor=actor or default_actor())
        tag = tag_if_released(outcome)
        if tag:
            echo(f"tagged {tag}")
    except RolloutError as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    rollout = outcome.rollout
    echo(
        f"rollout {rollout.id} of {rollout.prompt_name}: {outcome.message} ({rollout.status}, {rollout.step.traffic_percent:g} %)"
    )


@ab_app.command("report")
def ab_report_command(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    environment: Annotated[str, typer.Option(help="Registry environment.")] = PRODUCTION,
    outcome: Annotated[
        list[str] | None,
        typer.Option("--outcome", help="A numeric outcome in trace metadata to compare too, e.g. escalated (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Baseline vs candidate of the prompt's live (else latest) rollout: per metric, each version
    with its interval, and a verdict (winner, no difference, not enough data yet)."""
    engine = get_engine()
    rollout = latest_rollout(engine, prompt_name_from(name), environment)
    if rollout is None:
        raise fail(f"{name} has had no rollout in {environment}: nothing to compare", EXIT_CHECK_FAILED)
    report = rollout_ab_report(engine, rollout, outcomes=outcome or ())
    if as_json:
        print_json({"rollout_id": rollout.id, "baseline": rollout.baseline, "candidate": rollout.candidate, **report.as_dict()})
        return
    title = (
        f"A/B report of {rollout.prompt_name}, rollout {rollout.id} ({rollout.strategy}, {rollout.status}) "
        f"since {rollout.created_at:%Y-%m-%d %H:%M} UTC: value [{report.confidence:.0%} interval]"
    )
    print_table(report.rows(), title=title, numeric=[key for version in report.versions for key in (version, f"{version} n")])
    echo("A winner is better than every other version, with intervals adjusted for all metrics and pairs.")


def register(app: typer.Typer) -> None:
    """Add ``promote``, ``rollouts``, ``rollback``, ``rollout approve`` and ``ab report`` to the root CLI."""
    app.command("promote")(promote)
    app.command("rollouts")(rollouts)
    app.command("rollback")(rollback_command)
    app.add_typer(rollout_app, name="rollout")
    app.add_typer(ab_app, name="ab")
