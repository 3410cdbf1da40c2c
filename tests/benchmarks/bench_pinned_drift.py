"""Decision quality of pinned-model drift (issue 6, item 2): false alarms when only sampling varies,
power when the provider changes the model behind its id.

Each simulated night checks two serving versions on their pinned subsets (40 examples each):
support-chat 2.3.1 (prose, temperature 0.3) and doc-summary 1.2.0 (JSON, temperature 0.2). The
answers are the local model server's own (``llmops.sim.responder.complete``, as ``llmops sim``
serves them with ``sampling_variation`` on): every call a fresh seeded draw, so a re-run of an
unchanged model words some answers differently (another opener, a policy fact kept or left
out). Each night captures a new reference (two draws per example), asks once more, and decides
with ``compare`` + ``pinned_findings`` as the drift-detection flow does. Embeddings are the real
all-MiniLM-L6-v2. The judge score is not simulated here (the sim's judge grades by rubric words;
its statistics are the same paired test as similarity's).

Changes: the sim's provider-update switch on every call, and on a share of calls only (a
partial roll-out or a subtler change). Side by side: a fixed similarity threshold (alert when the
mean similarity to the reference is below 0.90), the uncalibrated rule a team would write first.

Floors: ≤ 5 % of unchanged nights flagged; ≥ 95 % of nights with the provider update flagged.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from llmops.drift.pinned import PinnedCheck, pinned_findings
from llmops.drift.pinned_compare import (
    PairedAnswers,
    PinnedDriftConfig,
    Traits,
    compare,
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
UNCHANGED_NIGHTS = int(os.environ.get("BENCH_PINNED_NIGHTS", "200"))
CHANGED_NIGHTS = UNCHANGED_NIGHTS // 2
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


def night_check(version: Served, embedder: CachedEmbedder, rng: np.random.Generator, updated_share: float) -> PinnedCheck:
    reference, rerun, tonight = draw(version, rng), draw(version, rng), draw(version, rng, updated_share)
    embedder.embed_all(reference + rerun + tonight)
    pairs = []
    for example, texts in zip(version.subset.examples, zip(reference, rerun, tonight, strict=True), strict=True):
        checks = structural_checks(example, texts[0])

        def traits(text: str) -> Traits:
            return Traits(embedder.vectors[text], len(text), is_refusal(text), structure_holds(checks, text), None)

        pairs.append(PairedAnswers(example.id, *(traits(text) for text in texts)))
    tests, notes = compare(pairs, CONFIG, judged=False)
    prompt = version.prompt
    return PinnedCheck(prompt.name, prompt.version, prompt.model, version.subset.name, "production", "compared", tests, notes)


@dataclass
class Nights:
    flagged: int = 0
    fixed_threshold_flagged: int = 0
    total: int = 0
    metrics: Counter[str] | None = None


def run_nights(versions: list[Served], embedder: CachedEmbedder, nights: int, updated_share: float, seed: int) -> Nights:
    rng = np.random.default_rng(seed)
    result = Nights(metrics=Counter())
    for _ in range(nights):
        checks = [night_check(version, embedder, rng, updated_share) for version in versions]
        findings = pinned_findings(NIGHT, "production", checks, CONFIG)
        result.total += 1
        result.flagged += bool(findings)
        result.metrics.update({finding.metric for finding in findings})  # type: ignore[union-attr]
        similarities = [test.value for check in checks for test in check.tests if test.metric == "pinned:similarity"]
        result.fixed_threshold_flagged += any(value < FIXED_SIMILARITY_THRESHOLD for value in similarities)
    return result


def share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} % ({count}/{total})"


def main() -> None:
    versions = [served(name, version) for name, version in VERSIONS]
    embedder = CachedEmbedder()
    described = ", ".join(f"{v.prompt.name} {v.prompt.version} ({v.prompt.model}, {len(v.subset)} examples)" for v in versions)
    print(f"each night: {described}; the sim's answers with sampling variation; all-MiniLM-L6-v2 embeddings")
    print(f"{'':44}{'llmops pinned drift':>22}{'similarity < 0.90':>22}")
    unchanged = run_nights(versions, embedder, UNCHANGED_NIGHTS, 0.0, SEED)
    print(f"{'false alarms (unchanged model)':44}{share(unchanged.flagged, unchanged.total):>22}"
          f"{share(unchanged.fixed_threshold_flagged, unchanged.total):>22}")  # fmt: skip
    for index, updated_share in enumerate(UPDATED_SHARES, start=1):
        changed = run_nights(versions, embedder, CHANGED_NIGHTS, updated_share, SEED + index)
        label = f"power: provider update on {updated_share:.0%} of calls"
        print(f"{label:44}{share(changed.flagged, changed.total):>22}{share(changed.fixed_threshold_flagged, changed.total):>22}")
        print(f"{'':4}traits flagged: {dict(changed.metrics.most_common())}")  # type: ignore[union-attr]
    print(f"false alarms by trait: {dict(unchanged.metrics.most_common()) or 'none'}")  # type: ignore[union-attr]
    print(f"distinct answers embedded: {len(embedder.vectors)}")


if __name__ == "__main__":
    main()
