"""Scorers: each turns one output for one example into a ``Score`` in [0, 1] with a reason.

Three kinds, cheapest first: deterministic assertions (``assertions``: the checks a CI would
run), semantic similarity to a reference answer (``similarity``: all-MiniLM-L6-v2, offline),
and an LLM judge with a rubric through a pinned judge model (``judge``: its model, the version
of its instructions and its cost are recorded with every score, so a judge change is never
mistaken for a quality change and evaluation spend is counted). ``base`` holds the contract
they share; ``config`` reads which scorers a prompt uses, their weights and pass thresholds,
from ``evals/<prompt>/scorers.yaml`` beside its datasets. Import from here.
"""

from llmops.evals.scorers.assertions import AssertionResult, AssertionScorer, check_assertion
from llmops.evals.scorers.base import Score, Scorer, ScorerInput, parse_json
from llmops.evals.scorers.config import (
    SCORER_CONFIG_FILE,
    AssertionsSpec,
    JudgeConfig,
    JudgeSpec,
    ScorerConfig,
    ScorerConfigError,
    ScorersSection,
    SimilaritySpec,
    load_scorer_config,
    parse_scorer_config,
)
from llmops.evals.scorers.judge import (
    JUDGE_PROMPTS,
    LATEST_JUDGE_PROMPT,
    SDK_PARAMETERS,
    JudgeOutputError,
    JudgeParseError,
    JudgePrompt,
    JudgeScorer,
    judge_cost,
    parse_judge_output,
    sdk_arguments,
)
from llmops.evals.scorers.similarity import SimilarityScorer

__all__ = [
    "JUDGE_PROMPTS",
    "LATEST_JUDGE_PROMPT",
    "SCORER_CONFIG_FILE",
    "SDK_PARAMETERS",
    "AssertionResult",
    "AssertionScorer",
    "AssertionsSpec",
    "JudgeConfig",
    "JudgeOutputError",
    "JudgeParseError",
    "JudgePrompt",
    "JudgeScorer",
    "JudgeSpec",
    "Score",
    "Scorer",
    "ScorerConfig",
    "ScorerConfigError",
    "ScorerInput",
    "ScorersSection",
    "SimilarityScorer",
    "SimilaritySpec",
    "check_assertion",
    "judge_cost",
    "load_scorer_config",
    "parse_json",
    "parse_judge_output",
    "parse_scorer_config",
    "sdk_arguments",
]
