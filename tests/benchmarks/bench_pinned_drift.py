"""Decision quality of pinned-model drift (issue 6, item 2; issue 15, item 3): false alarms when only
sampling varies, power when the provider changes the model behind its id, on all calls or a share.

Each simulated night checks two serving versions on their pinned subsets (40 examples each):
support-chat 2.3.1 (prose, temperature 0.3) and doc-summary 1.2.0 (JSON, temperature 0.2). The
answers are the local model server's own (``llmops.sim.responder.complete``, as ``llmops sim``
serves them with ``sampling_variation`` on): every call a fresh seeded draw, so a re-run of an
unchanged model words some answers differently (another opener, a policy fact kept or left
out). Each sequence captures a reference (two draws per example) and then asks it again on
``SEQUENCE_NIGHTS`` nights, as production does between captures, deciding each night with
``compare`` + ``continue_round`` + ``pinned_findings`` as the drift-detection flow does.
Embeddings are the real all-MiniLM-L6-v2. The judge score is not simulated here (the sim's
judge grades by rubric words; its statistics are the same tests as similarity's).

Changes: the sim's provider-update switch on every call, and on a share of calls only (a
partial roll-out or a subtler change), on from the sequence's first night. Side by side, on the
same nights: each night's tests alone (the method before issue 15), with the round's tests over
nights added (the default now), and a fixed similarity threshold (alert when the mean similarity
to the reference is below 0.90), the uncalibrated rule a team would write first.

Floors: ≤ 2 % of unchanged nights flagged; ≥ 95 % of sequences with the provider update on 25 %
of calls flagged within 3 nights.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from llmops.drift.pinned import PinnedCheck, pinned_findings
from llmops.drift.pinned_compare import (
    ACCUMULATED_METRICS,
    NightScores,
    PairedAnswers,
    PinnedDriftConfig,
    Traits,
    compare,
    continue_round,
    is_refusal,
    structural_checks,
    structure_holds,
)
from llmops.drift.pinned_references import pinned_subset
from llmops.evals.datasets import Dataset, load_dataset
from llmops.evals.embeddings import default_embedder
from llmops.prompts import PromptVersion, get_prompt
from llmops.sim.protocol import MessagesRequest
from llmops.sim.responder import complete

REPO_ROOT = Path(__file__).resolve().parents[2]
SEQUENCE_NIGHTS = 3
UNCHANGED_SEQUENCES = int(os.environ.get("BENCH_PINNED_NIGHTS", "300")) // SEQUENCE_NIGHTS
CHANGED_SEQUENCES = UNCHANGED_SEQUENCES // 2
SEED = 2026
VERSIONS = (("support-chat", "2.3.1"), ("doc-summary", "1.2.0"))
UPDATED_SHARES = (1.0, 0.5, 0.25)
FIXED_SIMILARITY_THRESHOLD = 0.90
CONFIG = PinnedDriftConfig()
NIGHT = date(2026, 11, 26)


class CachedEmbedder:
    """all-MiniLM-L6-v2, each distinct text embedded once (the sim's answers repeat across nights)."""

    def __init__(self) -> None:
        self.model = default_embedder()
        self.vectors: dict[str, np.ndarray] = {}

    def embed_all(self, texts: Sequence[str]) -> None:
        missing = sorted({text for text in texts if text not in self.vectors})
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            for text, vector in zip(chunk, self.model.embed(chunk), strict=True):
                self.vectors[text] = vector


@dataclass(frozen=True)
class Served:
    """One serving version's pinned subset as the model server receives it."""

    prompt: PromptVersion
    subset: Dataset
    requests: list[MessagesRequest]


def served(name: str, version: str) -> Served:
    prompt = get_prompt(name, version, REPO_ROOT / "prompts")
    subset = pinned_subset(load_dataset(REPO_ROOT / "evals" / name / "golden.jsonl", name), CONFIG.subset_size)
    parameters = prompt.parameters.model_dump(exclude_none=True)
    requests = [
        MessagesRequest.model_validate({"model": prompt.model, "system": prompt.system, "messages": e.messages(), **parameters})
        for e in subset.examples
    ]
    return Served(prompt, subset, requests)


def draw(version: Served, rng: np.random.Generator, updated_share: float = 0.0) -> list[str]:
    """One answer per example, each call its own sample; ``updated_share`` of calls after the provider update."""
    return [
        complete(request, provider_updated=bool(rng.random() < updated_share), sample=int(rng.integers(1, 2**48))).text
        for request in version.requests
    ]


def reference_of(version: Served, embedder: CachedEmbedder, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """A reference captured once for a sequence: two draws per example."""
    reference, rerun = draw(version, rng), draw(version, rng)
    embedder.embed_all(reference + rerun)
    return reference, rerun


def night_pairs(
    version: Served,
    reference: tuple[list[str], list[str]],
    embedder: CachedEmbedder,
    rng: np.random.Generator,
    updated_share: float,
) -> list[PairedAnswers]:
    tonight = draw(version, rng, updated_share)
    embedder.embed_all(tonight)
    pairs = []
    for example, texts in zip(version.subset.examples, zip(*reference, tonight, strict=True), strict=True):
        checks = structural_checks(example, texts[0])

        def traits(text: str) -> Traits:
            return Traits(embedder.vectors[text], len(text), is_refusal(text), structure_holds(checks, text), None)

        pairs.append(PairedAnswers(example.id, *(traits(text) for text in texts)))
    return pairs


@dataclass
class Outcome:
    """Which nights of a sequence each method flagged."""

    today: list[bool] = field(default_factory=list)
    nights: list[bool] = field(default_factory=list)
    fixed_threshold: list[bool] = field(default_factory=list)


@dataclass
class Sequences:
    outcomes: list[Outcome] = field(default_factory=list)
    metrics: Counter[str] = field(default_factory=Counter)

    def nights(self, method: str) -> tuple[int, int]:
        flags = [flag for outcome in self.outcomes for flag in getattr(outcome, method)]
        return sum(flags), len(flags)

    def within(self, method: str, nights: int) -> tuple[int, int]:
        return sum(any(getattr(outcome, method)[:nights]) for outcome in self.outcomes), len(self.outcomes)


def run_sequences(versions: list[Served], embedder: CachedEmbedder, sequences: int, updated_share: float, seed: int) -> Sequences:
    """Each sequence: a reference captured, then ``SEQUENCE_NIGHTS`` nights asked against it, the update on from the first."""
    rng = np.random.default_rng(seed)
    result = Sequences()
    for _ in range(sequences):
        references = [reference_of(version, embedder, rng) for version in versions]
        rounds: list[list[NightScores]] = [[] for _ in versions]
        outcome = Outcome()
        for _ in range(SEQUENCE_NIGHTS):
            checks = []
            for index, (version, reference) in enumerate(zip(versions, references, strict=True)):
                pairs = night_pairs(version, reference, embedder, rng, updated_share)
                tests, notes = compare(pairs, CONFIG, judged=False)
                accumulated, rounds[index] = continue_round(pairs, rounds[index], CONFIG, judged=False)
                prompt = version.prompt
                checks.append(PinnedCheck(prompt.name, prompt.version, prompt.model, version.subset.name, "production",
                                          "compared", tests, notes, accumulated=accumulated))  # fmt: skip
            findings = pinned_findings(NIGHT, "production", checks, CONFIG)
            outcome.nights.append(bool(findings))
            outcome.today.append(any(finding.metric not in ACCUMULATED_METRICS for finding in findings))
            similarities = [test.value for check in checks for test in check.tests if test.metric == "pinned:similarity"]
            outcome.fixed_threshold.append(any(value < FIXED_SIMILARITY_THRESHOLD for value in similarities))
            result.metrics.update({finding.metric for finding in findings})
        result.outcomes.append(outcome)
    return result


def share(counted: tuple[int, int]) -> str:
    count, total = counted
    return f"{100 * count / total:.1f} % ({count}/{total})"


METHODS = ("today", "nights", "fixed_threshold")


def row(label: str, figures: list[str]) -> None:
    print(f"{label:46}" + "".join(f"{figure:>24}" for figure in figures))


def main() -> None:
    versions = [served(name, version) for name, version in VERSIONS]
    embedder = CachedEmbedder()
    described = ", ".join(f"{v.prompt.name} {v.prompt.version} ({v.prompt.model}, {len(v.subset)} examples)" for v in versions)
    print(f"each night: {described}; the sim's answers with sampling variation; all-MiniLM-L6-v2 embeddings")
    print(f"{UNCHANGED_SEQUENCES} unchanged sequences and {CHANGED_SEQUENCES} per updated share, each a reference captured "
          f"and {SEQUENCE_NIGHTS} nights against it; rounds of {CONFIG.round_nights} nights at level {CONFIG.round_alpha}")  # fmt: skip
    row("", ["today (each night)", "+ over nights (new)", "similarity < 0.90"])
    unchanged = run_sequences(versions, embedder, UNCHANGED_SEQUENCES, 0.0, SEED)
    row("false alarms per unchanged night", [share(unchanged.nights(method)) for method in METHODS])
    row(
        f"false alarms within {SEQUENCE_NIGHTS} unchanged nights",
        [share(unchanged.within(method, SEQUENCE_NIGHTS)) for method in METHODS],
    )
    for index, updated_share in enumerate(UPDATED_SHARES, start=1):
        changed = run_sequences(versions, embedder, CHANGED_SEQUENCES, updated_share, SEED + index)
        for nights in range(1, SEQUENCE_NIGHTS + 1):
            label = f"power: update on {updated_share:.0%} of calls, {nights} night{'s' if nights > 1 else ''}"
            row(label, [share(changed.within(method, nights)) for method in METHODS])
        print(f"{'':4}traits flagged (nights): {dict(changed.metrics.most_common())}")
    print(f"false alarms by trait: {dict(unchanged.metrics.most_common()) or 'none'}")
    print(f"distinct answers embedded: {len(embedder.vectors)}")


if __name__ == "__main__":
    main()
