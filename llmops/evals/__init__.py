"""Evaluations: datasets of examples, scorers for outputs, runs of a prompt version, and verdicts.

``evals/<prompt>/<dataset>.jsonl`` holds the examples (``datasets``), ``evals/<prompt>/scorers.yaml``
says how they are scored (``scorers``, with ``embeddings`` for similarity). The ``runner`` asks
the version's pinned model every example, politely (``limits``), live or through the Message
Batches API (``batch``), reusing answers already paid for (``cache``); its ``recorder`` scores
each answer and streams the results to the store (``store``). ``verdicts`` compares two runs
example by example and says whether the candidate regressed.
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
