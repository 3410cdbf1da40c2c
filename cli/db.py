"""``llmops db``: schema migrations and rollup maintenance."""

from __future__ import annotations

import typer

from llmops.store.engine import get_engine
from llmops.store.migrate import current_revisions, head_revisions
from prefect_llmops.cli.output import echo

db_app = typer.Typer(help="The store: migrations and maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration (also done automatically on first use)."""
    engine = get_engine()
    current = ", ".join(sorted(current_revisions(engine)))
    echo(f"store {engine.url!r} at {current} (heads: {', '.join(sorted(head_revisions()))})")


@db_app.command("rebuild-rollups")
def rebuild_rollups() -> None:
    """Recompute every daily rollup from the raw traces, e.g. after changing LLMOPS_TIMEZONE."""
    from llmops.store.rebuild import rebuild_rollups as rebuild

    engine = get_engine()
    count = rebuild(engine)
    typer.echo(f"rebuilt rollups from {count:,} traces")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
