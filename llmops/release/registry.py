"""The prompt registry: immutable versions, movable labels with traffic, their audit log, and
the sticky, cached resolution an application calls on every request.

Writes. Every label move locks its row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers), checks the caller's ``expected_revision``, updates
with a compare-and-set on ``revision`` and appends the audit event, all in one transaction.
Two promotions racing on the same label: the first commits, the second finds a revision it
did not expect and gets ``ConcurrentUpdateError``. Without ``expected_revision`` writers
queue and each event's ``from`` is exactly the previous event's ``to``.

Resolution. A user's bucket is ``int.from_bytes(sha256(f"{prompt}:{user}")[:8], "big") %
10_000``: the same in every process, release and language, and independent of the traffic
share, so raising a canary from 5 % to 25 % only adds users to it (buckets below the
threshold of ``traffic_percent × 100`` get the canary). Versions are immutable, so their text
is cached for the life of the process; labels are cached for ``cache_ttl`` seconds and
re-read with one small query on the label rows (their revisions tell whether anything moved).
A label moved through this registry invalidates its entry at once; other processes see the
move within the TTL. This avoids a per-request round trip while keeping the staleness bound
explicit; a notification channel (LISTEN/NOTIFY) would not work on SQLite.
When the store is unreachable the last known routing keeps serving, marked ``stale``, with
one warning per outage and one retry per TTL.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from llmops.store.engine import get_engine, read_only
from llmops.store.registry_models import LABELS, LabelEventRow, PromptLabel, PromptVersionRow

if TYPE_CHECKING:
    from llmops.prompts import PromptVersion

logger = logging.getLogger(__name__)

PRODUCTION, CANARY, STAGING = LABELS
BUCKETS = 10_000
DEFAULT_CACHE_TTL_SECONDS = 5.0
REGISTER = "register"
LABEL_ACTIONS = ("promote", "set_traffic", "rollback", "clear")
VERSIONS: Table = PromptVersionRow.__table__  # type: ignore[assignment]
LABEL_ROWS: Table = PromptLabel.__table__  # type: ignore[assignment]
EVENTS: Table = LabelEventRow.__table__  # type: ignore[assignment]


class RegistryError(Exception):
    """Base of the registry's errors."""


class ImmutableVersionError(RegistryError):
    """A released version's content changed: give the change a new version number."""


class UnknownVersionError(RegistryError, LookupError):
    """A label was pointed at a version that was never registered."""


class ConcurrentUpdateError(RegistryError):
    """Another writer moved the label between the caller's read and its write."""


class PromptNotServed(RegistryError, LookupError):
    """The prompt has no version to serve in that environment (no production label)."""


class RegistryUnavailable(RegistryError):
    """The store is unreachable and this process has no last known version to fall back on."""


def bucket(prompt_name: str, user_id: str) -> int:
    """The user's sticky bucket in [0, 10 000): first 8 bytes of sha256("prompt:user"), big-endian."""
    digest = hashlib.sha256(f"{prompt_name}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def canary_threshold(traffic_percent: float | None) -> int:
    """Buckets below this number are served the canary."""
    return 0 if traffic_percent is None else round(traffic_percent * BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    id: int
    name: str
    version: str
    model: str
    content_hash: str
    registered_at: datetime
    registered_by: str
    source_path: str | None
    newly_registered: bool


@dataclass(frozen=True, slots=True)
class LabelSlot:
    """One label's state; ``version`` is None when the label is unset. ``revision`` 0 = never set."""

    label: str
    version: str | None
    traffic_percent: float | None
    revision: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class LabelState:
    """Every label of a prompt in one environment, with the revisions a writer must expect."""

    name: str
    environment: str
    slots: dict[str, LabelSlot]

    def slot(self, label: str) -> LabelSlot:
        return self.slots.get(label) or LabelSlot(label, None, None, 0, None)

    @property
    def production(self) -> str | None:
        return self.slot(PRODUCTION).version

    @property
    def canary(self) -> str | None:
        return self.slot(CANARY).version

    @property
    def canary_traffic_percent(self) -> float | None:
        return self.slot(CANARY).traffic_percent

    @property
    def staging(self) -> str | None:
        return self.slot(STAGING).version


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """One audit entry; ``environment``/``label`` are None for a registration."""

    id: int
    time: datetime
    actor: str
    action: str
    name: str
    environment: str | None
    label: str | None
    from_version: str | None
    to_version: str | None
    from_traffic: float | None
    to_traffic: float | None
    label_revision: int | None
    reason: str | None
    flow_run_id: str | None


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    """What to send for this user: ``system`` is the prompt text; ``stale`` = served during an outage."""

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


def _now() -> datetime:
    return datetime.now(UTC)


def _require_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise ValueError(f"label must be one of {', '.join(LABELS)}, got {label!r}")


def _check_traffic(label: str, traffic_percent: float | None) -> float | None:
    if label != CANARY:
        if traffic_percent is not None:
            raise ValueError(f"traffic_percent applies to the canary only; {label} serves no set share (got {traffic_percent})")
        return None
    if traffic_percent is None:
        raise ValueError("a canary needs traffic_percent: the share of requests it serves, 0–100")
    if isinstance(traffic_percent, bool) or not isinstance(traffic_percent, int | float) or math.isnan(traffic_percent):
        raise ValueError(f"traffic_percent must be a number from 0 to 100, got {traffic_percent!r}")
    if not 0 <= traffic_percent <= 100:
        raise ValueError(f"traffic_percent must be from 0 to 100, got {traffic_percent}")
    return float(traffic_percent)


def _insert_ignoring_conflict(connection: Connection, table: Table, values: dict[str, Any], key: list[str]) -> Any:
    dialects = {"postgresql": postgresql, "sqlite": sqlite}
    if connection.dialect.name not in dialects:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")
    return dialects[connection.dialect.name].insert(table).values(**values).on_conflict_do_nothing(index_elements=key)


def _event(row: Row[Any]) -> LabelEvent:
    return LabelEvent(**{field: getattr(row, field) for field in LabelEvent.__dataclass_fields__})


def _traffic_text(traffic: float | None) -> str:
    return "" if traffic is None else f" at {traffic:g} %"


class Registry:
    """The registry on one store. Share one instance per process (``get_registry``) so label
    moves made here invalidate the resolve cache at once."""

    def __init__(self, engine: Engine, *, cache_ttl: float = DEFAULT_CACHE_TTL_SECONDS) -> None:
        if cache_ttl < 0:
            raise ValueError(f"cache_ttl must be ≥ 0 seconds, got {cache_ttl}")
        self.engine = engine
        self.cache_ttl = cache_ttl
        self._contents: dict[tuple[str, str], _Content] = {}
        self._routing: dict[tuple[str, str], _Routing] = {}
        self._refresh_lock = threading.Lock()
        self._outage = False

    @contextmanager
    def _transaction(self, connection: Connection | None) -> Iterator[Connection]:
        """The caller's connection (its transaction, e.g. a rollout step) or a new transaction."""
        if connection is not None:
            yield connection
            return
        with self.engine.begin() as own:
            yield own

    # -- versions ---------------------------------------------------------------------------

    def register(self, prompt: PromptVersion, *, actor: str, connection: Connection | None = None) -> RegisteredVersion:
        """Record a version once; again with the same content is a no-op, with other content an error."""
        _require_text(actor, "actor")
        source_path = None if prompt.path is None else str(prompt.path)
        now = _now()
        with self._transaction(connection) as conn:
            inserted = (
                conn.execute(
                    _insert_ignoring_conflict(
                        conn,
                        VERSIONS,
                        {
                            "name": prompt.name,
                            "version": prompt.version,
                            "model": prompt.model,
                            "content_hash": prompt.content_hash,
                            "system": prompt.system,
                            "parameters": prompt.parameters.model_dump(exclude_none=True),
                            "source_path": source_path,
                            "registered_at": now,
                            "registered_by": actor,
                        },
                        ["name", "version"],
                    ).returning(VERSIONS.c.id)
                ).first()
                is not None
            )
            row = conn.execute(select(VERSIONS).where(VERSIONS.c.name == prompt.name, VERSIONS.c.version == prompt.version)).one()
            if row.content_hash != prompt.content_hash:
                raise ImmutableVersionError(
                    f"{source_path or 'prompt'}: {prompt.name} {prompt.version} was released with content sha256 "
                    f"{row.content_hash} (registered {row.registered_at:%Y-%m-%d %H:%M} UTC by {row.registered_by}"
                    f"{f' from {row.source_path}' if row.source_path else ''}), but this file's content is sha256 "
                    f"{prompt.content_hash}. A released version is immutable: save the change as a new version."
                )
            if inserted:
                self._record(
                    conn,
                    time=now,
                    actor=actor,
                    action=REGISTER,
                    name=prompt.name,
                    environment=None,
                    label=None,
                    from_version=None,
                    to_version=prompt.version,
                    from_traffic=None,
                    to_traffic=None,
                    label_revision=None,
                    reason=prompt.changelog or None,
                    flow_run_id=None,
                )
        return RegisteredVersion(
            id=row.id,
            name=row.name,
            version=row.version,
            model=row.model,
            content_hash=row.content_hash,
            registered_at=row.registered_at,
            registered_by=row.registered_by,
            source_path=row.source_path,
            newly_registered=inserted,
        )

    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every registered version of ``name``, oldest registration first."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(VERSIONS).where(VERSIONS.c.name == name).order_by(VERSIONS.c.id)).all()
        return [
            RegisteredVersion(
                id=row.id,
                name=row.name,
                version=row.version,
                model=row.model,
                content_hash=row.content_hash,
                registered_at=row.registered_at,
                registered_by=row.registered_by,
                source_path=row.source_path,
                newly_registered=False,
            )
            for row in rows
        ]

    # -- labels -----------------------------------------------------------------------------

    def set_label(
        self,
        name: str,
        label: str,
        version: str,
        *,
        environment: str = PRODUCTION,
        traffic_percent: float | None = None,
        actor: str,
        reason: str,
        flow_run_id: str | None = None,
        expected_revision: int | None = None,
        action: str | None = None,
        connection: Connection | None = None,
    ) -> LabelEvent | None:
        """Point ``label`` at ``version`` (a canary with its traffic share) and audit it.

        ``expected_revision`` (from ``labels()``; 0 = never set) makes the move conditional.
        ``action`` defaults to ``promote`` (version changes) or ``set_traffic``. Returns the
        event, or None when the label already held exactly this version and traffic.
        """
        _check_label(label)
        traffic = _check_traffic(label, traffic_percent)
        with self._transaction(connection) as conn:
            exists = conn.execute(select(VERSIONS.c.id).where(VERSIONS.c.name == name, VERSIONS.c.version == version)).first()
            if exists is None:
                raise UnknownVersionError(
                    f"{name} {version} is not registered; register its file first (llmops prompts register)"
                )
            event = self._move(
                conn,
                name,
                environment,
                label,
                version,
                traffic,
                actor=actor,
                reason=reason,
                flow_run_id=flow_run_id,
                expected_revision=expected_revision,
                action=action,
            )
        self._routing.pop((name, environment), None)  # after commit, or at once in the caller's transaction
        return event

    def clear_label(
        self,
        name: str,
        label: str,
        *,
        environment: str = PRODUCTION,
        actor: str,
        reason: str,
        flow_run_id: str | None = None,
        expected_revision: int | None = None,
        action: str = "clear",
        connection: Connection | None = None,
    ) -> LabelEvent | None:
        """Unset ``label`` (e.g. end a canary; ``action="rollback"`` when a gate failed)."""
        _check_label(label)
        with self._transaction(connection) as conn:
            event = self._move(
                conn,
                name,
                environment,
                label,
                None,
                None,
                actor=actor,
                reason=reason,
                flow_run_id=flow_run_id,
                expected_revision=expected_revision,
                action=action,
            )
        self._routing.pop((name, environment), None)
        return event

    def _move(
        self,
        conn: Connection,
        name: str,
        environment: str,
        label: str,
        version: str | None,
        traffic: float | None,
        *,
        actor: str,
        reason: str,
        flow_run_id: str | None,
        expected_revision: int | None,
        action: str | None,
    ) -> LabelEvent | None:
        _require_text(actor, "actor")
        _require_text(reason, "reason")
        _require_text(environment, "environment")
        if action is not None and action not in LABEL_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(LABEL_ACTIONS)}, got {action!r}")
        if expected_revision is not None and expected_revision < 0:
            raise ValueError(f"expected_revision must be ≥ 0 (0: the label was never set), got {expected_revision}")
        current = self._lock_label(conn, name, environment, label)
        if current.version == version and current.traffic_percent == traffic:
            return None
        if expected_revision is not None and current.revision != expected_revision:
            raise self._conflict(conn, name, environment, label, expected_revision)
        now = _now()
        moved = conn.execute(
            update(LABEL_ROWS)
            .where(LABEL_ROWS.c.id == current.id, LABEL_ROWS.c.revision == current.revision)
            .values(version=version, traffic_percent=traffic, revision=current.revision + 1, updated_at=now)
        ).rowcount
        if moved != 1:
            raise self._conflict(conn, name, environment, label, current.revision)
        if action is None:
            action = "promote" if version != current.version else "set_traffic"
        return self._record(
            conn,
            time=now,
            actor=actor,
            action=action,
            name=name,
            environment=environment,
            label=label,
            from_version=current.version,
            to_version=version,
            from_traffic=current.traffic_percent,
            to_traffic=traffic,
            label_revision=current.revision + 1,
            reason=reason,
            flow_run_id=flow_run_id,
        )

    def _lock_label(self, conn: Connection, name: str, environment: str, label: str) -> Row[Any]:
        """The label's row, locked until commit; created unset (revision 0) on first use."""
        locked = (
            select(LABEL_ROWS)
            .where(LABEL_ROWS.c.name == name, LABEL_ROWS.c.environment == environment, LABEL_ROWS.c.label == label)
            .with_for_update()
        )
        row = conn.execute(locked).one_or_none()
        if row is None:
            conn.execute(
                _insert_ignoring_conflict(
                    conn,
                    LABEL_ROWS,
                    {
                        "name": name,
                        "environment": environment,
                        "label": label,
                        "version": None,
                        "traffic_percent": None,
                        "revision": 0,
                        "updated_at": _now(),
                    },
                    ["name", "environment", "label"],
                )
            )
            row = conn.execute(locked).one()
        return row

    def _conflict(self, conn: Connection, name: str, environment: str, label: str, expected: int) -> ConcurrentUpdateError:
        """The error for a lost race, saying what the label is now and who moved it last."""
        current = conn.execute(
            select(LABEL_ROWS).where(
                LABEL_ROWS.c.name == name, LABEL_ROWS.c.environment == environment, LABEL_ROWS.c.label == label
            )
        ).one()
        last = conn.execute(
            select(EVENTS)
            .where(EVENTS.c.name == name, EVENTS.c.environment == environment, EVENTS.c.label == label)
            .order_by(EVENTS.c.id.desc())
            .limit(1)
        ).first()
        by = f" by {last.actor} ({last.action}, {last.time:%Y-%m-%d %H:%M:%S} UTC)" if last else ""
        return ConcurrentUpdateError(
            f"{name} {label} in {environment} was changed by someone else: you expected revision {expected}, "
            f"it is at revision {current.revision} ({current.version or 'unset'}{_traffic_text(current.traffic_percent)}"
            f"{by}). Nothing was changed; read the labels again and retry if your change still applies."
        )

    def _record(self, conn: Connection, **values: Any) -> LabelEvent:
        event_id = conn.execute(EVENTS.insert().values(**values).returning(EVENTS.c.id)).scalar_one()
        return LabelEvent(id=event_id, **values)

    def labels(self, name: str, environment: str = PRODUCTION) -> LabelState:
        """The labels as stored now (not cached): what a writer reads before a conditional move."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(LABEL_ROWS).where(LABEL_ROWS.c.name == name, LABEL_ROWS.c.environment == environment)
            ).all()
        return LabelState(
            name=name,
            environment=environment,
            slots={
                row.label: LabelSlot(row.label, row.version, row.traffic_percent, row.revision, row.updated_at) for row in rows
            },
        )

    def history(self, name: str, environment: str | None = None) -> list[LabelEvent]:
        """The audit log of ``name``, oldest first; registrations appear in every environment's history."""
        query = select(EVENTS).where(EVENTS.c.name == name).order_by(EVENTS.c.id)
        if environment is not None:
            query = query.where((EVENTS.c.environment == environment) | EVENTS.c.environment.is_(None))
        with self.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query)]

    def previous_production(self, name: str, environment: str = PRODUCTION) -> str | None:
        """The version to roll back to: the latest former production version that was not itself
        rolled back from later on (so rolling back twice does not bring the bad version back)."""
        events = [event for event in self.history(name, environment) if event.label == PRODUCTION and event.action != REGISTER]
        current = self.labels(name, environment).production
        rolled_back_from: set[str] = set()
        for event in reversed(events):
            if event.action == "rollback" and event.from_version:
                rolled_back_from.add(event.from_version)
            elif event.from_version and event.from_version != current and event.from_version not in rolled_back_from:
                return event.from_version
        return None

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, prompt_name: str, user_id: str, environment: str = PRODUCTION) -> ResolvedPrompt:
        """The version this user gets: the canary if their bucket is under its share, else production."""
        routing = self._routing.get((prompt_name, environment))
        if routing is None or time.monotonic() - routing.checked_at >= self.cache_ttl:
            routing = self._refresh(prompt_name, environment, routing)
        user_bucket = bucket(prompt_name, user_id)
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
        """Re-read the labels; another thread already refreshing → serve what we have meanwhile."""
        if not self._refresh_lock.acquire(blocking=previous is None):
            return previous  # type: ignore[return-value]  # non-blocking only when previous exists
        try:
            latest = self._routing.get((name, environment))
            if latest is not None and latest is not previous and time.monotonic() - latest.checked_at < self.cache_ttl:
                return latest
            try:
                routing = self._read_routing(name, environment, previous)
            except OperationalError as exc:
                routing = self._during_outage(name, environment, previous, exc)
            else:
                if self._outage:
                    self._outage = False
                    logger.warning("prompt registry store reachable again; serving current label state")
            self._routing[(name, environment)] = routing
            return routing
        finally:
            self._refresh_lock.release()

    def _during_outage(self, name: str, environment: str, previous: _Routing | None, exc: OperationalError) -> _Routing:
        reason = type(exc.orig or exc).__name__
        store = self.engine.url.render_as_string(hide_password=True)
        if previous is None:
            raise RegistryUnavailable(
                f"prompt registry store {store} is unreachable ({reason}) and this process has not resolved "
                f"{name!r} in {environment!r} before, so there is no last known version to serve"
            ) from exc
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
    """
    engine = get_engine(url)
    key = engine.url.render_as_string(hide_password=False)
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None or registry.engine is not engine:
            registry = _registries[key] = Registry(engine)
    return registry


def resolve(prompt_name: str, user_id: str, environment: str = PRODUCTION) -> ResolvedPrompt:
    """The prompt version to serve this user, from the configured store (see ``Registry.resolve``)."""
    try:
        registry = get_registry()
    except OperationalError as exc:
        raise RegistryUnavailable(
            f"prompt registry store is unreachable ({type(exc.orig or exc).__name__}) at first use, "
            "so there is no last known version to serve"
        ) from exc
    return registry.resolve(prompt_name, user_id, environment)
