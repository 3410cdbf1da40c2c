"""Staged promotion of a prompt version: the plan, the state machine and its actions, without Prefect.

A rollout can last days, so nothing here waits: ``start_rollout`` records the plan and moves
the labels of the first step, and ``advance_rollout`` (run every 15 minutes by the
``advance-rollouts`` flow) looks at the current step once and decides — wait, move on, ask
for approval, pause, complete, or roll back. Every decision commits the rollout row and the
label moves (``llmops.release.registry``, audited) in one transaction, and the row's ``revision``
makes the scheduled advance and a person approving or rolling back exclude each other.

Strategies (the steps are the candidate's share of traffic):

- ``immediate``: production = candidate at once.
- ``canary``: the canary label serves the candidate at 5 → 25 % …; reaching 100 % makes it
  production and ends the rollout.
- ``blue_green``: as canary (10 → 50 %), with the old version held as ``staging`` — the
  instant fallback — until the 100 % step has run its minimum time and passed its gates.
- ``ab``: a fixed split for a fixed time, then the A/B report decides: the candidate wins →
  production; the baseline wins → rolled back; no difference or too little data → a person
  decides (``llmops rollout approve`` or ``llmops rollback``).

The gates are in ``llmops.release.gates``: the evaluation gate (a pluggable ``EvalGate``; by
default the paired comparison of the candidate's latest complete eval run with the baseline's)
and the trace gate (candidate vs control over the step's window, within the plan's tolerances).
A failed gate rolls back at once, passing needs the step's minimum time and traffic: fail fast,
pass slowly.

The modules, each on the ones before it: ``plan`` (the request and the plan), ``state`` (the
stored rollout, its reads and guarded writes), ``steps`` (each transition as one transaction),
``actions`` (start, advance, approve, roll back), ``tags`` (git tags of releases) and
``tables`` (plan and gates for artifacts), ``approvals`` (a person's approve / reject / hold). Everything public is importable from here.
"""

from llmops.release.gates import EvalGate, EvalGateContext, GateResult
from llmops.release.rollouts.actions import (
    advance_rollout,
    approve,
    ensure_registered,
    rollback,
    rollout_ab_report,
    start_rollout,
)
from llmops.release.rollouts.approvals import (
    DECISIONS,
    ApprovalDecision,
    ApprovalResult,
    awaits_decision,
    decide,
    what_answers_do,
)
from llmops.release.rollouts.plan import (
    DEFAULT_STEPS,
    RESOURCE_PREFIX,
    AdvancedPromotion,
    PlanStep,
    PromotionForm,
    PromotionRequest,
    RolloutPlan,
    Strategy,
    default_actor,
    prompt_name_from,
    resource_id,
)
from llmops.release.rollouts.state import (
    Action,
    RollbackResult,
    Rollout,
    RolloutAlert,
    RolloutConflictError,
    RolloutError,
    RolloutOutcome,
    Status,
    get_rollout,
    latest_rollout,
    live_rollout,
    live_rollouts,
)
from llmops.release.rollouts.tables import gate_table, plan_table
from llmops.release.rollouts.tags import tag_if_released, tag_release

__all__ = [
    "DEFAULT_STEPS",
    "RESOURCE_PREFIX",
    "Action",
    "ApprovalDecision",
    "ApprovalResult",
    "DECISIONS",
    "EvalGate",
    "EvalGateContext",
    "GateResult",
    "PlanStep",
    "AdvancedPromotion",
    "PromotionForm",
    "PromotionRequest",
    "RollbackResult",
    "Rollout",
    "RolloutConflictError",
    "RolloutError",
    "RolloutAlert",
    "RolloutOutcome",
    "RolloutPlan",
    "Status",
    "Strategy",
    "advance_rollout",
    "approve",
    "awaits_decision",
    "decide",
    "default_actor",
    "ensure_registered",
    "gate_table",
    "get_rollout",
    "latest_rollout",
    "live_rollout",
    "live_rollouts",
    "plan_table",
    "prompt_name_from",
    "resource_id",
    "rollback",
    "rollout_ab_report",
    "start_rollout",
    "tag_if_released",
    "tag_release",
    "what_answers_do",
]
