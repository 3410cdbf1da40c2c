"""The demo's own files in ``LLMOPS_HOME``, and making its store the default until a reset.

``make demo`` writes its invented history to ``demo.db``, never to ``llmops.db``, and records
that store in ``$LLMOPS_HOME/current-store`` (``llmops.settings.store_choice``) with its copy of
the prompt files (``llmops.settings.prompts_dir``), so that every ``llmops`` command and
``make serve`` read the demo's data and versions with no extra flag.
``llmops demo reset`` deletes the demo's files and that record: ``llmops.db`` is the default
again, and nothing in it was touched. ``LLMOPS_DATABASE_URL`` always wins over both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llmops import privacy, settings

DEMO_STORE_FILE = "demo.db"
"""The demo's store in ``LLMOPS_HOME``."""
APP_DATABASE_FILE = "demo-app.db"
"""The demo application's own table of LLM calls, which ``ingest-traces`` pulls from."""
HISTORY_MARKER_FILE = "demo-history.json"
"""What the demo store was seeded with; a different window means a rebuild."""
DEMO_PROMPTS_DIR = "demo-prompts"
"""The demo's copy of the prompt files (compression registers its version there)."""
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def demo_store_path() -> Path:
    """``$LLMOPS_HOME/demo.db``, absolute."""
    return (settings.home() / DEMO_STORE_FILE).resolve()


def demo_store_url() -> str:
    """The demo's own store: ``sqlite:///<LLMOPS_HOME>/demo.db`` with an absolute path."""
    return f"sqlite:///{demo_store_path()}"


def make_current(url: str, prompts: Path | None = None) -> Path:
    """Record ``url`` in ``$LLMOPS_HOME/current-store`` (0600): the store commands read by default.

    Args:
        url: The store.
        prompts: The prompts directory its versions come from (the demo's copy), which commands
            then read instead of ``./prompts`` while that store is the one read; None for none.

    Returns:
        The file written.
    """
    path = privacy.private_file(settings.home() / settings.CURRENT_STORE_FILE)
    recorded = f"{settings.CURRENT_PROMPTS_PREFIX}{prompts.resolve()}\n" if prompts is not None else ""
    path.write_text(f"{url}\n{recorded}", encoding="utf-8")
    return path


def is_demo_current() -> bool:
    """Whether the store recorded in ``current-store`` is the demo's own ``demo.db``."""
    return settings.current_store() == demo_store_url()


def remove_sqlite(database: Path) -> list[Path]:
    """Delete a SQLite database and its side files (``-wal``, ``-shm``, ``-journal``); returns those deleted."""
    removed = []
    for suffix in SQLITE_SIDE_FILES:
        path = database.with_name(database.name + suffix)
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def reset_demo() -> list[Path]:
    """Forget the demo: delete its store, its application table, its history marker and prompt
    copy, and the ``current-store`` record when it names the demo's store.

    A ``current-store`` naming another store is left alone, and ``llmops.db`` is never touched.

    Returns:
        What was deleted (files and folders), in order.
    """
    home = settings.home()
    removed: list[Path] = []
    record = home / settings.CURRENT_STORE_FILE
    if record.is_file() and is_demo_current():
        record.unlink()
        removed.append(record)
    for name in (DEMO_STORE_FILE, APP_DATABASE_FILE):
        removed += remove_sqlite(home / name)
    marker = home / HISTORY_MARKER_FILE
    if marker.is_file():
        marker.unlink()
        removed.append(marker)
    prompts = home / DEMO_PROMPTS_DIR
    if prompts.is_dir():
        shutil.rmtree(prompts)
        removed.append(prompts)
    return removed
