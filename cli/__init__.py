"""``llmops``: the same product as the flows, for people and scripts.

Exit status: 0 success, 1 a check failed (or the store failed: one line naming it, password
masked), 2 usage error (and a missing extra), 3 partial success.

The base install (``pip install prefect-llmops``) runs the store's commands: traces, costs,
prompts, resolve, db. The others need the ``ops`` extra; without it they are still listed, and
say in one line what to install.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from llmops.extras import install_hint
from prefect_llmops.cli.store_errors import StoreErrorsGroup

app = typer.Typer(
    name="llmops",
    help="Operations for LLM applications: traces, costs, evaluations, prompt rollouts, compression, digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=StoreErrorsGroup,
)
COMMANDS: dict[str, tuple[str, ...]] = {
    "db": ("db",),
    "traces": ("traces",),
    "costs": ("costs",),
    "prompts": ("prompts",),
    "registry": ("resolve",),
    "digest": ("digest",),
    "drift": ("drift",),
    "evals": ("eval",),
    "sim": ("sim",),
    "rollouts": ("promote", "rollouts", "rollback", "rollout", "ab"),
    "compress": ("compress",),
}
"""Each command module and the commands it adds (listed, so a missing extra can still name them)."""


def _needs_extra(command: str, hint: str) -> Any:
    def missing(context: typer.Context) -> None:
        typer.echo(f"error: llmops {command} needs an optional install: {hint}", err=True)
        raise typer.Exit(2)

    missing.__doc__ = f"(not installed: {hint})"
    return missing


def _register() -> None:
    loaded: dict[str, Any] = {}
    for name, commands in COMMANDS.items():
        try:
            loaded[name] = importlib.import_module(f"prefect_llmops.cli.{name}")
        except ModuleNotFoundError as exc:
            hint = install_hint(exc.name)
            if hint is None:
                raise
            for command in commands:
                settings = {"allow_extra_args": True, "ignore_unknown_options": True}
                app.command(command, context_settings=settings, add_help_option=False)(_needs_extra(command, hint))
            continue
        loaded[name].register(app)
    if "prompts" in loaded and "registry" in loaded:
        loaded["registry"].register_prompts(loaded["prompts"].prompts_app)


_register()


def main() -> None:
    app()
