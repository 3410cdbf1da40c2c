"""A person's answer to a rollout awaiting approval or paused by labels moved by hand (approve,
reject, hold), on SQLite and PostgreSQL: each lands in the audit log with the approver and reason,
and an answer to a question that is no longer open (the rollout moved on since it was asked)
changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from llmops.release.registry import Registry
from llmops.release.rollouts import (
    Rollout,
    RolloutConflictError,
    RolloutError,
    advance_rollout,
    approve,
    awaits_decision,
    decide,
    get_rollout,
    start_rollout,
    what_answers_do,
)
from tests.store import test_rollouts as rollouts
from tests.store.test_rollouts import NAME, T0, events, healthy_step, labels, released, request

engine = rollouts.engine
prompts_dir = rollouts.prompts_dir


def awaiting(engine: Engine) -> Rollout:
    """A canary whose first step passed its gates and waits for approval."""
    released(engine)
    rollout_id = start_rollout(engine, request(require_approval=True), now=T0).rollout.id
    healthy_step(engine, rollout_id, T0)
    outcome = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))
    assert outcome.rollout.status == "awaiting_approval"
    return outcome.rollout


def test_approve_moves_to_the_next_step_with_the_approver_and_reason_in_the_audit_log(engine: Engine) -> None:
    rollout = awaiting(engine)

    result = decide(engine, rollout.id, "approve", actor="carol", reason="latency fine at 5 %", expected_revision=rollout.revision,
                    flow_run_id="run-1")  # fmt: skip

    assert (result.rollout.status, result.rollout.current_step) == ("active", 1) and labels(engine)[2] == 25.0
    last = events(engine)[-1]
    assert (last.actor, last.flow_run_id) == ("carol", "run-1") and "approved by carol: latency fine at 5 %" in (
        last.reason or ""
    )


def test_reject_rolls_back_to_the_baseline(engine: Engine) -> None:
    rollout = awaiting(engine)

    result = decide(engine, rollout.id, "reject", actor="dave", reason="tone is off", expected_revision=rollout.revision)

    assert result.rollout.status == "rolled_back" and labels(engine) == ("1.0.0", None, None, None)
    last = events(engine)[-1]
    assert (last.action, last.actor) == ("rollback", "dave") and "rejected in review: tone is off" in (last.reason or "")


def test_hold_keeps_it_waiting_with_the_reason_and_a_new_revision(engine: Engine) -> None:
    rollout = awaiting(engine)

    result = decide(engine, rollout.id, "hold", actor="erin", reason="legal review first", expected_revision=rollout.revision)

    held = get_rollout(engine, rollout.id)
    assert held.status == "awaiting_approval" and held.revision == rollout.revision + 1 and labels(engine)[2] == 5.0
    assert "held by erin: legal review first" in (held.status_reason or "") and result.decision == "hold"
    last = events(engine)[-1]
    assert (last.action, last.actor, last.label) == ("hold", "erin", None) and "legal review first" in (last.reason or "")
    with pytest.raises(RolloutConflictError, match="moved on"):  # the same form cannot answer twice
        decide(engine, rollout.id, "approve", actor="erin", reason="ok now", expected_revision=rollout.revision)
    assert (
        decide(engine, rollout.id, "approve", actor="erin", reason="ok now", expected_revision=held.revision).rollout.current_step
        == 1
    )


def test_an_answer_after_a_cli_approval_is_refused_and_changes_nothing(engine: Engine) -> None:
    rollout = awaiting(engine)
    approve(engine, NAME, actor="bob")
    before = (labels(engine), len(events(engine)))

    for decision in ("approve", "reject", "hold"):
        with pytest.raises(RolloutConflictError, match="moved on since this decision was asked for"):
            decide(engine, rollout.id, decision, actor="carol", reason="late", expected_revision=rollout.revision)  # type: ignore[arg-type]

    assert (labels(engine), len(events(engine))) == before and get_rollout(engine, rollout.id).current_step == 1


def test_an_answer_needs_a_reason_and_a_known_decision(engine: Engine) -> None:
    rollout = awaiting(engine)
    with pytest.raises(RolloutError, match="reason"):
        decide(engine, rollout.id, "approve", actor="carol", reason=" ", expected_revision=rollout.revision)
    with pytest.raises(RolloutError, match="decision must be one of"):
        decide(engine, rollout.id, "maybe", actor="carol", reason="x", expected_revision=rollout.revision)  # type: ignore[arg-type]
    assert get_rollout(engine, rollout.id).revision == rollout.revision


# -- a rollout paused by labels moved by hand ------------------------------------------------------


def paused(engine: Engine) -> Rollout:
    """A canary at its 5 % step whose canary label someone set to 50 % by hand: the next look paused it."""
    released(engine)
    rollout_id = start_rollout(engine, request(), now=T0).rollout.id
    Registry(engine).set_label(NAME, "canary", "1.1.0", traffic_percent=50, actor="carol", reason="hotfix test")
    outcome = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=5))
    assert outcome.rollout.status == "paused"
    return outcome.rollout


def test_a_paused_rollout_waits_for_a_decision_and_says_what_each_answer_does(engine: Engine) -> None:
    rollout = paused(engine)

    assert awaits_decision(rollout)
    assert what_answers_do(rollout) == (
        "approve re-applies step 1 (1.1.0 at 5 %) and the rollout goes on; reject rolls back to 1.0.0; hold keeps it paused"
    )


def test_approving_a_paused_rollout_re_applies_its_step_with_the_approver_and_reason_in_the_audit_log(engine: Engine) -> None:
    rollout = paused(engine)
    now = T0 + timedelta(minutes=20)

    result = decide(engine, rollout.id, "approve", actor="alice", reason="carol's test is over", expected_revision=rollout.revision,
                    flow_run_id="run-2", now=now)  # fmt: skip

    resumed = get_rollout(engine, rollout.id)
    assert (resumed.status, resumed.current_step, resumed.step_started_at) == ("active", 0, now) and labels(engine)[2] == 5.0
    last = events(engine)[-1]
    assert (last.actor, last.flow_run_id, last.label, last.to_traffic) == ("alice", "run-2", "canary", 5.0)
    assert "approved by alice: carol's test is over" in (last.reason or "") and result.decision == "approve"
    assert advance_rollout(engine, rollout.id, now=now + timedelta(minutes=1)).action == "waiting"  # its gates decide again


def test_rejecting_a_paused_rollout_rolls_it_back_to_the_baseline(engine: Engine) -> None:
    rollout = paused(engine)

    result = decide(
        engine, rollout.id, "reject", actor="dave", reason="the hand move was the fix", expected_revision=rollout.revision
    )

    assert result.rollout.status == "rolled_back" and labels(engine) == ("1.0.0", None, None, None)
    last = events(engine)[-1]
    assert (last.action, last.actor) == ("rollback", "dave") and "rejected in review: the hand move was the fix" in (
        last.reason or ""
    )


def test_holding_a_paused_rollout_keeps_it_paused_with_why_and_asks_once_more(engine: Engine) -> None:
    """One new revision (one new form) per hold; the scheduled advance leaves it alone, so no loop of forms."""
    rollout = paused(engine)
    before = labels(engine)

    result = decide(
        engine, rollout.id, "hold", actor="erin", reason="carol's test runs until 5 pm", expected_revision=rollout.revision
    )

    held = get_rollout(engine, rollout.id)
    assert (held.status, held.revision, result.decision) == ("paused", rollout.revision + 1, "hold")
    assert "held by erin: carol's test runs until 5 pm" in (held.status_reason or "")
    assert "canary is 1.1.0 at 50 %, the rollout expects 1.1.0 at 5 %" in (held.status_reason or "")  # still says why
    assert labels(engine) == before == ("1.0.0", "1.1.0", 50.0, None)
    last = events(engine)[-1]
    assert (last.action, last.actor, last.label) == ("hold", "erin", None) and "carol's test runs until 5 pm" in (
        last.reason or ""
    )
    for minutes in (15, 30):
        assert advance_rollout(engine, rollout.id, now=T0 + timedelta(minutes=minutes)).action == "unchanged"
    assert get_rollout(engine, rollout.id).revision == held.revision


def test_an_answer_to_a_paused_rollout_resumed_meanwhile_is_refused_and_changes_nothing(engine: Engine) -> None:
    rollout = paused(engine)
    approve(engine, NAME, actor="bob")  # `llmops rollout approve` re-applied the step meanwhile
    before = (labels(engine), len(events(engine)))

    for decision in ("approve", "reject", "hold"):
        with pytest.raises(RolloutConflictError, match="moved on since this decision was asked for"):
            decide(engine, rollout.id, decision, actor="carol", reason="late", expected_revision=rollout.revision)  # type: ignore[arg-type]

    assert (labels(engine), len(events(engine))) == before and get_rollout(engine, rollout.id).status == "active"
