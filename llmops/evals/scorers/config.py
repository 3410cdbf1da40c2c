"""Per-prompt scorer configuration: ``evals/<prompt>/scorers.yaml``, validated with line numbers.

Which scorers a prompt's evaluation runs, how each weighs in the overall score, where each
one's pass line is, and which pinned judge grades: all of it beside the prompt's datasets, so
a change to how a prompt is scored is reviewed like a change to its examples. A bad file is
reported all at once, each problem as ``path:line: field: message``, like a bad dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.evals.datasets import ASSERTION_TYPES, UNION_TAGS, Assertion, prompt_evals_dir
from llmops.evals.embeddings import Embedder
from llmops.evals.scorers.assertions import AssertionScorer
from llmops.evals.scorers.base import Score, Scorer
from llmops.evals.scorers.judge import JUDGE_PROMPTS, LATEST_JUDGE_PROMPT, JudgeScorer
from llmops.evals.scorers.similarity import SimilarityScorer
from llmops.prompts import Problem, YAMLLimitError, compose_and_load, is_pinned_model, read_limited

SCORER_CONFIG_FILE = "scorers.yaml"
CONFIG_FIELDS = ("judge", "scorers")
BRANCH_TAGS = frozenset(ASSERTION_TYPES) | UNION_TAGS
"""Names pydantic puts in error locations for union branches; not fields a user wrote."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Weight = Annotated[float, Field(ge=0)]
Threshold = Annotated[float, Field(ge=0, le=1)]


class AssertionsSpec(_Config):
    """The ``assertions`` scorer: its weight, pass line, and assertions checked on every example."""

    weight: Weight = 1.0
    threshold: Threshold | None = None
    extra: list[Assertion] = Field(default_factory=list)
    """Assertions checked on every example, in addition to its own (a cost or latency budget)."""


class SimilaritySpec(_Config):
    """The ``similarity`` scorer: its weight, pass line, and the JSON field to compare."""

    weight: Weight = 1.0
    threshold: Threshold | None = None
    field: str | None = None
    """For JSON outputs: the key whose text is compared with ``expected``."""


class JudgeSpec(_Config):
    """The ``judge`` scorer: its weight, pass line, and the default rubric."""

    weight: Weight = 1.0
    threshold: Threshold | None = None
    rubric: str | None = None
    """The rubric for examples that bring none of their own."""


class ScorersSection(_Config):
    """The ``scorers`` section: which of the three scorers run."""

    assertions: AssertionsSpec | None = None
    similarity: SimilaritySpec | None = None
    judge: JudgeSpec | None = None


class JudgeConfig(_Config):
    """The ``judge`` section: the pinned judge model, its instructions' version, its reply budget."""

    model: str
    prompt_version: str = LATEST_JUDGE_PROMPT
    max_tokens: Annotated[int, Field(gt=0)] = 512

    @field_validator("model")
    @classmethod
    def _pinned(cls, model: str) -> str:
        if not is_pinned_model(model):
            raise ValueError(f"{model!r} is an alias; pin a dated judge model id, e.g. claude-sonnet-4-20250514")
        return model

    @field_validator("prompt_version")
    @classmethod
    def _known(cls, version: str) -> str:
        if version not in JUDGE_PROMPTS:
            raise ValueError(f"no judge prompt version {version!r}; known: {', '.join(JUDGE_PROMPTS)}")
        return version


class ScorerConfig(_Config):
    """Which scorers a prompt's evaluation runs, how they weigh in the overall score, and pass lines.

    Read one with ``load_scorer_config``; the runner builds the scorers from it and stores each
    case's weighted ``overall`` score beside the scorers' own.

    Args:
        prompt_name: The prompt the configuration belongs to.
        path: The file it was read from, if any.
        judge: The pinned judge; required when the judge scorer is configured.
        scorers: The scorers, with weights, thresholds and their options.

    Raises:
        pydantic.ValidationError: If no scorer is configured, the weights add up to 0, or the
            judge scorer has no judge section.

    Example:
        >>> config = ScorerConfig.model_validate(
        ...     {"prompt_name": "chat", "scorers": {"assertions": {"weight": 2}, "similarity": {"threshold": 0.6}}}
        ... )
        >>> list(config.specs()), config.overall({"assertions": 1.0, "similarity": 0.5})
        (['assertions', 'similarity'], 0.8333333333333334)
    """

    prompt_name: str
    path: Path | None = None
    judge: JudgeConfig | None = None
    scorers: ScorersSection

    @model_validator(mode="after")
    def _consistent(self) -> ScorerConfig:
        specs = self.specs()
        if not specs:
            raise ValueError("scorers: configure at least one of assertions, similarity, judge")
        if sum(spec.weight for spec in specs.values()) <= 0:
            raise ValueError("scorers: the weights add up to 0; give at least one scorer a positive weight")
        if "judge" in specs and self.judge is None:
            raise ValueError("judge: the judge scorer needs a 'judge' section with the pinned judge model")
        return self

    def specs(self) -> dict[str, AssertionsSpec | SimilaritySpec | JudgeSpec]:
        """The configured scorers by name (their metric names), in a fixed order."""
        section = self.scorers
        found = {"assertions": section.assertions, "similarity": section.similarity, "judge": section.judge}
        return {name: spec for name, spec in found.items() if spec is not None}

    def build(self, *, judge_client: Any = None, embedder: Embedder | None = None) -> list[Scorer]:
        """The scorers, ready to run.

        Args:
            judge_client: What the judge calls (an Anthropic client); needed when a judge is configured.
            embedder: The similarity scorer's embedder; the shared default one when None.

        Returns:
            One scorer per configured spec, in ``specs()`` order.

        Raises:
            ValueError: If a judge is configured and ``judge_client`` is None.
        """
        built: list[Scorer] = []
        for name, spec in self.specs().items():
            if isinstance(spec, AssertionsSpec):
                built.append(AssertionScorer(spec.extra, name=name))
            elif isinstance(spec, SimilaritySpec):
                built.append(SimilarityScorer(embedder, field=spec.field, name=name))
            else:
                if judge_client is None or self.judge is None:
                    raise ValueError(f"{self.prompt_name}: the judge scorer needs a judge_client (an Anthropic client)")
                built.append(JudgeScorer(
                    judge_client, self.judge.model, self.judge.prompt_version,
                    default_rubric=spec.rubric, max_tokens=self.judge.max_tokens, name=name,
                ))  # fmt: skip
        return built

    def passed(self, name: str, value: float) -> bool | None:
        """Whether a score clears its scorer's threshold; None when the scorer has none."""
        threshold = self.specs()[name].threshold
        return None if threshold is None else value >= threshold

    def overall(self, scores: Mapping[str, Score | float | None]) -> float | None:
        """Weighted mean of the scores present; scorers that did not apply drop out of the weights."""
        total = weight_sum = 0.0
        for name, spec in self.specs().items():
            score = scores.get(name)
            if score is None or spec.weight == 0:
                continue
            total += spec.weight * (score.value if isinstance(score, Score) else float(score))
            weight_sum += spec.weight
        return total / weight_sum if weight_sum else None


class ScorerConfigError(ValueError):
    """A bad ``scorers.yaml``; the message lists every problem as ``path:line: field: message``.

    Args:
        problems: Every problem found, in line order.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def _line_of(root: yaml.Node, loc: Sequence[str | int]) -> int:
    """The line of the deepest part of ``loc`` present in the YAML tree."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            matches = [(key, value) for key, value in node.value if str(key.value) == str(part)]
            if not matches:
                break
            key, node = matches[-1]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _config_problem_message(item: Any) -> str:
    if item["type"] == "missing":
        return "missing required field"
    if item["type"] == "extra_forbidden":
        return "unknown field"
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] == "value_error" or isinstance(item.get("input"), dict | list):
        return message
    return f"{message}, got {item['input']!r}"


def parse_scorer_config(path: Path | str, prompt_name: str | None = None) -> ScorerConfig:
    """Read one ``scorers.yaml``, reporting every problem with its line.

    Args:
        path: The file.
        prompt_name: The prompt it configures; the file's directory name when None.

    Returns:
        The validated configuration.

    Raises:
        ScorerConfigError: Listing each problem as ``path:line: field: message``.

    Example:
        ```python
        config = parse_scorer_config("evals/support-chat/scorers.yaml")
        config.judge.model  # 'claude-sonnet-4-20250514'
        ```
    """
    path = Path(path)
    try:
        text = read_limited(path).decode("utf-8")
        root, data = compose_and_load(text)
    except YAMLLimitError as exc:
        raise ScorerConfigError([Problem(path, exc.line, "yaml", str(exc))]) from None
    except UnicodeDecodeError as exc:
        raise ScorerConfigError([Problem(path, 1, "file", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ScorerConfigError([Problem(path, line, "yaml", f"not valid YAML: {exc.problem}")]) from None
    if root is None or not isinstance(data, dict):
        raise ScorerConfigError([Problem(path, 1, "document", "expected a mapping with 'scorers' (and 'judge')")])
    problems = [
        Problem(path, _line_of(root, [key]), str(key), "unknown field; expected judge, scorers")
        for key in data if key not in CONFIG_FIELDS
    ]  # fmt: skip
    fields = {key: data[key] for key in CONFIG_FIELDS if key in data}
    try:
        config = ScorerConfig.model_validate({**fields, "prompt_name": prompt_name or path.parent.name, "path": path})
    except ValidationError as exc:
        for item in exc.errors():
            loc = [part for part in item["loc"] if not (isinstance(part, str) and part in BRANCH_TAGS)]
            field_name, message = ".".join(str(part) for part in loc), _config_problem_message(item)
            if not loc and ":" in message:  # a whole-file check names its field first
                field_name, message = (part.strip() for part in message.split(":", 1))
                loc = [field_name]
            problems.append(Problem(path, _line_of(root, loc), field_name or "document", message))
    if problems:
        raise ScorerConfigError(sorted(problems, key=lambda problem: problem.line))
    return config


def load_scorer_config(prompt_name: str, directory: Path | str | None = None) -> ScorerConfig:
    """``<evals dir>/<prompt_name>/scorers.yaml``, validated.

    Args:
        prompt_name: The prompt whose configuration to read.
        directory: The evals directory; ``LLMOPS_EVALS_DIR`` (or its default) when None.

    Returns:
        The validated configuration.

    Raises:
        FileNotFoundError: If the prompt has no evals folder or no ``scorers.yaml`` in it.
        ScorerConfigError: If the file is invalid.

    Example:
        ```python
        config = load_scorer_config("support-chat")
        scorers = config.build(judge_client=anthropic.Anthropic())
        ```
    """
    path = prompt_evals_dir(prompt_name, directory) / SCORER_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scorer configuration for prompt {prompt_name!r}")
    return parse_scorer_config(path, prompt_name)
