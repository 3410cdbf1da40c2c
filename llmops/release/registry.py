"""The prompt registry as applications use it: the sticky, cached resolution of a user to a version.

``Registry`` is the label store (``llmops.release.label_store``: immutable versions, movable
labels with traffic, their audit log) plus ``resolve``, which an application calls on every
request; this module also re-exports the label store's names, so ``llmops.release.registry``
is the one place to import the registry from.

A user's bucket is ``int.from_bytes(sha256(f"{prompt}:{user}")[:8], "big") % 10_000``: the
same in every process, release and language, and independent of the traffic share, so raising
a canary from 5 % to 25 % only adds users to it (buckets below the threshold of
``traffic_percent × 100`` get the canary). Versions are immutable, so their text is cached for
the life of the process; labels are cached for ``cache_ttl`` seconds and re-read with one small
query on the label rows (their revisions tell whether anything moved). A label moved through
this registry invalidates its entry at once; other processes see the move within the TTL. This
avoids a per-request round trip while keeping the staleness bound explicit; a notification
channel (LISTEN/NOTIFY) would not work on SQLite. When the store is unreachable the last known
routing keeps serving, marked ``stale``, with one warning per outage and one retry per TTL.
A store that hangs is an outage too: ``resolve`` waits for it at most ``timeout`` seconds
(``LLMOPS_RESOLVE_TIMEOUT_SECONDS``, first connection and migration check included), the read
goes on in the background, and meanwhile every call serves the last known routing at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from llmops import settings
from llmops.release.label_store import (
    CANARY,
    LABEL_ACTIONS,
    PRODUCTION,
    REGISTER,
    STAGING,
    ConcurrentUpdateError,
    ImmutableVersionError,
    LabelEvent,
    LabelSlot,
    LabelState,
    LabelStore,
    RegisteredVersion,
    RegistryError,
    UnknownVersionError,
)
from llmops.store.engine import get_engine, read_only
from llmops.store.tables import PROMPT_LABELS as LABEL_ROWS
from llmops.store.tables import PROMPT_VERSIONS as VERSIONS

__all__ = [
    "BUCKETS",
    "CANARY",
    "DEFAULT_CACHE_TTL_SECONDS",
    "LABEL_ACTIONS",
    "PRODUCTION",
    "REGISTER",
    "STAGING",
    "ConcurrentUpdateError",
    "ImmutableVersionError",
    "LabelEvent",
    "LabelSlot",
    "LabelState",
    "PromptNotServed",
    "RegisteredVersion",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "ResolvedPrompt",
    "UnknownVersionError",
    "bucket",
    "canary_threshold",
    "get_registry",
    "resolve",
]

logger = logging.getLogger(__name__)

BUCKETS = 10_000
DEFAULT_CACHE_TTL_SECONDS = 5.0


class PromptNotServed(RegistryError, LookupError):
    """The prompt has no version to serve in that environment (no production label)."""


class RegistryUnavailable(RegistryError):
    """The store is unreachable and this process has no last known version to fall back on."""


_T = TypeVar("_T")


def _within(seconds: float, action: Callable[[], _T], name: str) -> _T:
    """``action()`` in a daemon thread, waited for at most ``seconds``; it runs on after a timeout.

    Raises:
        TimeoutError: ``action`` did not finish in time.
    """
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value


def bucket(prompt_name: str, user_id: str) -> int:
    """The user's sticky bucket in [0, 10 000): first 8 bytes of sha256("prompt:user"), big-endian.

    Args:
        prompt_name: The prompt.
        user_id: The user.

    Returns:
        The bucket; the same in every process and release.

    Example:
        >>> 0 <= bucket("support-chat", "user-42") < BUCKETS
        True
        >>> bucket("support-chat", "user-42") == bucket("support-chat", "user-42")
        True
    """
    digest = hashlib.sha256(f"{prompt_name}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def canary_threshold(traffic_percent: float | None) -> int:
    """Buckets below this number are served the canary.

    Args:
        traffic_percent: The canary's share of requests; None when there is no canary.

    Returns:
        The threshold, from 0 (nobody) to ``BUCKETS`` (everybody).

    Example:
        >>> canary_threshold(5), canary_threshold(None)
        (500, 0)
    """
    return 0 if traffic_percent is None else round(traffic_percent * BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    """What to send for this user: ``system`` is the prompt text; ``stale`` = served during an outage.

    Example:
        ```python
        resolved = get_registry().resolve("support-chat", user_id="user-42")
        client.messages.create(model=resolved.model, system=resolved.system, **resolved.parameters, messages=messages)
        ```
    """

    name: str
    environment: str
    version: str
    version_id: int
    content_hash: str
    label: str
    model: str
    system: str
    parameters: dict[str, Any]
    bucket: int
    stale: bool


@dataclass(frozen=True, slots=True)
class _Content:
    id: int
    version: str
    model: str
    system: str
    parameters: dict[str, Any]
    content_hash: str


@dataclass(frozen=True, slots=True)
class _Routing:
    production: _Content | None
    canary: _Content | None
    threshold: int
    revisions: tuple[tuple[str, int], ...]
    checked_at: float
    stale: bool = False


class Registry(LabelStore):
    """The registry on one store: the label store's versions, labels and audit log, plus ``resolve``.

    Share one instance per process (``get_registry``) so label moves made here invalidate the
    resolve cache at once.

    Args:
        engine: The store.
        cache_ttl: How long, in seconds, resolved labels are served before they are re-checked.
        timeout: How long, in seconds, ``resolve`` waits for the store; None reads
            ``LLMOPS_RESOLVE_TIMEOUT_SECONDS``.

    Raises:
        ValueError: A negative ``cache_ttl`` or a ``timeout`` that is not positive.

    Example:
        ```python
        registry = Registry(engine, cache_ttl=1)
        registry.resolve("support-chat", "user-42").version  # "1.2.0"
        ```
    """

    def __init__(self, engine: Engine, *, cache_ttl: float = DEFAULT_CACHE_TTL_SECONDS, timeout: float | None = None) -> None:
        if cache_ttl < 0:
            raise ValueError(f"cache_ttl must be ≥ 0 seconds, got {cache_ttl}")
        timeout = settings.resolve_timeout() if timeout is None else timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        super().__init__(engine)
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self._contents: dict[tuple[str, str], _Content] = {}
        self._routing: dict[tuple[str, str], _Routing] = {}
        self._refresh_lock = threading.Lock()
        self._outage = False

    def _label_moved(self, name: str, environment: str) -> None:
        self._routing.pop((name, environment), None)

    def resolve(self, prompt_name: str, user_id: str, environment: str = PRODUCTION) -> ResolvedPrompt:
        """The version this user gets: the canary if their bucket is under its share, else production.

        Args:
            prompt_name: The prompt.
            user_id: The user; the same user always lands in the same bucket.
            environment: The registry environment.

        Returns:
            The version's text, model and parameters; ``stale`` when served from the cache
            during a store outage.

        Raises:
            PromptNotServed: The prompt has no production version there.
            RegistryUnavailable: The store is unreachable, or did not answer within ``timeout``,
                and this process never resolved the prompt before.

        Example:
            ```python
            resolved = registry.resolve("support-chat", "user-42")
            resolved.version, resolved.label  # ("1.3.0", "canary")
            ```
        """
        routing = self._routing.get((prompt_name, environment))
        if routing is None or time.monotonic() - routing.checked_at >= self.cache_ttl:
            routing = self._refresh(prompt_name, environment, routing)
        user_bucket = bucket(prompt_name, user_id)
        content: _Content | None
        if user_bucket < routing.threshold and routing.canary is not None:
            content, label = routing.canary, CANARY
        else:
            content, label = routing.production, PRODUCTION
        if content is None:
            raise PromptNotServed(
                f"{prompt_name} has no production version in environment {environment!r}: promote one first "
                f"(llmops promote {prompt_name} VERSION)"
            )
        return ResolvedPrompt(
            prompt_name,
            environment,
            content.version,
            content.id,
            content.content_hash,
            label,
            content.model,
            content.system,
            content.parameters,
            user_bucket,
            routing.stale,
        )

    def _refresh(self, name: str, environment: str, previous: _Routing | None) -> _Routing:
        """Re-read the labels within ``timeout``; another thread already refreshing → serve what we have.

        The read runs in a worker thread that holds the refresh lock until it ends, so a hung
        store costs one caller ``timeout`` seconds per outage; the others serve ``previous`` at once.
        """
        key = (name, environment)
        if previous is None:
            if not self._refresh_lock.acquire(timeout=self.timeout):
                raise self._unavailable(name, environment, f"no answer within {self.timeout:g} s")
        elif not self._refresh_lock.acquire(blocking=False):
            return previous
        try:
            latest = self._routing.get(key)
            fresh = latest is not None and time.monotonic() - latest.checked_at < self.cache_ttl
        except BaseException:
            self._refresh_lock.release()
            raise
        if latest is not None and latest is not previous and fresh:
            self._refresh_lock.release()
            return latest

        def read() -> _Routing:
            try:
                routing = self._read_routing(name, environment, previous)
                self._routing[key] = routing
                if self._outage:
                    self._outage = False
                    logger.warning("prompt registry store reachable again; serving current label state")
                return routing
            finally:
                self._refresh_lock.release()

        cause: BaseException
        try:
            return _within(self.timeout, read, "llmops-registry-refresh")
        except OperationalError as exc:
            reason, cause = type(exc.orig or exc).__name__, exc
        except TimeoutError as exc:
            reason, cause = f"no answer within {self.timeout:g} s", exc
        routing = self._during_outage(name, environment, previous, reason, cause)
        if self._routing.get(key) is previous:  # the late read may have landed already
            self._routing[key] = routing
        return self._routing.get(key) or routing

    def _unavailable(self, name: str, environment: str, reason: str) -> RegistryUnavailable:
        store = self.engine.url.render_as_string(hide_password=True)
        return RegistryUnavailable(
            f"prompt registry store {store} is unreachable ({reason}) and this process has not resolved "
            f"{name!r} in {environment!r} before, so there is no last known version to serve"
        )

    def _during_outage(self, name: str, environment: str, previous: _Routing | None, reason: str, exc: BaseException) -> _Routing:
        store = self.engine.url.render_as_string(hide_password=True)
        if previous is None:
            raise self._unavailable(name, environment, reason) from exc
        if not self._outage:
            self._outage = True
            logger.warning(
                "prompt registry store %s is unreachable (%s): serving the last known versions from this "
                "process's cache (e.g. %s production %s) and retrying every %g s",
                store,
                reason,
                name,
                previous.production.version if previous.production else "unset",
                self.cache_ttl,
            )
        return replace(previous, checked_at=time.monotonic(), stale=True)

    def _read_routing(self, name: str, environment: str, previous: _Routing | None) -> _Routing:
        with read_only(self.engine).connect() as connection:
            rows = connection.execute(
                select(LABEL_ROWS.c.label, LABEL_ROWS.c.version, LABEL_ROWS.c.traffic_percent, LABEL_ROWS.c.revision)
                .where(
                    LABEL_ROWS.c.name == name,
                    LABEL_ROWS.c.environment == environment,
                    LABEL_ROWS.c.label.in_((PRODUCTION, CANARY)),
                )
                .order_by(LABEL_ROWS.c.label)
            ).all()
            revisions = tuple((row.label, row.revision) for row in rows)
            if previous is not None and previous.revisions == revisions:
                return replace(previous, checked_at=time.monotonic(), stale=False)
            by_label = {row.label: row for row in rows}
            wanted = {row.version for row in rows if row.version is not None and (name, row.version) not in self._contents}
            if wanted:
                for version in connection.execute(
                    select(VERSIONS).where(VERSIONS.c.name == name, VERSIONS.c.version.in_(wanted))
                ):
                    self._contents[(name, version.version)] = _Content(
                        version.id, version.version, version.model, version.system, version.parameters, version.content_hash
                    )
        production, canary = by_label.get(PRODUCTION), by_label.get(CANARY)
        return _Routing(
            production=self._contents.get((name, production.version)) if production and production.version else None,
            canary=self._contents.get((name, canary.version)) if canary and canary.version else None,
            threshold=canary_threshold(canary.traffic_percent) if canary and canary.version else 0,
            revisions=revisions,
            checked_at=time.monotonic(),
        )


_registries: dict[str, Registry] = {}
_registries_lock = threading.Lock()


def get_registry(url: str | None = None) -> Registry:
    """The process-wide registry on the store at ``url`` (default: the configured store).

    An application keeps the result and calls its ``resolve``: the module-level ``resolve``
    looks the registry up on every call, which roughly doubles the cached figure.

    Args:
        url: The store's SQLAlchemy URL; the configured store when None.

    Returns:
        The one registry of this process on that store (a new one if its engine was replaced).

    Example:
        ```python
        registry = get_registry()
        resolved = registry.resolve("support-chat", user_id)
        ```
    """
    engine = get_engine(url)
    key = engine.url.render_as_string(hide_password=False)
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None or registry.engine is not engine:
            registry = _registries[key] = Registry(engine)
    return registry


def resolve(prompt_name: str, user_id: str, environment: str = PRODUCTION) -> ResolvedPrompt:
    """The prompt version to serve this user, from the configured store (see ``Registry.resolve``).

    Args:
        prompt_name: The prompt.
        user_id: The user.
        environment: The registry environment.

    Returns:
        What to send for this user.

    Raises:
        PromptNotServed: The prompt has no production version there.
        RegistryUnavailable: The store is unreachable, or not ready within
            ``LLMOPS_RESOLVE_TIMEOUT_SECONDS``, at first use.

    Example:
        ```python
        from llmops.release.registry import resolve

        resolve("support-chat", "user-42").system
        ```
    """
    url = settings.database_url()
    try:
        if url in _opened:
            registry = get_registry(url)
        else:  # the first connection and the migration check, within resolve's own deadline
            timeout = settings.resolve_timeout()
            registry = _within(timeout, lambda: get_registry(url), "llmops-registry-open")
            _opened.add(url)
    except (OperationalError, TimeoutError) as exc:
        reason = type(exc.orig or exc).__name__ if isinstance(exc, OperationalError) else str(exc)
        raise RegistryUnavailable(
            f"prompt registry store {make_url(url).render_as_string(hide_password=True)} is unreachable "
            f"({reason}) at first use, so there is no last known version to serve"
        ) from exc
    return registry.resolve(prompt_name, user_id, environment)


_opened: set[str] = set()
"""Store URLs whose registry this process has opened (``resolve`` waits no longer for them)."""
