"""Local state readable by its owner only: ``LLMOPS_HOME`` folders 0700, the SQLite store 0600."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create ``path`` if needed, and every missing folder above it, readable by their owner only (0700).

    A folder that already exists keeps its mode: ``chmod 700`` an existing ``LLMOPS_HOME``.

    Returns:
        ``path``.
    """
    missing: list[Path] = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)  # the umask can only take bits away from 0700
        except FileExistsError:
            pass
    return path


def private_file(path: Path) -> Path:
    """Create an empty ``path`` readable and writable by its owner only (0600), unless it exists.

    SQLite takes an empty file as an empty database and gives its ``-wal`` and ``-shm`` files
    the database file's mode. An existing file keeps its mode.

    Returns:
        ``path``.
    """
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:  # a read-only folder, say: the database driver reports it when it connects
        pass
    return path
