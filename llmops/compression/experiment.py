"""The compression experiment: candidates at several rates, each judged on the prompt's own evaluation.

The flow (``flows/compress_prompt.py``) runs the steps; this module decides. For each
requested rate a candidate version is built from the compressed system prompt; one that saves
too little is set aside as ``ineffective`` (LLMLingua barely touches short prompts). Each
other candidate gets a paired verdict against the uncompressed version on every dataset of
the prompt, and the most compressed candidate that is not a regression on any metric is
registered as the next patch version, with a changelog that says how it was made and what it
saves. It is never promoted by itself: a person promotes it like any other version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmops.compression.lingua import CompressedText
from llmops.compression.protect import Protection
from llmops.compression.savings import Projection
from llmops.evals.verdicts import Comparison, Verdict, combined_verdict, interval_text
from llmops.prompts import PROMPT_FILE_SUFFIX, PromptVersion, load_prompt_file, semver_key

DEFAULT_RATES = (0.3, 0.5, 0.7)
PASSING: frozenset[Verdict] = frozenset({"no_difference", "improvement"})
"""Verdicts against the uncompressed version that let a candidate be registered."""
REGISTERED_CREATOR = "compress-prompt"
"""``created_by`` of the uncompressed version's run and, once registered, of the chosen candidate's."""

Rate = Annotated[float, Field(gt=0, lt=1)]
Status = Literal["pending", "registered", "passed", "regression", "inconclusive", "ineffective"]


class CompressionRequest(BaseModel):
    """The compress-prompt form: which prompt, at which rates, how strict."""

    model_config = ConfigDict(extra="forbid")

    prompt_name: str = Field(description="The prompt to compress, e.g. help-center.")
    version: str | None = Field(
        default=None, description="The version to compress. Empty: the production version, else the latest release."
    )
    rates: list[Rate] = Field(
        default_factory=lambda: list(DEFAULT_RATES),
        min_length=1,
        max_length=8,
        description="Share of LLMLingua's tokens to keep, one candidate per rate (0.3 keeps about a third of the prose).",
    )
    method: Literal["llmlingua", "llmlingua2"] | None = Field(
        default=None,
        description="llmlingua2 (token classification, needs its model folder) or llmlingua (perplexity, SmolLM2 by default). "
        "Empty: llmlingua2 when LLMOPS_LLMLINGUA2_MODEL is set.",
    )
    tolerance: float = Field(
        default=0.02, ge=0, le=0.5, description="A metric may drop this much (scores in [0, 1]) before it counts as a regression."
    )
    min_saving: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="A candidate that saves less than this share of the prompt's tokens is not evaluated.",
    )
    register_version: bool = Field(
        default=True, description="Write the chosen candidate as the next version file (it is never promoted by itself)."
    )
    actor: str | None = Field(default=None, description="Who asked; written as the new version's author.")

    @field_validator("rates")
    @classmethod
    def _distinct(cls, rates: list[float]) -> list[float]:
        return sorted(set(rates))


@dataclass
class Candidate:
    """One rate's compressed version and what was found out about it."""

    rate: float
    prompt: PromptVersion
    """The candidate version: the source with the compressed system prompt."""
    compressed: CompressedText
    tokens_before: int
    """System-prompt tokens of the source, in the pinned model's count."""
    tokens_after: int
    status: Status = "pending"
    note: str = ""
    """Why the status: the verdicts, the regressing metrics, or why it was not evaluated."""
    comparisons: list[Comparison] = field(default_factory=list)
    """One paired comparison per dataset of the prompt."""
    projection: Projection | None = None

    @property
    def ratio(self) -> float:
        """Tokens after ÷ before, in the pinned model's own count."""
        return self.tokens_after / self.tokens_before if self.tokens_before else 1.0

    @property
    def verdict(self) -> Verdict | None:
        """The worst verdict over the datasets, or None before any comparison."""
        return combined_verdict([comparison.verdict for comparison in self.comparisons]) if self.comparisons else None

    def judge(self) -> None:
        """Set ``status`` and ``note`` from the comparisons: the worst metric names why it failed."""
        verdict = self.verdict
        if verdict is None:
            return
        if verdict in PASSING:
            self.status, self.note = "passed", "; ".join(f"{c.candidate.dataset_name}: {c.reason}" for c in self.comparisons)
        elif verdict == "regression":
            self.status = "regression"
            self.note = "; ".join(
                f"{c.candidate.dataset_name}: {', '.join(c.regression_changes())}"
                for c in self.comparisons
                if c.verdict == "regression"
            )
        else:
            self.status, self.note = "inconclusive", "; ".join(c.reason for c in self.comparisons if c.verdict == "inconclusive")


def candidate_version(source: PromptVersion, taken: Iterable[str]) -> str:
    """The next free patch release after ``source`` on its major.minor line (2.3.1 → 2.3.2, or 2.3.3 if taken).

    Args:
        source: The version compressed.
        taken: Versions of the prompt that exist already.

    Returns:
        The candidate's version.

    Example:
        ```python
        candidate_version(get_prompt("support-chat", "2.3.1"), ["2.3.0", "2.3.1", "2.3.2", "2.4.0"])  # '2.3.3'
        ```
    """
    major, minor, patch, *_ = semver_key(source.version)
    same_line = [semver_key(version)[2] for version in taken if semver_key(version)[:2] == (major, minor)]
    return f"{major}.{minor}.{max([patch, *same_line]) + 1}"


def written_before(source: PromptVersion, system: str, existing: Iterable[PromptVersion]) -> str | None:
    """The version already written from this very compression (same model, parameters and system
    prompt), so that running the same compression again registers nothing new.

    Args:
        source: The version compressed.
        system: The compressed system prompt.
        existing: The prompt's versions.

    Returns:
        That version, or None.
    """
    for prompt in existing:
        same = (prompt.system, prompt.model, prompt.parameters) == (system, source.model, source.parameters)
        if same and prompt.version != source.version:
            return prompt.version
    return None


def candidate_prompt(source: PromptVersion, compressed: CompressedText, version: str) -> PromptVersion:
    """``source`` with the compressed system prompt under ``version`` (its changelog is written on registration).

    Args:
        source: The version compressed.
        compressed: Its compression.
        version: The candidate's version (``candidate_version``).

    Returns:
        An unsaved version, created today, without a file or eval metrics.
    """
    return source.model_copy(
        update={"version": version, "system": compressed.text, "path": None, "eval_metrics": None,
                "changelog": f"Compressed from {source.version}", "created": dt.date.today()},
    )  # fmt: skip


def ineffective(tokens_before: int, tokens_after: int, min_saving: float) -> str | None:
    """Why a candidate is not worth evaluating, or None.

    Args:
        tokens_before: System-prompt tokens of the source.
        tokens_after: System-prompt tokens of the candidate.
        min_saving: The least share of tokens a candidate must save.

    Returns:
        The reason, or None when the candidate saves enough.

    Example:
        >>> ineffective(1000, 950, 0.1)[:38]
        'saves 5% of 1,000 tokens, less than th'
        >>> ineffective(1000, 600, 0.1) is None
        True
    """
    saving = 1 - tokens_after / tokens_before if tokens_before else 0.0
    if saving >= min_saving:
        return None
    return (
        f"saves {saving:.0%} of {tokens_before:,} tokens, less than the {min_saving:.0%} asked for: LLMLingua barely "
        "compresses short prompts or prompts that are mostly kept verbatim (facts, format sections); nothing to register"
    )


def choose(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate with the fewest tokens among those that passed on every dataset.

    Args:
        candidates: The judged candidates.

    Returns:
        The one to register (the lower rate on a tie), or None when none passed.
    """
    passing = [candidate for candidate in candidates if candidate.status == "passed"]
    return min(passing, key=lambda candidate: (candidate.tokens_after, candidate.rate)) if passing else None


def why_none(candidates: Sequence[Candidate]) -> str:
    """Why nothing was registered: per rate, the metric, its delta and interval, or the other reason.

    Args:
        candidates: The judged candidates.

    Returns:
        One ``rate …: status, note`` clause per candidate.
    """
    return "; ".join(
        f"rate {candidate.rate:g} ({candidate.ratio:.0%} of the tokens): {candidate.status}, {candidate.note}"
        for candidate in candidates
    )


def protection_for(prompt: PromptVersion) -> Protection:
    """The prompt file's own additions to what compression keeps verbatim.

    Args:
        prompt: The version compressed.

    Returns:
        Its ``compression`` hints as a ``Protection`` (the defaults only when it has none).
    """
    hints = prompt.compression
    return Protection(tuple(hints.keep_sections), tuple(hints.keep_patterns)) if hints else Protection()


def changelog(source: PromptVersion, candidate: Candidate) -> str:
    """What a reviewer needs: how it was made, what it weighs, what the evaluation found, what it saves.

    Args:
        source: The version compressed.
        candidate: The chosen, judged candidate.

    Returns:
        The registered version's changelog.
    """
    compressed = candidate.compressed
    verdicts = "; ".join(
        f"{c.verdict} against {source.version} on {c.candidate.dataset_name} (runs {c.baseline.id} and {c.candidate.id})"
        for c in candidate.comparisons
    )
    saving = candidate.projection.summary() if candidate.projection else "no projection"
    return (
        f"Compressed from {source.version} with {compressed.method} ({compressed.model}) at rate {candidate.rate:g}: "
        f"system prompt {candidate.tokens_before:,} → {candidate.tokens_after:,} tokens ({candidate.ratio:.0%}) "
        f"by {source.model}'s count. Evaluation: {verdicts}. Projected saving: {saving}."
    )


class _BlockText(str):
    """A string PyYAML writes as a ``|`` block, like the hand-written prompt files."""


class _QuotedText(str):
    """A string PyYAML writes in double quotes ("1.0.1" must never read back as a number)."""


class _PromptDumper(yaml.SafeDumper):
    pass


_PromptDumper.add_representer(
    _BlockText, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|")
)
_PromptDumper.add_representer(
    _QuotedText, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style='"')
)


def version_file_text(prompt: PromptVersion) -> str:
    """The prompt as a version file, fields in the order people write them.

    Versions, model, date and author are quoted (``"1.0.1"`` must not read back as a number) and
    the system prompt is a ``|`` block, like the hand-written files.

    Args:
        prompt: The version to write.

    Returns:
        The YAML text.
    """
    document: dict[str, Any] = {
        "version": _QuotedText(prompt.version),
        "model": _QuotedText(prompt.model),
        "created": _QuotedText(prompt.created.isoformat()),
        "author": _QuotedText(prompt.author),
        "changelog": prompt.changelog,
        "system": _BlockText(prompt.system),
        "parameters": prompt.parameters.model_dump(exclude_none=True),
    }
    if prompt.compression is not None:
        document["compression"] = prompt.compression.model_dump()
    return yaml.dump(document, Dumper=_PromptDumper, sort_keys=False, allow_unicode=True, width=120)


class RegistrationError(RuntimeError):
    """The candidate could not be written as a version file that reads back identically."""


def _content_hash_of(path: Path) -> str | None:
    try:
        return load_prompt_file(path).content_hash
    except ValueError:
        return None


def write_version_file(prompt: PromptVersion, directory: Path) -> Path:
    """Write ``<directory>/<name>/<version>.yaml`` and read it back: the file must give exactly the
    evaluated content, or it is removed and the error raised. A file already there is never
    overwritten; one holding this very content is accepted, so a retried registration succeeds.

    Args:
        prompt: The version to write (its content hash is what was evaluated).
        directory: The prompts directory.

    Returns:
        The file's path.

    Raises:
        RegistrationError: Another file is there, or the written file does not read back identically.

    Example:
        ```python
        path = write_version_file(chosen.prompt.model_copy(update={"changelog": changelog(source, chosen)}), Path("prompts"))
        ```
    """
    path = directory / prompt.name / f"{prompt.version}{PROMPT_FILE_SUFFIX}"
    if path.exists():
        if _content_hash_of(path) == prompt.content_hash:
            return path
        raise RegistrationError(f"{path} already exists with other content: a released version is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:
        handle.write(version_file_text(prompt))
    try:
        written = load_prompt_file(path)
    except ValueError as exc:
        path.unlink()
        raise RegistrationError(f"{path} did not read back as a prompt version: {exc}") from exc
    if written.content_hash != prompt.content_hash:
        path.unlink()
        raise RegistrationError(
            f"{path} read back with different content (hash {written.content_hash[:12]}, expected {prompt.content_hash[:12]})"
        )
    return path


def candidate_rows(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The artifact's table: one row per rate, metrics as delta and interval.

    Args:
        candidates: The judged candidates.

    Returns:
        Rows with the same columns (``–`` where a candidate has no value), for a Markdown table.
    """
    rows: list[dict[str, Any]] = []
    for candidate in candidates:
        row: dict[str, Any] = {
            "rate": candidate.rate,
            "tokens": f"{candidate.tokens_before:,} → {candidate.tokens_after:,}",
            "ratio": f"{candidate.ratio:.0%}",
        }
        for comparison in candidate.comparisons:
            for metric in comparison.metrics:
                shown = (
                    f"{metric.delta:+.3f} {interval_text(metric.interval)}"
                    if metric.delta is not None and metric.interval
                    else "–"
                )
                row[
                    metric.metric if len(candidate.comparisons) == 1 else f"{comparison.candidate.dataset_name}:{metric.metric}"
                ] = shown
        row["verdict"] = candidate.verdict or candidate.status
        row["$/month saved"] = f"{candidate.projection.usd_per_month:,.2f}" if candidate.projection else "–"
        row["status"] = candidate.status
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{column: row.get(column, "–") for column in columns} for row in rows]
