"""Semantic similarity of an output to the example's reference answer, offline.

The cosine of the two texts' all-MiniLM-L6-v2 embeddings (``llmops.evals.embeddings``): cheap,
deterministic, and blind to wording, so it measures whether an answer says what the reference
says. For a prompt that answers in JSON it compares one field's prose, leaving the format to
the assertions.
"""

from __future__ import annotations

import numpy as np

from llmops.evals.datasets import EvalExample
from llmops.evals.embeddings import Embedder, cosine_similarity, default_embedder
from llmops.evals.scorers.base import Score, Scorer, ScorerInput, parse_json


def _field_text(text: str, field_name: str | None) -> tuple[str, str]:
    """The text to compare: a JSON output's ``field_name`` when present, else the whole output."""
    if field_name is None:
        return text, "output"
    data, error = parse_json(text)
    if error is None and isinstance(data, dict) and isinstance(data.get(field_name), str):
        return data[field_name], f"output.{field_name}"
    return text, "output"


class SimilarityScorer(Scorer):
    """Cosine similarity of the output to ``expected``, negative cosines clipped to 0.

    For a prompt that answers in JSON, ``field`` names the key holding the prose to compare
    (``summary``), so format and content are scored separately: assertions check the format.

    Args:
        embedder: What embeds the texts; the shared all-MiniLM-L6-v2 (loaded on first use) when None.
        field: For JSON outputs, the key whose text is compared; the whole output when absent.
        name: The metric the score is stored under.

    Example:
        ```python
        scorer = SimilarityScorer(field="summary")
        example = EvalExample.model_validate({"id": "a", "input": "Summarise", "expected": "Refunds take 30 days."})
        scorer.score(example, ScorerInput(text='{"summary": "A refund takes a month."}')).value  # ≈ 0.8
        ```
    """

    def __init__(self, embedder: Embedder | None = None, field: str | None = None, name: str = "similarity") -> None:
        self.name = name
        self.field = field
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder given, or the shared default one, loaded on first use."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def applies(self, example: EvalExample) -> bool:
        """Whether the example has a reference answer (``expected``) to compare with."""
        return example.expected is not None

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        """The clipped cosine; an empty output scores 0."""
        if example.expected is None:
            raise ValueError(f"example {example.id!r} has no expected answer to compare with")
        compared, source = _field_text(output.text, self.field)
        if not compared.strip():
            return Score(0.0, "the output is empty", {"cosine": None, "compared": source})
        reference, answer = np.asarray(self.embedder.embed([example.expected, compared]))
        cosine = cosine_similarity(reference, answer)
        value = min(1.0, max(0.0, cosine))
        return Score(value, f"cosine similarity {cosine:.3f} of {source} to the expected answer",
                     {"cosine": round(cosine, 6), "compared": source})  # fmt: skip
