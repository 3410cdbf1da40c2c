"""Every environment variable the project reads, in one place, with its default.

A Block named in a flow's parameters overrides these; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, overload
from zoneinfo import ZoneInfo

LLMOPS_HOME = "LLMOPS_HOME"
LLMOPS_DATABASE_URL = "LLMOPS_DATABASE_URL"
LLMOPS_PROMPTS_DIR = "LLMOPS_PROMPTS_DIR"
LLMOPS_EVALS_DIR = "LLMOPS_EVALS_DIR"
LLMOPS_TIMEZONE = "LLMOPS_TIMEZONE"
LLMOPS_MONTHLY_BUDGET_USD = "LLMOPS_MONTHLY_BUDGET_USD"
LLMOPS_FEATURE_OWNERS = "LLMOPS_FEATURE_OWNERS"  # digest: feature=owner,… or a JSON object; Slack ids (U…) are pinged
LLMOPS_USER_ID_SALT = "LLMOPS_USER_ID_SALT"
LLMOPS_REDACT_DETECTORS = "LLMOPS_REDACT_DETECTORS"  # built-in redaction detectors, comma-separated, or none (all)
LLMOPS_REDACT_PATTERNS = "LLMOPS_REDACT_PATTERNS"  # own patterns: JSON object name -> regex, or a file of name=regex
LLMOPS_CAPTURE_TEXT = "LLMOPS_CAPTURE_TEXT"  # 1: store prompt and answer text, redacted (off)
LLMOPS_CAPTURE_TEXT_MAX_CHARS = "LLMOPS_CAPTURE_TEXT_MAX_CHARS"  # characters of each captured text kept (4000)
LLMOPS_SOURCE_URL = "LLMOPS_SOURCE_URL"
LLMOPS_DASK_ADDRESS = "LLMOPS_DASK_ADDRESS"  # nightly-eval's evaluations on this Dask scheduler (tcp://host:8786)
LLMOPS_LLMLINGUA_MODEL = "LLMOPS_LLMLINGUA_MODEL"  # causal LM folder for the llmlingua method (default: SmolLM2)
LLMOPS_LLMLINGUA2_MODEL = "LLMOPS_LLMLINGUA2_MODEL"  # LLMLingua-2 model folder; set, it is the default method
LLMOPS_GATE_BOOTSTRAP_RESAMPLES = "LLMOPS_GATE_BOOTSTRAP_RESAMPLES"  # resamples of the gates' p95 bootstrap (2000)
LLMOPS_GATE_SEED = "LLMOPS_GATE_SEED"  # the gates' bootstrap seed: the same traces give the same verdict (0)
LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS = "LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS"  # PostgreSQL store: connecting and its startup (10)
LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS = "LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS"  # PostgreSQL store: a statement (60)
LLMOPS_RESOLVE_TIMEOUT_SECONDS = "LLMOPS_RESOLVE_TIMEOUT_SECONDS"  # resolve waits this long for the store (5)
LLMOPS_TEST_POSTGRES_URL = "LLMOPS_TEST_POSTGRES_URL"
LLMOPS_REQUIRE_POSTGRES = "LLMOPS_REQUIRE_POSTGRES"
LLMOPS_REQUIRE_BROWSER = "LLMOPS_REQUIRE_BROWSER"
ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"
ANTHROPIC_BASE_URL = "ANTHROPIC_BASE_URL"
SLACK_BOT_TOKEN = "SLACK_BOT_TOKEN"
SLACK_CHANNEL = "SLACK_CHANNEL"
SLACK_WEBHOOK_URL = "SLACK_WEBHOOK_URL"
SLACK_API_URL = "SLACK_API_URL"
PREFECT_UI_URL = "PREFECT_UI_URL"
# Prefect's own variables that `make serve` (deployments/serve.py) reads or sets for its processes.
PREFECT_HOME = "PREFECT_HOME"
PREFECT_API_URL = "PREFECT_API_URL"
PREFECT_API_DATABASE_CONNECTION_URL = "PREFECT_API_DATABASE_CONNECTION_URL"
PREFECT_WORKER_QUERY_SECONDS = "PREFECT_WORKER_QUERY_SECONDS"
PREFECT_SERVER_ANALYTICS_ENABLED = "PREFECT_SERVER_ANALYTICS_ENABLED"
DO_NOT_TRACK = "DO_NOT_TRACK"
# Libraries' own variables that prompt compression sets for offline use.
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
TIKTOKEN_CACHE_DIR = "TIKTOKEN_CACHE_DIR"
PWD = "PWD"  # the checkout prefect.yaml's pull step runs the flows from


@overload
def env(name: str) -> str | None: ...
@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: None) -> str | None: ...
def env(name: str, default: str | None = None) -> str | None:
    """The variable's value, treating an empty string as unset.

    Args:
        name: The variable's name (one of this module's constants).
        default: What an unset or empty variable means.

    Returns:
        The value, or ``default``.

    Example:
        >>> env("LLMOPS_SURELY_UNSET_VARIABLE", "fallback")
        'fallback'
    """
    value = os.environ.get(name)
    return value if value else default


def home() -> Path:
    """Local state: the SQLite store, caches, outbox files (``LLMOPS_HOME``, default ``./.llmops``)."""
    return Path(env(LLMOPS_HOME, "./.llmops")).expanduser()


DEFAULT_STORE_FILE = "llmops.db"
"""The default store's SQLite file in ``LLMOPS_HOME``."""
CURRENT_STORE_FILE = "current-store"
"""In ``LLMOPS_HOME``: the URL of the store made the default in place of ``llmops.db`` (``make demo``
writes its own; ``llmops demo reset`` removes it), and on a ``prompts=`` line the prompts directory
that store's versions come from."""
CURRENT_PROMPTS_PREFIX = "prompts="
StoreOrigin = Literal["LLMOPS_DATABASE_URL", "current-store", "default"]


def default_database_url() -> str:
    """``sqlite:///<LLMOPS_HOME>/llmops.db``, with an absolute path: the store when nothing else is chosen."""
    return f"sqlite:///{(home() / DEFAULT_STORE_FILE).resolve()}"


def current_store() -> str | None:
    """The URL in ``$LLMOPS_HOME/current-store`` (its first line), or None when there is none.

    Example:
        >>> current_store() is None or "://" in current_store()
        True
    """
    lines = _current_store_record()
    return lines[0] if lines else None


def _current_store_record() -> list[str]:
    """The lines of ``$LLMOPS_HOME/current-store``, blank ones left out; none without the file."""
    try:
        text = (home() / CURRENT_STORE_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def store_choice() -> tuple[str, StoreOrigin]:
    """The store's URL and where it was chosen, first match wins.

    Returns:
        ``LLMOPS_DATABASE_URL``; else the URL in ``$LLMOPS_HOME/current-store`` (``make demo``'s
        store until ``llmops demo reset``); else ``sqlite:///<LLMOPS_HOME>/llmops.db``.
    """
    if url := env(LLMOPS_DATABASE_URL):
        return url, "LLMOPS_DATABASE_URL"
    if url := current_store():
        return url, "current-store"
    return default_database_url(), "default"


def database_url() -> str:
    """The store: any SQLAlchemy URL, SQLite in ``LLMOPS_HOME`` by default (``store_choice``).

    Returns:
        ``LLMOPS_DATABASE_URL``, else the URL in ``$LLMOPS_HOME/current-store``, else
        ``sqlite:///<LLMOPS_HOME>/llmops.db`` with an absolute path.
    """
    return store_choice()[0]


def prompts_dir() -> Path:
    """The prompt version files, first match wins.

    Returns:
        ``LLMOPS_PROMPTS_DIR``; else the directory recorded with the current store in
        ``$LLMOPS_HOME/current-store`` while that store is the one read (the demo's copy of the
        prompts, until ``llmops demo reset``), so the versions read match the store's; else ``./prompts``.
    """
    if configured := env(LLMOPS_PROMPTS_DIR):
        return Path(configured)
    record = _current_store_record()
    recorded = [line.removeprefix(CURRENT_PROMPTS_PREFIX) for line in record[1:] if line.startswith(CURRENT_PROMPTS_PREFIX)]
    if recorded and database_url() == record[0]:
        return Path(recorded[0])
    return Path("./prompts")


def evals_dir() -> Path:
    """The evaluation datasets and scorers (``LLMOPS_EVALS_DIR``, default ``./evals``)."""
    return Path(env(LLMOPS_EVALS_DIR, "./evals"))


def timezone() -> ZoneInfo:
    """The day boundary of rollups, digests and nightly windows (``LLMOPS_TIMEZONE``, default UTC).

    Raises:
        ValueError: The variable is not an IANA timezone name.
    """
    name = env(LLMOPS_TIMEZONE, "UTC")
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError on malformed keys
        raise ValueError(f"{LLMOPS_TIMEZONE}={name!r} is not an IANA timezone (e.g. 'Europe/Berlin')") from exc


DEFAULT_USER_ID_SALT = "llmops-default-salt"
"""The built-in salt: public, so a hash made with it can be reversed by trying user ids (``llmops.privacy`` warns)."""


def user_id_salt() -> bytes:
    """Key for hashing user ids before they are stored; set it per deployment (``LLMOPS_USER_ID_SALT``)."""
    return env(LLMOPS_USER_ID_SALT, DEFAULT_USER_ID_SALT).encode()


def redact_detectors() -> str:
    """The built-in redaction detectors to run (``LLMOPS_REDACT_DETECTORS``): names, comma-separated, or ``none``.

    Example:
        >>> isinstance(redact_detectors(), str)
        True
    """
    return env(LLMOPS_REDACT_DETECTORS, "all")


def redact_patterns() -> str | None:
    """The deployment's own redaction patterns (``LLMOPS_REDACT_PATTERNS``), unparsed; ``llmops.privacy`` reads them.

    A JSON object of name -> regular expression, or the path of a file of ``name=regex`` lines.
    """
    return env(LLMOPS_REDACT_PATTERNS)


def capture_text() -> bool:
    """Whether the store keeps prompt and answer text, redacted (``LLMOPS_CAPTURE_TEXT``: ``1``/``true``/``yes``; off by default).

    Example:
        >>> isinstance(capture_text(), bool)
        True
    """
    return env(LLMOPS_CAPTURE_TEXT, "0").strip().lower() in {"1", "true", "yes", "on"}


def capture_text_max_chars() -> int:
    """Characters of each captured prompt or answer text the store keeps (``LLMOPS_CAPTURE_TEXT_MAX_CHARS``).

    Returns:
        4,000 by default (at least 1); longer texts are cut, after redaction.

    Example:
        >>> capture_text_max_chars() >= 1
        True
    """
    return _int_setting(LLMOPS_CAPTURE_TEXT_MAX_CHARS, 4000, 1)


def _int_setting(name: str, default: int, minimum: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def gate_bootstrap_resamples() -> int:
    """Resamples of the rollout gates' bootstrap interval of the p95 latency ratio.

    Returns:
        ``LLMOPS_GATE_BOOTSTRAP_RESAMPLES``, 2,000 by default (at least 200).

    Example:
        >>> gate_bootstrap_resamples() >= 200
        True
    """
    return _int_setting(LLMOPS_GATE_BOOTSTRAP_RESAMPLES, 2000, 200)


def gate_seed() -> int:
    """The gates' bootstrap seed, so that the same traces always give the same verdict.

    Returns:
        ``LLMOPS_GATE_SEED``, 0 by default.

    Example:
        >>> isinstance(gate_seed(), int)
        True
    """
    return _int_setting(LLMOPS_GATE_SEED, 0, 0)


def store_connect_timeout() -> int:
    """Seconds to connect to a PostgreSQL store, startup and authentication included.

    A server that accepts the connection and never answers fails after this long instead of
    hanging the command.

    Returns:
        ``LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS``, 10 by default (at least 2, libpq's minimum).

    Example:
        >>> store_connect_timeout() >= 2
        True
    """
    return _int_setting(LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS, 10, 2)


def store_statement_timeout() -> int:
    """Seconds one statement on a PostgreSQL store may run (lock waits included); 0 for no limit.

    Migrations run without it: a schema change on a big store may take longer.

    Returns:
        ``LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS``, 60 by default.

    Example:
        >>> store_statement_timeout() >= 0
        True
    """
    return _int_setting(LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS, 60, 0)


def resolve_timeout() -> int:
    """Seconds ``resolve`` waits for the store before serving the last known version (or failing).

    Returns:
        ``LLMOPS_RESOLVE_TIMEOUT_SECONDS``, 5 by default (at least 1).

    Example:
        >>> resolve_timeout() >= 1
        True
    """
    return _int_setting(LLMOPS_RESOLVE_TIMEOUT_SECONDS, 5, 1)
