"""``llmops resolve`` (what a user is served) and ``llmops prompts history`` (the audit log)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from llmops.release.registry import (
    PRODUCTION,
    LabelEvent,
    PromptNotServed,
    RegistryUnavailable,
    canary_threshold,
    get_registry,
)
from llmops.release.registry import resolve as resolve_for_user
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, errors, fail, print_json, print_table, safe_text


def resolve(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    user: Annotated[str, typer.Option("--user", help="The application's user id (the sticky bucket's key).")],
    environment: Annotated[str, typer.Option(help="Environment whose labels apply.")] = PRODUCTION,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The version, label, model and bucket this user gets, as the application's resolve() sees it."""
    try:
        served = resolve_for_user(name, user, environment)
    except (PromptNotServed, RegistryUnavailable) as exc:
        raise fail(str(exc), EXIT_CHECK_FAILED) from None
    if served.stale:  # the last known version, served during an outage: no label state to read
        errors.print(f"warning: the store is unreachable; {safe_text(served.version)} is the last known version", markup=False)
        if as_json:
            print_json(dataclasses.asdict(served))
        else:
            print_table([{"prompt": name, "version": served.version, "label": served.label, "stale": True}], title=name)
        return
    state = get_registry().labels(name, environment)
    line = {
        "prompt": served.name,
        "environment": served.environment,
        "version": served.version,
        "label": served.label,
        "model": served.model,
        "bucket": served.bucket,
        "canary if bucket": f"< {canary_threshold(state.canary_traffic_percent)}" if state.canary else "–",
        "content_hash": served.content_hash[:12],
    }
    if as_json:
        print_json({**dataclasses.asdict(served), "canary_traffic_percent": state.canary_traffic_percent})
        return
    print_table([line], title=f"{name} for user {user!r}")


def _value(value: str | float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _change(before: str | float | None, after: str | float | None, unit: str = "") -> str:
    return "" if before is None and after is None else f"{_value(before, unit)} → {_value(after, unit)}"


def _history_row(event: LabelEvent) -> dict[str, object]:
    return {
        "time (UTC)": f"{event.time:%Y-%m-%d %H:%M:%S}",
        "actor": event.actor,
        "action": event.action,
        "where": f"{event.environment}/{event.label}" if event.label else "",
        "version": _change(event.from_version, event.to_version),
        "traffic": _change(event.from_traffic, event.to_traffic, " %"),
        "reason": event.reason or "",
        "flow run": event.flow_run_id or "",
    }


def history(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    environment: Annotated[str | None, typer.Option(help="Only this environment (registrations always show).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Every registration and label move of a prompt: who, when, what, why, from which flow run."""
    events = get_registry().history(name, environment)
    if as_json:
        print_json([dataclasses.asdict(event) for event in events])
        return
    if not events:
        raise fail(f"no registry events for prompt {name!r}: it was never registered", EXIT_CHECK_FAILED)
    print_table([_history_row(event) for event in events], title=f"History of {name}")


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve)


def register_prompts(prompts_app: typer.Typer) -> None:
    prompts_app.command("history")(history)
