"""Every environment variable the project reads, in one place, with its default.

A Block named in a flow's parameters overrides these; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import overload
from zoneinfo import ZoneInfo

LLMOPS_HOME = "LLMOPS_HOME"
LLMOPS_DATABASE_URL = "LLMOPS_DATABASE_URL"
LLMOPS_PROMPTS_DIR = "LLMOPS_PROMPTS_DIR"
LLMOPS_EVALS_DIR = "LLMOPS_EVALS_DIR"
LLMOPS_TIMEZONE = "LLMOPS_TIMEZONE"
LLMOPS_MONTHLY_BUDGET_USD = "LLMOPS_MONTHLY_BUDGET_USD"
LLMOPS_USER_ID_SALT = "LLMOPS_USER_ID_SALT"
LLMOPS_SOURCE_URL = "LLMOPS_SOURCE_URL"
LLMOPS_DASK_ADDRESS = "LLMOPS_DASK_ADDRESS"  # nightly-eval's evaluations on this Dask scheduler (tcp://host:8786)
LLMOPS_LLMLINGUA_MODEL = "LLMOPS_LLMLINGUA_MODEL"  # causal LM folder for the llmlingua method (default: SmolLM2)
LLMOPS_LLMLINGUA2_MODEL = "LLMOPS_LLMLINGUA2_MODEL"  # LLMLingua-2 model folder; set, it is the default method
LLMOPS_GATE_BOOTSTRAP_RESAMPLES = "LLMOPS_GATE_BOOTSTRAP_RESAMPLES"  # resamples of the gates' p95 bootstrap (2000)
LLMOPS_GATE_SEED = "LLMOPS_GATE_SEED"  # the gates' bootstrap seed: the same traces give the same verdict (0)
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


def database_url() -> str:
    """The store: any SQLAlchemy URL, SQLite in ``LLMOPS_HOME`` by default.

    Returns:
        ``LLMOPS_DATABASE_URL``, else ``sqlite:///<LLMOPS_HOME>/llmops.db`` with an absolute path.
    """
    url = env(LLMOPS_DATABASE_URL)
    if url:
        return url
    return f"sqlite:///{(home() / 'llmops.db').resolve()}"


def prompts_dir() -> Path:
    """The prompt version files (``LLMOPS_PROMPTS_DIR``, default ``./prompts``)."""
    return Path(env(LLMOPS_PROMPTS_DIR, "./prompts"))


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


def user_id_salt() -> bytes:
    """Key for hashing user ids before they are stored; set it per deployment."""
    return env(LLMOPS_USER_ID_SALT, "llmops-default-salt").encode()


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
