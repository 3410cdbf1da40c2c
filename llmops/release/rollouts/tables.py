"""A rollout's plan and gates as tables, for Prefect artifacts and the command line.

One row per step (with where the rollout stands) and one row per gate metric (with the interval,
tolerance and counts it was judged on, and a sequential gate's evidence against its thresholds),
so a person sees why a rollout waits or rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmops.release.gates import GateResult
from llmops.release.rollouts.state import Rollout


def plan_table(rollout: Rollout) -> list[dict[str, Any]]:
    """One row per step, with where the rollout stands.

    Args:
        rollout: The rollout.

    Returns:
        Rows of ``step``, ``traffic_percent``, ``min_minutes``, ``min_requests`` and ``state``:
        ``done``, the rollout's status on the current step, ``to do`` (or ``skipped`` once it ended).

    Example:
        ```python
        plan_table(get_rollout(engine, 7))[0]
        # {"step": 1, "traffic_percent": 5.0, "min_minutes": 60.0, "min_requests": 300, "state": "done"}
        ```
    """
    rows = []
    for index, step in enumerate(rollout.plan.steps):
        if index < rollout.current_step or (index == rollout.current_step and rollout.status == "completed"):
            state = "done"
        elif index == rollout.current_step:
            state = rollout.status
        else:
            state = "to do" if rollout.is_live else "skipped"
        rows.append({
            "step": index + 1,
            "traffic_percent": step.traffic_percent,
            "min_minutes": step.min_minutes,
            "min_requests": step.min_requests,
            "state": state,
        })  # fmt: skip
    return rows


def _interval_text(row: dict[str, Any]) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None:
        return f"n {row.get('control_n', 0)}/{row.get('candidate_n', 0)}, too few to judge"
    shown = f"×{low:.3g} … ×{high:.3g}" if row.get("scale") == "ratio" else f"{low:+.3g} … {high:+.3g}"
    return f"{shown} (tolerance {row.get('tolerance')}; n {row.get('control_n')}/{row.get('candidate_n')})"


def _evidence_text(row: dict[str, Any]) -> str:
    """A sequential gate's evidence and, while undecided, the traffic a verdict is expected to take."""
    evidence = f"; {row['evidence']}" if row.get("evidence") else ""
    remaining = row.get("calls_to_verdict")
    return evidence + (f"; about {remaining:,} more calls to a verdict" if remaining else "")


def _detail(gate: str, row: dict[str, Any]) -> str:
    if gate == "traces":
        return _interval_text(row) + _evidence_text(row)
    if gate == "evaluation" and row.get("delta") is not None:
        return f"{row['dataset']}: Δ {row['delta']:+.3f} {row['interval'] or ''} (n {row['pairs']})"
    if gate == "ab_report":
        return f"winner {row['winner']}" if row.get("winner") else ""
    return ""


def gate_table(gates: Sequence[GateResult]) -> list[dict[str, Any]]:
    """Every gate's metrics as one table; a gate without metrics is one line with its summary.

    Args:
        gates: The gates' results, e.g. ``outcome.gates`` or ``rollout.last_gate_results``.

    Returns:
        Rows of ``gate``, ``metric``, ``control``, ``candidate``, ``detail`` (interval, tolerance
        and counts for trace metrics) and ``verdict``.

    Example:
        >>> gate_table([GateResult("approval", "pass", "approved by alice")])
        [{'gate': 'approval', 'metric': '–', 'control': None, 'candidate': None, 'detail': 'approved by alice', 'verdict': 'pass'}]
    """
    rows: list[dict[str, Any]] = []
    for gate in gates:
        if not gate.rows:
            rows.append(
                {
                    "gate": gate.gate,
                    "metric": "–",
                    "control": None,
                    "candidate": None,
                    "detail": gate.summary,
                    "verdict": gate.verdict,
                }
            )
        for row in gate.rows:
            rows.append({
                "gate": gate.gate,
                "metric": row["metric"],
                "control": row.get("control_value", row.get("control", row.get("baseline"))),
                "candidate": row.get("candidate_value", row.get("candidate")),
                "detail": _detail(gate.gate, row),
                "verdict": row["verdict"],
            })  # fmt: skip
    return rows
