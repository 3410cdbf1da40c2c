"""Tables that fit (issue 14, item 4): ``print_table`` never cuts an id, a model or a number.

Numbers and ids never wrap; prose (reasons, summaries) wraps at spaces with its words whole; text
with spaces wraps only when the table would not fit otherwise; and when the ids and numbers alone
are wider than the terminal, the records are printed one block each, ``field: value`` lines.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from llmops.evals.datasets import Dataset, EvalExample, subset
from prefect_llmops.cli.output import print_table

MODELS = ("claude-3-5-sonnet-20241022", "claude-3-haiku-20240307", "claude-sonnet-4-20250514", "acme-ft-support-v1")
COSTS = [
    {"model": model, "requests": 27_983 + index, "cost_usd": 219.01 * (index + 1), "avg_cost_per_request": 0.00783,
     "input_tokens": 45_139_123 * (index + 1), "output_tokens": 5_397_285, "error_rate": 0.0102,
     "p50_latency_ms": 3187.0, "p95_latency_ms": 6191.0, "p99_latency_ms": 36_026.0, "unpriced_requests": 0}
    for index, model in enumerate(MODELS)
]  # fmt: skip
REASON = (
    "waiting for traffic: 15 candidate / 285 control requests, the step needs 100 candidate requests; "
    "step has run 0 of 60 minutes"
)
ROLLOUT = {
    "id": 2, "prompt": "support-chat", "environment": "production", "candidate": "2.3.1", "baseline": "2.3.0",
    "strategy": "canary", "step": "1/3", "traffic_percent": 5.0, "status": "active",
    "gates": "evaluation pass, traces wait", "step_started_at": "2026-12-06T00:44:51+00:00", "reason": REASON,
}  # fmt: skip
GROUP = "production/chat_response/support-chat@2.3.1/claude-3-5-sonnet-20241022"


def render(rows: list[dict], width: int, **options: object) -> str:  # type: ignore[type-arg]
    out = Console(file=io.StringIO(), width=width, record=True, soft_wrap=True, color_system=None)
    print_table(rows, "title", out=out, **options)  # type: ignore[arg-type]
    return out.export_text()


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_costs_by_model_keeps_every_model_id_and_number_whole(width: int) -> None:
    text = render(COSTS, width, footer={"model": "total", "requests": 1, "input_tokens": 451_391_230})
    assert "…" not in text
    for model in MODELS:
        assert model in text
    for number in ("45,139,123", "90,278,246", "180,556,492", "451,391,230", "36,026", "5,397,285", "1.02%"):
        assert number in text
    assert all(len(line) <= width for line in lines_of(text) if "│" in line or "┃" in line)


def test_a_wide_enough_terminal_gets_a_table_a_narrow_one_a_block_per_record() -> None:
    wide = render(COSTS, 150)
    assert "┃ model " in wide and "claude-3-5-sonnet-20241022 │" in wide
    narrow = render(COSTS, 80)
    assert "┃" not in narrow and "── 1 of 4" in narrow and "── 4 of 4" in narrow
    assert re.search(r"^model: +claude-3-5-sonnet-20241022$", narrow, re.MULTILINE)
    assert re.search(r"^input tok: +45,139,123$", narrow, re.MULTILINE)  # abbreviated header, whole number
    with_total = render(COSTS, 80, footer={"model": "total", "requests": 110_000})
    assert "── total" in with_total and re.search(r"^requests: +110,000$", with_total, re.MULTILINE)


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_a_rollout_reason_is_never_one_word_per_line(width: int) -> None:
    text = render([ROLLOUT], width)
    assert "…" not in text
    for value in ("support-chat", "production", "2026-12-06T00:44:51+00:00", "5.00"):
        assert value in text
    words = REASON.split()
    shown = " ".join(" ".join(line.strip("│ ").split()) for line in lines_of(text))
    assert all(word in shown for word in words)
    one_word_lines = [line for line in lines_of(text) if len(line.strip("│ ").split()) == 1 and line.strip("│ ") in words]
    assert len(one_word_lines) <= 2


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_drift_group_keeps_its_model(width: int) -> None:
    rows = [
        {"kind": "trace", "group": GROUP, "metric": "latency_p50",
         "summary": "p50 latency 5,573 ms, +72 % vs the usual 3,238 ± 91 ms", "statistic": "19.8 vs 2.88",
         "adjusted_p": "1.77e-09", "examples": ""},
        {"kind": "pinning", "group": GROUP.replace("claude-3-5-sonnet-20241022", "claude-3-haiku-20240307"),
         "metric": "off_pinned_model", "summary": "85 of 473 calls asked for claude-3-haiku-20240307, not the pinned "
         "claude-3-5-sonnet-20241022", "statistic": "", "adjusted_p": "", "examples": "demo-bb6acec9-20261205-0000003"},
    ]  # fmt: skip
    text = render(rows, width)
    assert "…" not in text
    assert GROUP in text and GROUP.replace("claude-3-5-sonnet-20241022", "claude-3-haiku-20240307") in text
    assert "demo-bb6acec9-20261205-0000003" in text and "claude-3-haiku-20240307," in text


def test_a_table_at_200_columns_stays_a_table_for_drift_sized_rows() -> None:
    rows = [{"kind": "trace", "group": GROUP, "metric": "latency_per_output_token", "summary": "x " * 40,
             "adjusted_p": "1.77e-09"}]  # fmt: skip
    assert "┃ kind" in render(rows, 200)


def test_empty_rows_say_no_data(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([], "Costs")
    assert "Costs: no data" in capsys.readouterr().out


def test_numeric_strings_are_right_aligned_and_prose_wraps_at_spaces() -> None:
    rows = [{"metric": "assertions", "baseline": "0.645", "delta": "+0.154", "interval": "[+0.115, +0.194]", "verdict": "ok"}]
    text = render(rows, 120, numeric=("baseline", "delta", "interval"))
    assert "│ [+0.115, +0.194] │" in text and "0.645" in text


# -- subsets of a dataset (eval run --limit/--sample) ---------------------------------------------

DATA = Dataset(
    name="golden",
    prompt_name="chat",
    examples=[EvalExample.model_validate({"id": f"e{index:02d}", "input": f"question {index}"}) for index in range(30)],
)


def test_a_limit_keeps_the_first_examples_and_describes_itself() -> None:
    part, about = subset(DATA, limit=5)
    assert part.name == "golden@first5" and [example.id for example in part.examples] == ["e00", "e01", "e02", "e03", "e04"]
    assert about == {"kind": "first", "size": 5, "of": 30, "dataset": "golden", "dataset_hash": DATA.content_hash}
    assert part.content_hash != DATA.content_hash  # never compared with a whole-dataset run


def test_a_sample_is_seeded_and_kept_in_file_order() -> None:
    first, about = subset(DATA, sample=7, seed=1)
    again, _ = subset(DATA, sample=7, seed=1)
    other, _ = subset(DATA, sample=7, seed=2)
    ids = [example.id for example in first.examples]
    assert ids == [example.id for example in again.examples] == sorted(ids) and len(ids) == 7
    assert ids != [example.id for example in other.examples]
    assert first.name == "golden@sample7-seed1" and about is not None and about["seed"] == 1


def test_a_subset_as_large_as_the_dataset_is_the_dataset() -> None:
    assert subset(DATA, limit=30) == (DATA, None)
    assert subset(DATA, sample=99) == (DATA, None)
    assert subset(DATA) == (DATA, None)
    with pytest.raises(ValueError, match="not both"):
        subset(DATA, limit=2, sample=2)


def test_at_120_columns_costs_by_model_is_still_a_table_with_lighter_borders() -> None:
    text = render(COSTS, 120, footer={"model": "total", "requests": 110_000})
    [line] = [line for line in lines_of(text) if line.startswith("claude-3-5-sonnet-20241022")]
    assert "27,983" in line and "45,139,123" in line and "36,026" in line  # one row, every number on it
    assert "┃" not in text and "── 1 of" not in text and max(map(len, lines_of(text))) <= 120
    assert any(line.startswith("total") and "110,000" in line for line in lines_of(text))


@pytest.mark.parametrize("rows", [COSTS, [ROLLOUT]], ids=["costs", "rollout"])
def test_a_table_from_the_width_its_columns_need_and_a_block_per_record_below_it(rows: list[dict]) -> None:  # type: ignore[type-arg]
    tables = ["── 1 of" not in render(rows, width) for width in range(60, 201)]
    narrowest = tables.index(True)
    assert narrowest > 0 and all(tables[narrowest:])  # one boundary: the width Rich measures the table needs
