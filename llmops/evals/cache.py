"""Outputs already paid for, in the store (``eval_cache``), so an unchanged case costs nothing.

The key is what the model's answer depends on: the model id, the sampling parameters, the
system prompt's text (not the version number: a new version with the same text is the same
request), the messages, and the repeat index (repeat 2 of a non-deterministic prompt is a
different sample from repeat 1). Only successful answers are cached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from llmops.evals.datasets import canonical_hash
from llmops.store.engine import dialect_insert, read_only
from llmops.store.tables import EVAL_CACHE as CACHE

CacheMode = Literal["use", "refresh", "off"]
"""``use``: read and write; ``refresh``: call the model anyway and overwrite the cached answers
(a nightly run measuring the pinned model as it answers today); ``off``: neither."""
LOOKUP_CHUNK = 500
"""Keys per ``IN (…)`` query: well under SQLite's and PostgreSQL's parameter limits."""


@dataclass(frozen=True, slots=True)
class CachedOutput:
    """A cached answer, with what it cost and took when it was made."""

    output: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    latency_ms: float | None


def cache_key(model: str, parameters: Mapping[str, Any], system: str, messages: Sequence[Mapping[str, Any]], repeat: int) -> str:
    """sha256 over the canonical JSON of everything the answer depends on.

    Args:
        model: The model id.
        parameters: The sampling parameters sent.
        system: The system prompt's text (hashed: a prompt version's number does not count).
        messages: The Messages API ``messages``.
        repeat: The repeat index (each repeat is its own sample).

    Returns:
        The key, a hex digest.

    Example:
        >>> messages = [{"role": "user", "content": "Hi"}]
        >>> cache_key("m", {}, "Be brief.", messages, 0) == cache_key("m", {}, "Be brief.", messages, 1)
        False
    """
    return canonical_hash({
        "model": model,
        "parameters": parameters,
        "system": hashlib.sha256(system.encode()).hexdigest(),
        "messages": messages,
        "repeat": repeat,
    })  # fmt: skip


def lookup(engine: Engine, keys: Iterable[str]) -> dict[str, CachedOutput]:
    """The cached outputs among ``keys`` (a read that never waits for a writer on SQLite).

    Args:
        engine: The store.
        keys: Cache keys (``cache_key``); duplicates are looked up once.

    Returns:
        ``{key: output}`` for the keys found.

    Example:
        ```python
        hits = lookup(engine, [case.key for case in chunk])
        ```
    """
    wanted = list(dict.fromkeys(keys))
    found: dict[str, CachedOutput] = {}
    if not wanted:
        return found
    columns = (CACHE.c.key, CACHE.c.output, CACHE.c.input_tokens, CACHE.c.output_tokens, CACHE.c.cost_usd, CACHE.c.latency_ms)
    with read_only(engine).connect() as connection:
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            for row in connection.execute(select(*columns).where(CACHE.c.key.in_(chunk))):
                found[row.key] = CachedOutput(row.output, row.input_tokens, row.output_tokens, row.cost_usd, row.latency_ms)
    return found


def store_outputs(connection: Connection, entries: Sequence[dict[str, Any]], *, replace: bool = False) -> None:
    """Insert entries in the caller's transaction; an existing key is kept, or overwritten with ``replace``.

    Args:
        connection: A connection inside the caller's transaction (SQLite or PostgreSQL).
        entries: Rows made by ``entry``; two with the same key are stored once.
        replace: Overwrite existing keys (``refresh`` mode) instead of keeping them.

    Example:
        ```python
        with engine.begin() as connection:
            store_outputs(connection, [entry(key, model, text, 120, 40, cost, 850.0, False, now)])
        ```
    """
    if not entries:
        return
    insert = dialect_insert(connection, CACHE)
    if replace:
        updated = {name: insert.excluded[name] for name in CACHE.c.keys() if name != "key"}
        statement = insert.on_conflict_do_update(index_elements=["key"], set_=updated)
    else:
        statement = insert.on_conflict_do_nothing(index_elements=["key"])
    unique = {row["key"]: row for row in entries}  # two examples with the same input share a key
    connection.execute(statement, list(unique.values()))


def entry(
    key: str, model: str, output: str, input_tokens: int, output_tokens: int,
    cost_usd: Decimal | None, latency_ms: float | None, is_batch: bool, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """One row for ``store_outputs``: a successful answer under its key, with its usage, cost and latency."""
    return {
        "key": key, "model": model, "output": output, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "cost_usd": cost_usd, "latency_ms": latency_ms, "is_batch": is_batch, "created_at": now,
    }  # fmt: skip
