"""The prompt registry on SQLite and PostgreSQL: immutable versions, audited label moves, racing
promotions with real concurrency, and cached, sticky resolution that survives a store outage."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from llmops.prompts import PromptVersion
from llmops.release import registry as registry_module
from llmops.release.registry import (
    ConcurrentUpdateError,
    ImmutableVersionError,
    PromptNotServed,
    Registry,
    RegistryUnavailable,
    UnknownVersionError,
    bucket,
    canary_threshold,
)
from llmops.store.models import Base
from llmops.store.registry_tables import LABEL_EVENTS, PROMPT_LABELS, PROMPT_VERSIONS
from prefect_llmops.cli.registry import register, register_prompts

REGISTRY_TABLES = ("label_events", "prompt_labels", "prompt_versions")
MODEL = "claude-3-5-sonnet-20241022"


def prompt(version: str = "1.0.0", system: str | None = None, name: str = "support", **overrides: Any) -> PromptVersion:
    return PromptVersion(
        name=name,
        version=version,
        model=overrides.pop("model", MODEL),
        created=date(2025, 11, 15),
        author="team-ai",
        changelog=overrides.pop("changelog", f"release {version}"),
        system=system or f"You are Acme's support assistant (v{version}).",
        parameters={"temperature": 0.3, "max_tokens": 512},
        path=Path(f"prompts/{name}/{version}.yaml"),
        **overrides,
    )


class FakeClock:
    """Stands in for the ``time`` module inside llmops.release.registry, so TTLs pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(registry_module, "time", fake)
    return fake


@pytest.fixture
def registry(store: Engine) -> Registry:
    """A registry on an empty store (PostgreSQL's database is shared by the session)."""
    with store.begin() as connection:
        for table in REGISTRY_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    return Registry(store)


def released(registry: Registry, *versions: str) -> None:
    for version in versions:
        registry.register(prompt(version), actor="ci")


def promote(registry: Registry, version: str, **options: Any) -> Any:
    options.setdefault("actor", "alice")
    options.setdefault("reason", f"ship {version}")
    return registry.set_label("support", options.pop("label", "production"), version, **options)


def race(count: int, attempt: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``attempt(i)`` in ``count`` threads released together; each thread uses its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcome = attempt(i)
        except BaseException as exc:  # noqa: BLE001 — collected and asserted on below
            with lock:
                failures.append(exc)
        else:
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, failures


# -- schema -----------------------------------------------------------------------------------


def test_migration_creates_exactly_the_models_tables(store: Engine) -> None:
    ours = {PROMPT_VERSIONS.name, PROMPT_LABELS.name, LABEL_EVENTS.name}

    def is_ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return (name if type_ == "table" else obj.table.name) in ours

    with store.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": is_ours, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


# -- versions ---------------------------------------------------------------------------------


def test_registering_the_same_content_again_is_a_no_op(registry: Registry) -> None:
    first = registry.register(prompt("1.0.0"), actor="ci")
    again = registry.register(prompt("1.0.0"), actor="someone-else")
    assert first.newly_registered and not again.newly_registered
    assert again.id == first.id and again.registered_by == "ci"
    assert [v.version for v in registry.versions("support")] == ["1.0.0"]
    events = registry.history("support")
    assert [(e.action, e.actor, e.to_version, e.reason) for e in events] == [("register", "ci", "1.0.0", "release 1.0.0")]


def test_a_released_version_cannot_change(registry: Registry) -> None:
    original = registry.register(prompt("1.0.0"), actor="ci")
    edited = prompt("1.0.0", system="You are Acme's support assistant. Always offer a refund.")
    with pytest.raises(ImmutableVersionError) as error:
        registry.register(edited, actor="bob")
    message = str(error.value)
    assert original.content_hash in message and edited.content_hash in message
    assert "prompts/support/1.0.0.yaml" in message
    assert "support 1.0.0" in message and "new version" in message
    stored = registry.versions("support")
    assert [(v.content_hash, v.registered_by) for v in stored] == [(original.content_hash, "ci")]
    assert len(registry.history("support")) == 1


# -- labels and the audit log -----------------------------------------------------------------


def test_every_label_move_is_an_audit_event(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=5, flow_run_id="run-1", actor="promote-flow")
    promote(registry, "2.0.0", label="canary", traffic_percent=25, reason="step 2", flow_run_id="run-1")
    registry.set_label("support", "staging", "2.0.0", environment="eu", actor="carol", reason="try in eu")

    state = registry.labels("support")
    assert (state.production, state.canary, state.canary_traffic_percent, state.staging) == ("1.0.0", "2.0.0", 25.0, None)
    assert state.slot("canary").revision == 2 and state.slot("production").revision == 1
    assert registry.labels("support", "eu").staging == "2.0.0"

    moves = [
        (e.action, e.environment, e.label, e.from_version, e.to_version, e.from_traffic, e.to_traffic, e.flow_run_id)
        for e in registry.history("support", "production")
        if e.action != "register"
    ]
    assert moves == [
        ("promote", "production", "production", None, "1.0.0", None, None, None),
        ("promote", "production", "canary", None, "2.0.0", None, 5.0, "run-1"),
        ("set_traffic", "production", "canary", "2.0.0", "2.0.0", 5.0, 25.0, "run-1"),
    ]
    assert [e.actor for e in registry.history("support")][-2:] == ["alice", "carol"]


def test_setting_a_label_to_what_it_already_is_records_nothing(registry: Registry) -> None:
    released(registry, "1.0.0")
    assert promote(registry, "1.0.0") is not None
    assert promote(registry, "1.0.0", expected_revision=0) is None
    assert registry.labels("support").slot("production").revision == 1
    assert sum(e.action == "promote" for e in registry.history("support")) == 1


def test_clearing_a_label_keeps_its_revision_counting(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=10)
    event = registry.clear_label("support", "canary", actor="gate", reason="error rate up", action="rollback")
    assert (event.action, event.from_version, event.to_version, event.from_traffic) == ("rollback", "2.0.0", None, 10.0)
    state = registry.labels("support")
    assert state.canary is None and state.slot("canary").revision == 2
    with pytest.raises(ConcurrentUpdateError):  # a writer that read revision 1 before the clear
        promote(registry, "2.0.0", label="canary", traffic_percent=5, expected_revision=1)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"version": "9.9.9"}, UnknownVersionError, r"support 9\.9\.9 is not registered"),
        ({"label": "prod"}, ValueError, r"label must be one of production, canary, staging, got 'prod'"),
        ({"label": "canary"}, ValueError, r"a canary needs traffic_percent"),
        ({"label": "canary", "traffic_percent": 150}, ValueError, r"from 0 to 100, got 150"),
        ({"label": "canary", "traffic_percent": float("nan")}, ValueError, r"must be a number from 0 to 100"),
        ({"traffic_percent": 10}, ValueError, r"traffic_percent applies to the canary only"),
        ({"reason": " "}, ValueError, r"reason must be a non-empty string"),
        ({"actor": ""}, ValueError, r"actor must be a non-empty string"),
        ({"action": "yolo"}, ValueError, r"action must be one of promote, set_traffic, rollback, clear"),
        ({"expected_revision": -1}, ValueError, r"expected_revision must be ≥ 0"),
    ],
)
def test_bad_label_moves_are_refused_with_a_specific_error(
    registry: Registry, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    released(registry, "1.0.0")
    options = dict(options)  # the parameters are shared by both backends' runs
    with pytest.raises(error, match=match):
        promote(registry, options.pop("version", "1.0.0"), **options)
    assert registry.labels("support").production is None
    assert [e.action for e in registry.history("support")] == ["register"]


def test_a_stale_expected_revision_changes_nothing_and_says_who_moved_it(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0", "3.0.0")
    promote(registry, "1.0.0")
    seen = registry.labels("support").slot("production").revision
    promote(registry, "2.0.0", actor="bob", expected_revision=seen)
    with pytest.raises(ConcurrentUpdateError) as error:
        promote(registry, "3.0.0", expected_revision=seen)
    assert "expected revision 1" in str(error.value) and "revision 2" in str(error.value)
    assert "2.0.0" in str(error.value) and "by bob" in str(error.value)
    assert registry.labels("support").production == "2.0.0"
    assert [e.to_version for e in registry.history("support") if e.action == "promote"] == ["1.0.0", "2.0.0"]


def test_a_label_move_and_its_audit_event_commit_or_roll_back_together(registry: Registry, store: Engine) -> None:
    released(registry, "1.0.0")
    with pytest.raises(RuntimeError), store.begin() as connection:
        promote(registry, "1.0.0", connection=connection)
        raise RuntimeError("the rollout's own write failed")
    assert registry.labels("support").production is None
    assert [e.action for e in registry.history("support")] == ["register"]


def test_previous_production_comes_from_the_audit_log_and_skips_rolled_back_versions(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0", "3.0.0")
    assert registry.previous_production("support") is None
    promote(registry, "1.0.0")
    promote(registry, "2.0.0")
    assert registry.previous_production("support") == "1.0.0"
    promote(registry, "3.0.0")
    assert registry.previous_production("support") == "2.0.0"
    promote(registry, "2.0.0", action="rollback", reason="3.0.0 regressed")
    assert registry.previous_production("support") == "1.0.0"  # not 3.0.0, which was rolled back from
    assert registry.previous_production("support", "eu") is None


# -- racing promotions ------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["first-promotion", "label-already-set"])
def test_racing_promotions_one_wins_the_rest_are_told(registry: Registry, existing: bool) -> None:
    contenders = [f"2.0.{i}" for i in range(6)]
    released(registry, "1.0.0", *contenders)
    if existing:
        promote(registry, "1.0.0")
    seen = registry.labels("support").slot("production").revision
    before = len(registry.history("support"))

    results, failures = race(len(contenders), lambda i: promote(registry, contenders[i], actor=f"op-{i}", expected_revision=seen))

    assert len(results) == 1, failures
    assert len(failures) == len(contenders) - 1
    assert all(isinstance(failure, ConcurrentUpdateError) for failure in failures), failures
    winner = results[0]
    new_events = registry.history("support")[before:]
    assert [(e.actor, e.to_version) for e in new_events] == [(winner.actor, winner.to_version)]
    state = registry.labels("support")
    assert state.production == winner.to_version
    assert state.slot("production").revision == seen + 1


def test_unconditional_promotions_queue_and_the_audit_log_stays_a_chain(registry: Registry) -> None:
    contenders = [f"2.0.{i}" for i in range(6)]
    released(registry, "1.0.0", *contenders)
    promote(registry, "1.0.0")

    results, failures = race(len(contenders), lambda i: promote(registry, contenders[i], actor=f"op-{i}"))

    assert failures == [] and len(results) == len(contenders)
    moves = [e for e in registry.history("support") if e.action == "promote"]
    assert sorted(e.to_version for e in moves[1:]) == contenders
    for earlier, later in zip(moves, moves[1:], strict=False):
        assert later.from_version == earlier.to_version
        assert later.label_revision == earlier.label_revision + 1
    assert registry.labels("support").production == moves[-1].to_version


# -- resolution -------------------------------------------------------------------------------


def users_in(canary: bool, threshold: int, count: int = 3) -> list[str]:
    """User ids whose bucket is (or is not) under ``threshold``."""
    chosen = (f"user-{n}" for n in range(100_000) if (bucket("support", f"user-{n}") < threshold) == canary)
    return [next(chosen) for _ in range(count)]


def test_resolve_serves_production_and_the_canary_by_sticky_bucket(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=10)
    threshold = canary_threshold(10)
    for user in users_in(True, threshold):
        served = registry.resolve("support", user)
        assert (served.version, served.label) == ("2.0.0", "canary")
        assert served.bucket == bucket("support", user) < threshold
    for user in users_in(False, threshold):
        served = registry.resolve("support", user)
        assert (served.version, served.label, served.stale) == ("1.0.0", "production", False)
        assert served.system == "You are Acme's support assistant (v1.0.0)."
        assert (served.model, served.parameters) == (MODEL, {"temperature": 0.3, "max_tokens": 512})
        assert served.content_hash == prompt("1.0.0").content_hash and served.version_id > 0


def test_a_ten_percent_canary_serves_ten_percent_of_ten_thousand_users(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=10)
    served = Counter(registry.resolve("support", f"customer-{n}").label for n in range(10_000))
    assert 900 <= served["canary"] <= 1100, served


def test_a_label_moved_in_this_process_is_served_at_once(registry: Registry, clock: FakeClock) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    assert registry.resolve("support", "u1").version == "1.0.0"
    promote(registry, "2.0.0")
    assert registry.resolve("support", "u1").version == "2.0.0"


def test_a_label_moved_by_another_process_is_served_after_the_ttl(registry: Registry, store: Engine, clock: FakeClock) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    other_process = Registry(store)
    assert registry.resolve("support", "u1").version == "1.0.0"
    promote(other_process, "2.0.0")
    clock.now += registry.cache_ttl - 0.001
    assert registry.resolve("support", "u1").version == "1.0.0"  # cached: no store read inside the TTL
    clock.now += 0.002
    assert registry.resolve("support", "u1").version == "2.0.0"


def test_a_store_outage_serves_the_last_known_version_and_warns_once(
    registry: Registry, store: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    released(registry, "1.0.0")
    promote(registry, "1.0.0")
    assert registry.resolve("support", "u1").stale is False
    unreachable = (
        create_engine("postgresql+psycopg://llmops:s3cret-pw@127.0.0.1:1/store", connect_args={"connect_timeout": 2})
        if store.dialect.name == "postgresql"
        else create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'llmops.db'}")
    )
    registry.engine = unreachable  # the store goes away under a running application
    with caplog.at_level(logging.WARNING, logger="llmops.release.registry"):
        for _ in range(3):
            clock.now += registry.cache_ttl + 1
            served = registry.resolve("support", "u2")
            assert (served.version, served.stale) == ("1.0.0", True)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "last known" in warnings[0]
    assert "s3cret-pw" not in warnings[0]
    with pytest.raises(RegistryUnavailable, match="no last known version"):
        registry.resolve("billing", "u1")

    registry.engine = store
    clock.now += registry.cache_ttl + 1
    assert registry.resolve("support", "u2").stale is False
    assert "reachable again" in caplog.records[-1].getMessage()


def test_a_prompt_without_production_is_not_served(registry: Registry) -> None:
    released(registry, "1.0.0")
    with pytest.raises(PromptNotServed, match=r"support has no production version in environment 'production'"):
        registry.resolve("support", "u1")


def test_module_level_resolve_uses_the_configured_store(registry: Registry) -> None:
    released(registry, "1.0.0")
    promote(registry, "1.0.0")
    assert registry_module.resolve("support", "u1").version == "1.0.0"


# -- command line -----------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    prompts_app = typer.Typer()
    register(app)
    register_prompts(prompts_app)
    app.add_typer(prompts_app, name="prompts")
    return app


def test_cli_resolve_prints_what_the_user_gets(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=10)
    user = users_in(True, canary_threshold(10), 1)[0]
    result = CliRunner().invoke(cli(), ["resolve", "support", "--user", user, "--json"])
    assert result.exit_code == 0, result.output
    served = orjson.loads(result.output)
    assert (served["version"], served["label"], served["model"]) == ("2.0.0", "canary", MODEL)
    assert served["bucket"] == bucket("support", user) and served["canary_traffic_percent"] == 10.0

    table = CliRunner().invoke(cli(), ["resolve", "support", "--user", user])
    assert table.exit_code == 0 and "2.0.0" in table.output and "canary" in table.output

    missing = CliRunner().invoke(cli(), ["resolve", "billing", "--user", user])
    assert missing.exit_code == 1 and "billing has no production version" in missing.output


def test_cli_history_prints_the_audit_log(registry: Registry) -> None:
    released(registry, "1.0.0", "2.0.0")
    promote(registry, "1.0.0")
    promote(registry, "2.0.0", label="canary", traffic_percent=5, flow_run_id="8c1f-run", reason="canary step 1")
    result = CliRunner().invoke(cli(), ["prompts", "history", "support", "--json"])
    assert result.exit_code == 0, result.output
    events = orjson.loads(result.output)
    assert [e["action"] for e in events] == ["register", "register", "promote", "promote"]
    assert events[-1]["flow_run_id"] == "8c1f-run" and events[-1]["to_traffic"] == 5.0

    table = CliRunner().invoke(cli(), ["prompts", "history", "support"])
    assert table.exit_code == 0
    for text_shown in ("alice", "canary step 1", "– → 2.0.0", "– → 5 %", "8c1f-run"):
        assert text_shown in table.output

    none = CliRunner().invoke(cli(), ["prompts", "history", "billing"])
    assert none.exit_code == 1 and "never registered" in none.output
