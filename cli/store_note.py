"""Every command names the store it read: one dim line on stderr after its output.

    store: sqlite:////home/me/app/.llmops/demo.db (the demo's; `llmops demo reset` returns to llmops.db)

On stderr, so ``--json`` output stays clean; only when the command succeeded, so an error stays
one line (a store error names the store itself); the password masked. The ``llmops`` group runs
every command under ``naming_the_store``. Nothing heavy is imported until a store was used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from llmops import settings
from llmops.store.usage import on_use

DEMO_STORE_FILE = "demo.db"  # llmops.demo.store.DEMO_STORE_FILE, without importing the demo's history


def masked(url: str) -> str:
    """``url`` with its password masked (``***``).

    Example:
        >>> masked("postgresql+psycopg://llmops:s3cret@db:5432/llmops")
        'postgresql+psycopg://llmops:***@db:5432/llmops'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a SQLAlchemy URL)"


def store_line(url: str) -> str:
    """What the command line says about the store at ``url``: where it is and why it was read.

    Example:
        >>> store_line("postgresql+psycopg://llmops:s3cret@db/llmops").startswith("store: postgresql+psycopg://llmops:***@db/llmops")
        True
    """
    return f"store: {describe(url)}"


def describe(url: str) -> str:
    """The store at ``url``, password masked, and why commands read it (when it is the one they read)."""
    chosen, origin = settings.store_choice()
    why = ""
    if url != chosen:  # a store named some other way (a block, an option): the URL says it all
        pass
    elif origin == "LLMOPS_DATABASE_URL":
        why = f" (from {settings.LLMOPS_DATABASE_URL})"
    elif origin == "current-store" and url == f"sqlite:///{(settings.home() / DEMO_STORE_FILE).resolve()}":
        why = f" (the demo's; `llmops demo reset` returns to {settings.DEFAULT_STORE_FILE})"
    elif origin == "current-store":
        why = f" (named in $LLMOPS_HOME/{settings.CURRENT_STORE_FILE})"
    return f"{masked(url)}{why}"


@contextmanager
def naming_the_store() -> Iterator[None]:
    """Run a command; when it succeeded, name each store it used on stderr, in order."""
    used: list[str] = []
    stop = on_use(lambda url: None if url in used else used.append(url))
    try:
        yield
    except typer.Exit as exc:  # typer's own (it vendors click; `click` is not installed with the base)
        stop()
        if exc.exit_code == 0:
            say(used)
        raise
    except BaseException:
        stop()
        raise
    stop()
    say(used)


def say(urls: list[str]) -> None:
    """The store line of each URL, dim, on stderr."""
    if not urls:
        return
    from rich.text import Text

    from prefect_llmops.cli.output import errors, safe_text

    for url in urls:
        errors.print(Text(safe_text(store_line(url)), style="dim"), highlight=False)
