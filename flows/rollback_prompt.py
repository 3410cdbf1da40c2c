"""The ``rollback-prompt`` flow: restore the version before, by hand or from an automation.

Automations pass the event's resource id (``llmops.prompt.<name>``) as ``prompt_name``, and
the version the event is about as ``only_if_serving``, so an event about a version that was
already rolled back (the advance flow rolls back a failed gate itself) changes nothing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from llmops.release.rollouts import prompt_name_from
from llmops.text import markdown_escape
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.artifact_keys import artifact_key
from prefect_llmops.tasks.digest import send_alert
from prefect_llmops.tasks.rollouts import rollback_task


def rollback_markdown(name: str, environment: str, message: str, actor: str, reason: str, ended: Any) -> str:
    """The rollback artifact: what was restored, by whom and why, every value escaped as Markdown text."""
    md = markdown_escape
    text = f"### Rollback of {md(name)} ({md(environment)})\n\n{md(message)}\n\nRequested by {md(actor)}: {md(reason)}"
    if ended:
        text += f"\n\nEnded rollout {md(ended.id)} ({md(ended.strategy)} of {md(ended.candidate)})."
    return text


@flow(name="rollback-prompt", description="Restore a prompt's previous production version and end its rollout.")
def rollback_prompt(
    prompt_name: str,
    reason: str,
    to_version: str | None = None,
    environment: str = "production",
    actor: str = "rollback-prompt",
    only_if_serving: str | None = None,
    store_block: str | None = None,
) -> dict[str, Any]:
    """Roll ``prompt_name`` (or ``llmops.prompt.<name>``) back to ``to_version`` or the one before.

    Empty strings, as templates render missing event labels, count as not given.
    """
    name, environment = prompt_name_from(prompt_name), environment or "production"
    store = TraceStore.load(store_block) if store_block else None
    result = rollback_task(name, reason, actor, environment, to_version or None, only_if_serving or None, store)
    ended = result.ended_rollout
    if alert := result.alert(actor, reason):
        send_alert(alert.kind, alert.title, alert.details, alert.severity, store=store)
    create_markdown_artifact(
        key=artifact_key("rollback", name, environment),
        markdown=rollback_markdown(name, environment, result.message, actor, reason, ended),
        description=f"Rollback of {name}",
    )
    return {
        "prompt_name": result.prompt_name,
        "environment": result.environment,
        "restored": result.restored,
        "replaced": result.replaced,
        "ended_rollout": ended.id if ended else None,
        "message": result.message,
    }
