"""Evaluations: datasets of examples, scorers for outputs, and their per-prompt configuration.

``evals/<prompt>/<dataset>.jsonl`` holds the examples, ``evals/<prompt>/scorers.yaml`` says how
they are scored. The runner (which calls the model) and the comparison of runs build on these.
"""

from llmops.evals.datasets import Dataset, DatasetError, EvalExample, load_dataset, load_datasets
from llmops.evals.scorers import (
    AssertionScorer,
    JudgeOutputError,
    JudgeScorer,
    Score,
    Scorer,
    ScorerConfig,
    ScorerConfigError,
    ScorerInput,
    SimilarityScorer,
    check_assertion,
    load_scorer_config,
)

__all__ = [
    "AssertionScorer",
    "Dataset",
    "DatasetError",
    "EvalExample",
    "JudgeOutputError",
    "JudgeScorer",
    "Score",
    "Scorer",
    "ScorerConfig",
    "ScorerConfigError",
    "ScorerInput",
    "SimilarityScorer",
    "check_assertion",
    "load_dataset",
    "load_datasets",
    "load_scorer_config",
]
