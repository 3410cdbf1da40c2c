"""``llmops demo``: the demo's store, made the default by ``make demo``, and forgetting it again."""

from __future__ import annotations

import typer

from llmops import settings
from prefect_llmops.cli.output import echo

demo_app = typer.Typer(help="The demo's store: `make demo` makes it the default until `llmops demo reset`.", no_args_is_help=True)


def _store_now() -> str:
    from prefect_llmops.cli.store_note import describe

    return describe(settings.database_url())


@demo_app.command("reset")
def reset() -> None:
    """Forget the demo: delete its store (demo.db), its application table, history marker and prompt
    copy, so that commands read llmops.db again. llmops.db is never touched."""
    from llmops.demo.store import reset_demo

    removed = reset_demo()
    home = settings.home()
    if removed:
        names = ", ".join(str(path.relative_to(home)) if path.is_relative_to(home) else str(path) for path in removed)
        echo(f"deleted from {home}: {names}")
    else:
        echo(f"nothing of the demo's in {home}")
    echo(f"commands now read {_store_now()}")


@demo_app.command("status")
def status() -> None:
    """Which store and prompts directory commands read now, and why."""
    echo(f"commands read {_store_now()}")
    echo(f"and the prompt files in {settings.prompts_dir()}")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
