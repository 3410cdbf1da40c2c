"""``llmops``: the same product as the flows, for people and scripts.

Exit status: 0 success, 1 a check failed (or the store failed: one line naming it, password
masked), 2 usage error (and a missing extra), 3 partial success.

The base install (``pip install prefect-llmops``) runs the store's commands: traces, costs,
prompts, resolve, db. The others need the ``ops`` extra; without it they are still listed, and
say in one line what to install.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from llmops.extras import install_hint
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, fail

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
    "demo": ("demo",),
}
"""Each command module and the commands it adds: ``llmops`` imports a module only when one of its
commands runs (or when a missing extra must be named), so starting is fast."""
SHORT_HELP: dict[str, str] = {
    "db": "The store: migrations and maintenance.",
    "traces": "Import and pull LLM call traces.",
    "costs": "Requests, cost, tokens, error rate and p50/p95/p99 latency per group.",
    "prompts": "Prompt version files: prompts/<name>/<version>.yaml.",
    "resolve": "The version, label, model and bucket this user gets, as the application's resolve() sees it.",
    "digest": "Compute the day's digest; store it in the outbox and send it to Slack when configured.",
    "drift": "Trace drift against the 14 days before and the pinning audit, with the pinned-model drift.",
    "eval": "Evaluate prompt versions on their datasets and compare runs.",
    "sim": "Run a local Anthropic-compatible model server (no key, no internet) with optional injected faults.",
    "promote": "Start a promotion; staged ones are then moved on by the advance-rollouts flow every 15 minutes.",
    "rollouts": "Live rollouts: step, traffic, status and gates.",
    "rollback": "Restore the previous production version (or --to), ending any rollout of the prompt.",
    "rollout": "A live rollout: approve its next step.",
    "ab": "A/B comparisons of a prompt's versions from traces.",
    "compress": "Compress a prompt at several rates and register the most compressed one that is not a regression.",
    "demo": "The demo's store: `make demo` makes it the default until `llmops demo reset`.",
}
"""The one line ``llmops --help`` shows per command, so listing imports no command module (a command
missing here is listed with its own help, at the cost of importing its module)."""


def _needs_extra(command: str, hint: str) -> Any:
    def missing(context: typer.Context) -> None:
        typer.echo(f"error: llmops {command} needs an optional install: {hint}", err=True)
        raise typer.Exit(2)

    missing.__doc__ = f"(not installed: {hint})"
    return missing


def _module_of(command: str) -> str | None:
    return next((module for module, commands in COMMANDS.items() if command in commands), None)


def _load(module: str) -> dict[str, Any]:
    """The click commands ``module`` adds (or one-line stand-ins naming the missing extra)."""
    holder = typer.Typer()
    try:
        loaded = importlib.import_module(f"prefect_llmops.cli.{module}")
    except ModuleNotFoundError as exc:
        hint = install_hint(exc.name)
        if hint is None:
            raise
        for command in COMMANDS[module]:
            settings = {"allow_extra_args": True, "ignore_unknown_options": True}
            holder.command(command, context_settings=settings, add_help_option=False)(_needs_extra(command, hint))
    else:
        if module == "prompts":  # `prompts history` comes from the registry module
            registry = importlib.import_module("prefect_llmops.cli.registry")
            registry.register_prompts(loaded.prompts_app)
        loaded.register(holder)
    holder.callback()(lambda: None)  # a group even when the module adds a single command
    return dict(typer.main.get_group(holder).commands)


def _error_line(exc: Exception) -> str:
    """One line for an error that reached the command line: a store failure names the store and
    what to check (``store_errors``); anything else its first line and type."""
    from prefect_llmops.cli import store_errors  # SQLAlchemy is loaded already when a store failed

    if isinstance(exc, store_errors.STORE_ERRORS) or (isinstance(exc, OSError) and exc.errno in store_errors.DISK_FULL):
        return store_errors.store_error_message(exc)
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{first} ({type(exc).__name__}); run with --debug for the traceback" if first else type(exc).__name__


class LazyCommandsGroup(TyperGroup):
    """The ``llmops`` group: lists every command of ``COMMANDS`` and imports a module only when one of
    its commands runs. An error is one line and exit 1 (a store failure names the store, as
    ``StoreErrorsGroup`` does); with ``--debug`` it shows its traceback."""

    _listing = False

    def list_commands(self, ctx: typer.Context) -> list[str]:
        listed = [command for commands in COMMANDS.values() for command in commands]
        return listed + [name for name in self.commands if name not in listed]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        module = _module_of(cmd_name)
        if module is None:
            return None
        if self._listing and cmd_name in SHORT_HELP:
            return TyperCommand(cmd_name, short_help=SHORT_HELP[cmd_name])
        for name, command in _load(module).items():
            self.commands.setdefault(name, command)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as exc:  # "No such command": suggest among every command, loaded or not
            message = getattr(exc, "message", "")
            if args and message.startswith("No such command") and "Did you mean" not in message:
                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = f"{message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"  # type: ignore[attr-defined]
            raise

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: typer.Context) -> Any:
        from prefect_llmops.cli.store_note import naming_the_store  # a command that succeeded names its store

        try:
            with naming_the_store():
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            hint = install_hint(exc.name) if isinstance(exc, ModuleNotFoundError) else None
            if hint:  # a library imported on first use, from an extra that is not installed
                raise fail(f"llmops {ctx.invoked_subcommand} needs an optional install: {hint}") from None
            raise fail(_error_line(exc), EXIT_CHECK_FAILED) from None


app = typer.Typer(
    name="llmops",
    help="Operations for LLM applications: traces, costs, evaluations, prompt rollouts, compression, digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyCommandsGroup,
)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error instead of one line.")] = False,
) -> None:
    """Operations for LLM applications: traces, costs, evaluations, prompt rollouts, compression, digests."""


def main() -> None:
    app()
