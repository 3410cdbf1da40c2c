"""The registry's record: immutable prompt versions, movable labels with traffic, and their audit log.

Every label move locks its row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers), checks the caller's ``expected_revision``, updates
with a compare-and-set on ``revision`` and appends the audit event, all in one transaction.
Two promotions racing on the same label: the first commits, the second finds a revision it
did not expect and gets ``ConcurrentUpdateError``. Without ``expected_revision`` writers
queue and each event's ``from`` is exactly the previous event's ``to``. A caller may pass its
own connection, so a rollout step commits its row and its label moves together.

``LabelStore`` knows nothing of serving: ``llmops.release.registry.Registry`` adds the cached
resolution an application calls on every request, and is what callers use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row, Table, select, update

from llmops.store.engine import dialect_insert
from llmops.store.registry_tables import LABELS
from llmops.store.tables import LABEL_EVENTS as EVENTS
from llmops.store.tables import PROMPT_LABELS as LABEL_ROWS
from llmops.store.tables import PROMPT_VERSIONS as VERSIONS

if TYPE_CHECKING:
    from llmops.prompts import PromptVersion

PRODUCTION, CANARY, STAGING = LABELS
REGISTER = "register"
"""The audit action of a registration."""
LABEL_ACTIONS = ("promote", "set_traffic", "rollback", "clear")
"""The audit actions of label moves."""
NOTE_ACTIONS = ("hold",)
"""The audit actions of decisions that move no label (``LabelStore.note``)."""


class RegistryError(Exception):
    """Base of the registry's errors."""


class ImmutableVersionError(RegistryError):
    """A released version's content changed: give the change a new version number."""


class UnknownVersionError(RegistryError, LookupError):
    """A label was pointed at a version that was never registered."""


class ConcurrentUpdateError(RegistryError):
    """Another writer moved the label between the caller's read and its write."""


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One registered version; ``newly_registered`` is True only for the call that registered it.

    Example:
        ```python
        registered = Registry(engine).register(get_prompt("support-chat", "1.3.0"), actor="alice")
        registered.content_hash, registered.newly_registered
        ```
    """

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
    """One label's state; ``version`` is None when the label is unset. ``revision`` 0 = never set.

    Example:
        >>> LabelSlot("canary", "1.3.0", 25.0, 4, None).traffic_percent
        25.0
    """

    label: str
    version: str | None
    traffic_percent: float | None
    revision: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class LabelState:
    """Every label of a prompt in one environment, with the revisions a writer must expect.

    Example:
        >>> state = LabelState("support-chat", "production", {"production": LabelSlot("production", "1.2.0", None, 3, None)})
        >>> state.production, state.canary, state.slot("canary").revision
        ('1.2.0', None, 0)
    """

    name: str
    environment: str
    slots: dict[str, LabelSlot]

    def slot(self, label: str) -> LabelSlot:
        """The label's state; an unset slot at revision 0 for a label never set."""
        return self.slots.get(label) or LabelSlot(label, None, None, 0, None)

    @property
    def production(self) -> str | None:
        """The production version, or None."""
        return self.slot(PRODUCTION).version

    @property
    def canary(self) -> str | None:
        """The canary version, or None."""
        return self.slot(CANARY).version

    @property
    def canary_traffic_percent(self) -> float | None:
        """The canary's share of requests, or None."""
        return self.slot(CANARY).traffic_percent

    @property
    def staging(self) -> str | None:
        """The staging version (a blue-green rollout's fallback), or None."""
        return self.slot(STAGING).version


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """One audit entry; ``environment``/``label`` are None for a registration.

    Example:
        ```python
        for event in Registry(engine).history("support-chat", "production"):
            print(event.time, event.actor, event.action, event.from_version, "→", event.to_version)
        ```
    """

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
    return dialect_insert(connection, table).values(**values).on_conflict_do_nothing(index_elements=key)


def _event(row: Row[Any]) -> LabelEvent:
    return LabelEvent(**{field: getattr(row, field) for field in LabelEvent.__dataclass_fields__})


def _registered(row: Row[Any], newly_registered: bool) -> RegisteredVersion:
    return RegisteredVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        model=row.model,
        content_hash=row.content_hash,
        registered_at=row.registered_at,
        registered_by=row.registered_by,
        source_path=row.source_path,
        newly_registered=newly_registered,
    )


def _traffic_text(traffic: float | None) -> str:
    return "" if traffic is None else f" at {traffic:g} %"


class LabelStore:
    """Versions, labels and their audit log on one store; see the module docstring for the guarantees.

    Use ``Registry`` (which adds resolution), not this class directly.

    Args:
        engine: The store.

    Example:
        ```python
        registry = Registry(engine)  # a LabelStore, plus resolve()
        registry.set_label("support-chat", "production", "1.3.0", actor="alice", reason="release")
        ```
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _transaction(self, connection: Connection | None) -> Iterator[Connection]:
        """The caller's connection (its transaction, e.g. a rollout step) or a new transaction."""
        if connection is not None:
            yield connection
            return
        with self.engine.begin() as own:
            yield own

    def _label_moved(self, name: str, environment: str) -> None:
        """Called after every label move of ``name`` in ``environment`` (a cache to invalidate)."""

    # -- versions ---------------------------------------------------------------------------

    def register(self, prompt: PromptVersion, *, actor: str, connection: Connection | None = None) -> RegisteredVersion:
        """Record a version once; again with the same content is a no-op, with other content an error.

        Args:
            prompt: The version, read from its file.
            actor: Who registers it, for the audit log.
            connection: The caller's transaction; a new one when None.

        Returns:
            The version as registered, ``newly_registered`` when this call recorded it.

        Raises:
            ImmutableVersionError: The version was released with other content.

        Example:
            ```python
            Registry(engine).register(get_prompt("support-chat", "1.3.0"), actor="alice").newly_registered  # True
            ```
        """
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
        return _registered(row, inserted)

    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every registered version of ``name``, oldest registration first.

        Args:
            name: The prompt.

        Returns:
            Its versions; empty for a prompt never registered.

        Example:
            ```python
            [known.version for known in Registry(engine).versions("support-chat")]  # ["1.0.0", "1.1.0"]
            ```
        """
        with self.engine.connect() as connection:
            rows = connection.execute(select(VERSIONS).where(VERSIONS.c.name == name).order_by(VERSIONS.c.id)).all()
        return [_registered(row, False) for row in rows]

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

        Args:
            name: The prompt.
            label: ``production``, ``canary`` or ``staging``.
            version: A registered version.
            environment: The registry environment.
            traffic_percent: The canary's share of requests, 0–100; None for other labels.
            actor: Who moves it, for the audit log.
            reason: Why, for the audit log.
            flow_run_id: The Prefect flow run, for the audit log.
            expected_revision: Move only if the label is still at this revision (from
                ``labels()``; 0 = never set).
            action: The audit action; ``promote`` (the version changes) or ``set_traffic`` by default.
            connection: The caller's transaction; a new one when None.

        Returns:
            The audit event, or None when the label already held exactly this version and traffic.

        Raises:
            UnknownVersionError: The version is not registered.
            ConcurrentUpdateError: The label is not at ``expected_revision`` any more.
            ValueError: An unknown label or action, a traffic share where none applies or out of
                range, or an empty actor, reason or environment.

        Example:
            ```python
            registry = Registry(engine)
            revision = registry.labels("support-chat").slot("canary").revision
            registry.set_label("support-chat", "canary", "1.3.0", traffic_percent=5, actor="alice",
                               reason="try shorter answers", expected_revision=revision)
            ```
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
        self._label_moved(name, environment)  # after commit, or at once in the caller's transaction
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
        """Unset ``label`` (e.g. end a canary; ``action="rollback"`` when a gate failed).

        Args:
            name: The prompt.
            label: ``production``, ``canary`` or ``staging``.
            environment: The registry environment.
            actor: Who clears it, for the audit log.
            reason: Why, for the audit log.
            flow_run_id: The Prefect flow run, for the audit log.
            expected_revision: Clear only if the label is still at this revision.
            action: The audit action.
            connection: The caller's transaction; a new one when None.

        Returns:
            The audit event, or None when the label was unset already.

        Raises:
            ConcurrentUpdateError: The label is not at ``expected_revision`` any more.
            ValueError: An unknown label or action, or an empty actor, reason or environment.

        Example:
            ```python
            Registry(engine).clear_label("support-chat", "canary", actor="alice", reason="canary ended")
            ```
        """
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
        self._label_moved(name, environment)
        return event

    def note(
        self,
        name: str,
        action: str,
        *,
        environment: str = PRODUCTION,
        actor: str,
        reason: str,
        flow_run_id: str | None = None,
        connection: Connection | None = None,
    ) -> LabelEvent:
        """Append a decision that moves no label to the audit log (e.g. a rollout held in review).

        Args:
            name: The prompt.
            action: The audit action, one of ``NOTE_ACTIONS``.
            environment: The registry environment.
            actor: Who decided, for the audit log.
            reason: Why, for the audit log.
            flow_run_id: The Prefect flow run, for the audit log.
            connection: The caller's transaction; a new one when None.

        Returns:
            The audit event.

        Raises:
            ValueError: An unknown action, or an empty actor, reason or environment.

        Example:
            ```python
            Registry(engine).note("support-chat", "hold", actor="alice", reason="wait for legal")
            ```
        """
        if action not in NOTE_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(NOTE_ACTIONS)}, got {action!r}")
        with self._transaction(connection) as conn:
            return self._record(
                conn,
                time=_now(),
                actor=_require_text(actor, "actor"),
                action=action,
                name=name,
                environment=_require_text(environment, "environment"),
                label=None,
                from_version=None,
                to_version=None,
                from_traffic=None,
                to_traffic=None,
                label_revision=None,
                reason=_require_text(reason, "reason"),
                flow_run_id=flow_run_id,
            )

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

    # -- reads ------------------------------------------------------------------------------

    def labels(self, name: str, environment: str = PRODUCTION) -> LabelState:
        """The labels as stored now (not cached): what a writer reads before a conditional move.

        Args:
            name: The prompt.
            environment: The registry environment.

        Returns:
            Every label's version, traffic share and revision.

        Example:
            ```python
            state = Registry(engine).labels("support-chat")
            state.production, state.canary, state.canary_traffic_percent  # ("1.2.0", "1.3.0", 5.0)
            ```
        """
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
        """The audit log of ``name``, oldest first; registrations appear in every environment's history.

        Args:
            name: The prompt.
            environment: One environment's moves (and the registrations); every environment's when None.

        Returns:
            The audit events.

        Example:
            ```python
            [event.action for event in Registry(engine).history("support-chat")]  # ["register", "promote", ...]
            ```
        """
        query = select(EVENTS).where(EVENTS.c.name == name).order_by(EVENTS.c.id)
        if environment is not None:
            query = query.where((EVENTS.c.environment == environment) | EVENTS.c.environment.is_(None))
        with self.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query)]

    def previous_production(self, name: str, environment: str = PRODUCTION) -> str | None:
        """The version to roll back to: the latest former production version not itself rolled back from.

        Skipping versions rolled back from later on means rolling back twice does not bring the
        bad version back.

        Args:
            name: The prompt.
            environment: The registry environment.

        Returns:
            The version, or None when production never served another one.

        Example:
            ```python
            Registry(engine).previous_production("support-chat")  # "1.2.0"
            ```
        """
        events = [event for event in self.history(name, environment) if event.label == PRODUCTION and event.action != REGISTER]
        current = self.labels(name, environment).production
        rolled_back_from: set[str] = set()
        for event in reversed(events):
            if event.action == "rollback" and event.from_version:
                rolled_back_from.add(event.from_version)
            elif event.from_version and event.from_version != current and event.from_version not in rolled_back_from:
                return event.from_version
        return None
