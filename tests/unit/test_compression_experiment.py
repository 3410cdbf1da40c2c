"""The compression experiment's decisions: version numbers, what counts as worth evaluating, which
candidate wins, why none did, and a version file that reads back as exactly what was evaluated."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmops.compression.experiment import (
    Candidate,
    CompressionRequest,
    RegistrationError,
    candidate_prompt,
    candidate_rows,
    candidate_version,
    choose,
    ineffective,
    version_file_text,
    why_none,
    write_version_file,
    written_before,
)
from llmops.compression.lingua import CompressedText
from llmops.evals.store import RunRecord
from llmops.evals.verdicts import Comparison, MetricComparison
from llmops.prompts import get_prompt, load_prompt_file
from llmops.stats import Interval

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
SOURCE = get_prompt("help-center", "1.0.0", REPO_PROMPTS)


def compressed(text: str, rate: float = 0.3) -> CompressedText:
    return CompressedText(text, rate, "llmlingua", "smollm2-135m-instruct", 1.0, 2_000, 900)


def run(run_id: int, version: str) -> RunRecord:
    return RunRecord(
        id=run_id, prompt_name="help-center", prompt_version=version, content_hash="h", model=SOURCE.model,
        dataset_name="golden", dataset_hash="d", mode="live", repeats=1, status="complete", status_reason=None,
        started_at=datetime(2026, 12, 1, tzinfo=UTC), finished_at=None, cost_usd=Decimal(0), unpriced_calls=0,
        cases_total=113, cases_done=113, cases_failed=0, cases_cached=0, calls=113, retries=0, scores={}, details={},
    )  # fmt: skip


def candidate(rate: float, tokens_after: int, verdict: str, delta: float = -0.001) -> Candidate:
    made = Candidate(
        rate, candidate_prompt(SOURCE, compressed(f"text at {rate}", rate), "1.0.1"), compressed("x", rate), 2_311, tokens_after
    )
    interval = Interval(delta - 0.02, delta + 0.02) if verdict != "regression" else Interval(delta - 0.02, -0.03)
    metric = MetricComparison("assertions", verdict, 113, 0.97, 0.97 + delta, delta, interval)  # type: ignore[arg-type]
    made.comparisons.append(Comparison(run(1, "1.0.0"), run(2 + int(rate * 10), "1.0.1"), verdict, "why", [metric]))  # type: ignore[arg-type]
    made.judge()
    return made


def test_the_candidate_is_the_next_free_patch_release_on_its_line() -> None:
    assert candidate_version(SOURCE, {"1.0.0"}) == "1.0.1"
    assert candidate_version(SOURCE, {"1.0.0", "1.0.1", "1.0.4-rc.1", "1.1.0"}) == "1.0.5"  # 1.0.4 belongs to its rc
    assert candidate_version(get_prompt("support-chat", "2.3.0", REPO_PROMPTS), {"2.3.0", "2.3.1"}) == "2.3.2"


def test_a_candidate_that_saves_too_little_is_not_evaluated_and_says_why() -> None:
    reason = ineffective(160, 152, 0.1)
    assert reason is not None and "saves 5% of 160 tokens" in reason and "short prompts" in reason
    assert ineffective(2_311, 1_140, 0.1) is None


def test_the_most_compressed_candidate_that_passed_wins() -> None:
    candidates = [
        candidate(0.2, 994, "regression", -0.069),
        candidate(0.3, 1_140, "no_difference"),
        candidate(0.5, 1_452, "improvement"),
    ]
    winner = choose(candidates)
    assert winner is not None and winner.rate == 0.3 and winner.ratio == pytest.approx(1_140 / 2_311)
    assert [c.status for c in candidates] == ["regression", "passed", "passed"]


def test_when_nothing_passes_the_reason_names_the_metric_its_delta_and_interval() -> None:
    candidates = [candidate(0.2, 994, "regression", -0.069), candidate(0.3, 1_140, "inconclusive")]
    assert choose(candidates) is None
    reason = why_none(candidates)
    assert "rate 0.2 (43% of the tokens): regression, golden: assertions Δ -0.069 [-0.089, -0.030]" in reason
    assert "rate 0.3 (49% of the tokens): inconclusive" in reason


def test_the_table_has_one_row_per_rate_with_each_metric_as_delta_and_interval() -> None:
    rows = candidate_rows([candidate(0.2, 994, "regression", -0.069), candidate(0.5, 1_452, "no_difference")])
    assert [row["rate"] for row in rows] == [0.2, 0.5]
    assert rows[0]["assertions"] == "-0.069 [-0.089, -0.030]" and rows[0]["tokens"] == "2,311 → 994" and rows[0]["ratio"] == "43%"
    assert set(rows[0]) == set(rows[1])


@pytest.mark.parametrize(
    "system",
    [
        '  starts with spaces\n## Heading\n- item: with a colon\n{customer_name} said "hi" # not a comment\n',
        "one line, no newline at the end",
        "trailing spaces stay   \nand tabs\tstay\n\n\nblank lines too\n",
        'Ünïcödé, emoji 🎉, a backslash \\ and a quote \' and "double"\n',
    ],
)
def test_a_written_version_file_reads_back_as_exactly_what_was_evaluated(tmp_path: Path, system: str) -> None:
    prompt = candidate_prompt(SOURCE, compressed(system), "1.0.1")
    path = write_version_file(prompt, tmp_path)
    assert path == tmp_path / "help-center" / "1.0.1.yaml"
    assert load_prompt_file(path).content_hash == prompt.content_hash
    assert version_file_text(prompt).startswith('version: "1.0.1"\nmodel: "claude-3-5-sonnet-20241022"\n')


def test_a_version_file_is_never_overwritten_but_a_retry_of_the_same_content_succeeds(tmp_path: Path) -> None:
    prompt = candidate_prompt(SOURCE, compressed("the compressed text"), "1.0.1")
    path = write_version_file(prompt, tmp_path)
    assert write_version_file(prompt, tmp_path) == path
    other = candidate_prompt(SOURCE, compressed("another compression"), "1.0.1")
    with pytest.raises(RegistrationError, match="already exists with other content"):
        write_version_file(other, tmp_path)
    assert load_prompt_file(path).system == "the compressed text"


def test_running_the_same_compression_again_reuses_its_version() -> None:
    earlier = candidate_prompt(SOURCE, compressed("the compressed text"), "1.0.1")
    assert written_before(SOURCE, "the compressed text", [SOURCE, earlier]) == "1.0.1"
    assert written_before(SOURCE, "something else", [SOURCE, earlier]) is None
    assert written_before(SOURCE, SOURCE.system, [SOURCE]) is None


def test_the_request_refuses_rates_outside_zero_to_one_and_sorts_them() -> None:
    assert CompressionRequest(prompt_name="help-center", rates=[0.5, 0.3, 0.5]).rates == [0.3, 0.5]
    for bad in ([0.0], [1.0], [1.5], []):
        with pytest.raises(ValidationError):
            CompressionRequest(prompt_name="help-center", rates=bad)
