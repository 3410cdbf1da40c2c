"""Evaluations: datasets of examples, scorers for outputs, runs of a prompt version, and verdicts.

``evals/<prompt>/<dataset>.jsonl`` holds the examples (``datasets``), ``evals/<prompt>/scorers.yaml``
says how they are scored (``scorers``, with ``embeddings`` for similarity). The ``runner`` asks
the version's pinned model every example, politely (``limits``), live or through the Message
Batches API (``batch``), reusing answers already paid for (``cache``); its ``recorder`` scores
each answer and streams the results to the store (``store``). ``verdicts`` compares two runs
example by example and says whether the candidate regressed.
"""

from typing import TYPE_CHECKING

from llmops.lazy import lazy_exports

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

# Loaded on first use: importing ``llmops.evals.store`` (the promotion gate, the digest) must not
# load the scorers and the Anthropic SDK.
if TYPE_CHECKING:
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
else:
    _DATASETS = {"Dataset", "DatasetError", "EvalExample", "load_dataset", "load_datasets"}
    __getattr__, __dir__ = lazy_exports(
        __name__, {name: "llmops.evals.datasets" if name in _DATASETS else "llmops.evals.scorers" for name in __all__}
    )
