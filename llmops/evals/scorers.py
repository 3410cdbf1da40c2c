"""Scorers: each turns one output for one example into a ``Score`` in [0, 1] with a reason.

Three kinds, cheapest first: deterministic assertions (the checks a CI would run), semantic
similarity to a reference answer (all-MiniLM-L6-v2, offline), and an LLM judge with a rubric
through a pinned judge model. A judge is itself a model call: its model, the version of its
instructions and its cost are recorded with every score, so a judge change is never mistaken
for a quality change and evaluation spend is counted. Which scorers a prompt uses, their
weights and pass thresholds live beside its datasets in ``evals/<prompt>/scorers.yaml``.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import anthropic
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.evals.datasets import (
    ASSERTION_TYPES,
    UNION_TAGS,
    Assertion,
    Contains,
    Equals,
    EvalExample,
    JsonSchema,
    JsonValid,
    MaxCost,
    MaxLatency,
    MaxLength,
    NotContains,
    Regex,
    prompt_evals_dir,
)
from llmops.evals.embeddings import Embedder, cosine_similarity, default_embedder
from llmops.pricing import TokenUsage, price_call
from llmops.prompts import Problem, is_pinned_model

SCORER_CONFIG_FILE = "scorers.yaml"
CONFIG_FIELDS = ("judge", "scorers")
BRANCH_TAGS = frozenset(ASSERTION_TYPES) | UNION_TAGS
"""Names pydantic puts in error locations for union branches; not fields a user wrote."""


@dataclass(frozen=True, slots=True)
class ScorerInput:
    """One output of the model under evaluation, with what the call cost and took."""

    text: str
    model: str | None = None
    cost_usd: Decimal | float | None = None
    """None when the call could not be priced (unknown model); never read as 0."""
    latency_ms: float | None = None
    usage: TokenUsage | None = None


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.value, int | float) and math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise ValueError(f"a score is a number in [0, 1], got {self.value!r}")


class Scorer(ABC):
    """Scores one output. ``applies`` says whether the example has what the scorer needs."""

    name: str

    def applies(self, example: EvalExample) -> bool:
        return True

    @abstractmethod
    def score(self, example: EvalExample, output: ScorerInput) -> Score: ...

    async def ascore(self, example: EvalExample, output: ScorerInput) -> Score:
        """The async runner's entry point; only scorers that do I/O override it."""
        return self.score(example, output)


# --- deterministic assertions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssertionResult:
    passed: bool
    reason: str


def _phrases(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _parse_json(text: str) -> tuple[Any, str | None]:
    """The output as JSON (surrounding whitespace allowed, nothing else), or the parse error."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _check_json_schema(schema: dict[str, Any], text: str) -> AssertionResult:
    try:
        import jsonschema
    except ImportError as exc:
        raise RuntimeError("json_schema assertions need the jsonschema package: pip install jsonschema") from exc
    data, error = _parse_json(text)
    if error:
        return AssertionResult(False, error)
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return AssertionResult(True, "JSON matches the schema")
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(root)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return AssertionResult(False, f"JSON does not match the schema at {where}: {first.message}{more}")


def check_assertion(assertion: Assertion, output: ScorerInput) -> AssertionResult:
    """Whether one deterministic check holds for ``output``, and why (or why not)."""
    text = output.text
    match assertion:
        case Equals(value=value, ignore_case=ignore_case):
            ok = _fold(text.strip(), ignore_case) == _fold(value.strip(), ignore_case)
            return AssertionResult(ok, "output equals the expected text" if ok else f"output is not {value!r}")
        case Contains(value=value, ignore_case=ignore_case):
            haystack = _fold(text, ignore_case)
            missing = [p for p in _phrases(value) if _fold(p, ignore_case) not in haystack]
            return AssertionResult(not missing, f"missing {missing!r}" if missing else f"contains {value!r}")
        case NotContains(value=value, ignore_case=ignore_case):
            haystack = _fold(text, ignore_case)
            found = [p for p in _phrases(value) if _fold(p, ignore_case) in haystack]
            return AssertionResult(not found, f"contains {found!r}" if found else f"does not contain {value!r}")
        case Regex(value=pattern, ignore_case=ignore_case):
            ok = re.search(pattern, text, re.IGNORECASE if ignore_case else 0) is not None
            return AssertionResult(ok, f"{'matches' if ok else 'does not match'} /{pattern}/")
        case JsonValid():
            _, error = _parse_json(text)
            return AssertionResult(error is None, error or "valid JSON")
        case JsonSchema(value=schema):
            return _check_json_schema(schema, text)
        case MaxLength(value=limit):
            ok = len(text) <= limit
            return AssertionResult(ok, f"{len(text)} characters {'<=' if ok else '>'} {limit}")
        case MaxCost(value=limit):
            if output.cost_usd is None:
                return AssertionResult(False, "cost unknown (the model is not priced), so not within the limit")
            ok = float(output.cost_usd) <= limit
            return AssertionResult(ok, f"cost ${float(output.cost_usd):.6f} {'<=' if ok else '>'} ${limit}")
        case MaxLatency(value=limit):
            if output.latency_ms is None:
                return AssertionResult(False, "latency not recorded")
            ok = output.latency_ms <= limit
            return AssertionResult(ok, f"latency {output.latency_ms:.0f} ms {'<=' if ok else '>'} {limit:.0f} ms")
    raise TypeError(f"not an assertion: {assertion!r}")


class AssertionScorer(Scorer):
    """The fraction of an example's assertions (plus the config's, for every example) that hold.

    A fraction rather than all-or-nothing, so that a version passing more checks scores higher
    and the paired comparison of two versions sees it; the threshold decides pass/fail.
    """

    def __init__(self, extra: Sequence[Assertion] = (), name: str = "assertions") -> None:
        self.name = name
        self.extra = list(extra)

    def applies(self, example: EvalExample) -> bool:
        return bool(self.extra or example.assertions)

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        checks = [*self.extra, *example.assertions]
        if not checks:
            raise ValueError(f"example {example.id!r} has no assertions to score")
        results = [(assertion, check_assertion(assertion, output)) for assertion in checks]
        passed = sum(result.passed for _, result in results)
        failed = [f"{assertion.type}: {result.reason}" for assertion, result in results if not result.passed]
        reason = f"{passed}/{len(results)} assertions passed" + (f"; failed: {'; '.join(failed)}" if failed else "")
        details = {
            "assertions": [
                {"type": assertion.type, "passed": result.passed, "reason": result.reason} for assertion, result in results
            ]
        }
        return Score(passed / len(results), reason, details)


# --- semantic similarity ----------------------------------------------------------------------


def _field_text(text: str, field_name: str | None) -> tuple[str, str]:
    """The text to compare: a JSON output's ``field_name`` when present, else the whole output."""
    if field_name is None:
        return text, "output"
    data, error = _parse_json(text)
    if error is None and isinstance(data, dict) and isinstance(data.get(field_name), str):
        return data[field_name], f"output.{field_name}"
    return text, "output"


class SimilarityScorer(Scorer):
    """Cosine similarity of the output to ``expected``, negative cosines clipped to 0.

    For a prompt that answers in JSON, ``field`` names the key holding the prose to compare
    (``summary``), so format and content are scored separately: assertions check the format.
    """

    def __init__(self, embedder: Embedder | None = None, field: str | None = None, name: str = "similarity") -> None:
        self.name = name
        self.field = field
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def applies(self, example: EvalExample) -> bool:
        return example.expected is not None

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
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


# --- LLM as judge -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's instructions; a released version never changes (its scores are compared)."""

    system: str
    user_template: str
    retry_message: str


JUDGE_PROMPTS: dict[str, JudgePrompt] = {
    "1.0.0": JudgePrompt(
        system=(
            "You are an impartial grader of answers written by an AI assistant for Acme Corp. "
            "You grade one answer against the rubric you are given, and nothing else: not its style "
            "unless the rubric asks, not what you would have written.\n"
            "Scale: 5 = meets every point of the rubric; 4 = minor omission; 3 = meets about half; "
            "2 = mostly misses; 1 = wrong, harmful or off-topic.\n"
            'Reply with JSON only, no other text: {"score": <integer 1-5>, "reason": "<one or two sentences>"}'
        ),
        user_template=(
            "<conversation>\n{conversation}\n</conversation>\n"
            "{reference}"
            "<answer>\n{answer}\n</answer>\n"
            "<rubric>\n{rubric}\n</rubric>\n"
            'Grade the answer against the rubric. Reply with JSON only: {{"score": <1-5>, "reason": "..."}}'
        ),
        retry_message=(
            "Your reply could not be read ({error}). Reply again with JSON only, exactly in the shape "
            '{{"score": 4, "reason": "one or two sentences"}}, and nothing else.'
        ),
    ),
}
"""Judge instructions by version. Add a new version rather than editing one: past scores were
given under the old text, and a run records which version graded it."""
LATEST_JUDGE_PROMPT = "1.0.0"


class JudgeParseError(ValueError):
    """The judge's reply is not a readable ``{score, reason}``."""


class JudgeOutputError(RuntimeError):
    """The judge answered unreadably twice; ``details`` carries its outputs and the cost spent."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def _candidate_objects(text: str) -> Iterator[Any]:
    """JSON values found in a reply: the whole text, fenced blocks, then each ``{…}`` in it."""
    stripped = text.strip()
    try:
        yield json.loads(stripped)
    except json.JSONDecodeError:
        pass
    for block in FENCED.findall(text):
        try:
            yield json.loads(block)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            yield decoder.raw_decode(text, match.start())[0]
        except json.JSONDecodeError:
            continue


def _judge_score(raw: Any) -> float:
    if isinstance(raw, bool):
        raise JudgeParseError(f"score must be a number from 1 to 5, got {raw!r}")
    if isinstance(raw, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*", raw)
        if match is None:
            raise JudgeParseError(f"score must be a number from 1 to 5, got {raw!r}")
        raw = float(match.group(1))
    if not isinstance(raw, int | float) or not math.isfinite(raw) or not 1 <= raw <= 5:
        raise JudgeParseError(f"score must be a number from 1 to 5, got {raw!r}")
    return float(raw)


def parse_judge_output(text: str) -> tuple[float, str]:
    """The judge's 1-5 score and reason from its reply, tolerating prose or fences around the JSON."""
    problem = "no JSON object in the reply"
    for candidate in _candidate_objects(text):
        if not isinstance(candidate, dict):
            continue
        if "score" not in candidate:
            problem = "the JSON object has no 'score'"
            continue
        reason = candidate.get("reason", "")
        return _judge_score(candidate["score"]), reason if isinstance(reason, str) else json.dumps(reason)
    raise JudgeParseError(problem)


SDK_PARAMETERS = frozenset(inspect.signature(anthropic.resources.messages.Messages.create).parameters) - {"self"}
"""Keyword arguments this SDK version's ``messages.create`` takes (sync and async alike); it dropped
some sampling parameters (``temperature``, ``top_p``, ``top_k``) from its signature, which the API
still accepts."""


def sdk_arguments(request: dict[str, Any]) -> dict[str, Any]:
    """``messages.create`` keyword arguments, with what the SDK has no argument for sent as ``extra_body``."""
    known = {name: value for name, value in request.items() if name in SDK_PARAMETERS}
    extra = {name: value for name, value in request.items() if name not in SDK_PARAMETERS}
    return {**known, "extra_body": extra} if extra else known


def _response_text(response: Any) -> str:
    return "".join(getattr(block, "text", "") for block in response.content if getattr(block, "type", "text") == "text")


def _response_usage(response: Any) -> TokenUsage:
    usage = response.usage
    return TokenUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
    )


def _conversation_text(example: EvalExample) -> str:
    return "\n".join(f"{message['role']}: {message['content']}" for message in example.messages())


class JudgeScorer(Scorer):
    """LLM-as-judge: the pinned ``judge_model`` grades the output 1-5 against the example's rubric.

    ``client`` is an ``anthropic.Anthropic`` (use ``score``) or ``anthropic.AsyncAnthropic``
    (use ``ascore``), or anything with the same ``messages.create``. A malformed reply is asked
    for again once; a second one raises ``JudgeOutputError`` rather than inventing a score.
    """

    def __init__(
        self,
        client: Any,
        judge_model: str,
        judge_prompt_version: str = LATEST_JUDGE_PROMPT,
        *,
        default_rubric: str | None = None,
        max_tokens: int = 512,
        name: str = "judge",
    ) -> None:
        if not is_pinned_model(judge_model):
            raise ValueError(f"judge model {judge_model!r} is an alias; pin a dated model id so scores stay comparable")
        if judge_prompt_version not in JUDGE_PROMPTS:
            raise ValueError(f"no judge prompt version {judge_prompt_version!r} (known: {', '.join(JUDGE_PROMPTS)})")
        self.name = name
        self.client = client
        self.judge_model = judge_model
        self.judge_prompt_version = judge_prompt_version
        self.prompt = JUDGE_PROMPTS[judge_prompt_version]
        self.default_rubric = default_rubric
        self.max_tokens = max_tokens

    def applies(self, example: EvalExample) -> bool:
        return (example.rubric or self.default_rubric) is not None

    def request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Keyword arguments of ``messages.create`` for one judge call, sync or async client."""
        return sdk_arguments({"model": self.judge_model, "system": self.prompt.system, "messages": messages,
                              "max_tokens": self.max_tokens, "temperature": 0.0})  # fmt: skip

    def first_message(self, example: EvalExample, output: ScorerInput) -> str:
        rubric = example.rubric or self.default_rubric
        if rubric is None:
            raise ValueError(f"example {example.id!r} has no rubric and the judge has no default rubric")
        reference = f"<reference_answer>\n{example.expected}\n</reference_answer>\n" if example.expected else ""
        return self.prompt.user_template.format(
            conversation=_conversation_text(example), reference=reference, answer=output.text, rubric=rubric
        )

    def _dialogue(self, example: EvalExample, output: ScorerInput) -> Generator[dict[str, Any], Any, Score]:
        """The judge exchange without I/O: yields each request, receives each response."""
        messages = [{"role": "user", "content": self.first_message(example, output)}]
        usages: list[TokenUsage] = []
        replies: list[str] = []
        response_model = None
        for attempt in (1, 2):
            response = yield self.request(messages)
            text = _response_text(response)
            replies.append(text)
            usages.append(_response_usage(response))
            response_model = getattr(response, "model", None)
            try:
                stars, reason = parse_judge_output(text)
            except JudgeParseError as exc:
                if attempt == 2:
                    details = self._details(usages, response_model, attempts=attempt, replies=replies)
                    message = f"judge {self.judge_model} gave no readable score twice: {exc}"
                    raise JudgeOutputError(message, details) from exc
                if text.strip():
                    retry = self.prompt.retry_message.format(error=exc)
                    messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": retry}]
                continue
            details = self._details(usages, response_model, attempts=attempt, stars=stars)
            return Score((stars - 1.0) / 4.0, reason or f"judge gave {stars:g}/5", details)
        raise AssertionError("unreachable: the loop returns or raises")

    def _details(self, usages: list[TokenUsage], response_model: str | None, **extra: Any) -> dict[str, Any]:
        """Who judged, with which instructions, and what it cost (None: the judge model is unpriced)."""
        costs = [price_call(self.judge_model, usage, datetime.now(UTC)) for usage in usages]
        cost = None if any(c is None for c in costs) else sum(costs, Decimal(0))
        return {
            "judge_model": self.judge_model,
            "judge_response_model": response_model,
            "judge_prompt_version": self.judge_prompt_version,
            "judge_input_tokens": sum(u.input_tokens for u in usages),
            "judge_output_tokens": sum(u.output_tokens for u in usages),
            "judge_cost_usd": None if cost is None else str(cost),
            **extra,
        }

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        dialogue = self._dialogue(example, output)
        request = next(dialogue)
        while True:
            response = self.client.messages.create(**request)
            if inspect.isawaitable(response):
                if hasattr(response, "close"):
                    response.close()
                raise TypeError("the judge client is async: call ascore() instead of score()")
            try:
                request = dialogue.send(response)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def ascore(self, example: EvalExample, output: ScorerInput) -> Score:
        dialogue = self._dialogue(example, output)
        request = next(dialogue)
        while True:
            response: Any = self.client.messages.create(**request)
            if inspect.isawaitable(response):
                response = await response
            try:
                request = dialogue.send(response)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


# --- per-prompt configuration: evals/<prompt>/scorers.yaml ------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Weight = Annotated[float, Field(ge=0)]
Threshold = Annotated[float, Field(ge=0, le=1)]


class AssertionsSpec(_Config):
    weight: Weight = 1.0
    threshold: Threshold | None = None
    extra: list[Assertion] = Field(default_factory=list)
    """Assertions checked on every example, in addition to its own (a cost or latency budget)."""


class SimilaritySpec(_Config):
    weight: Weight = 1.0
    threshold: Threshold | None = None
    field: str | None = None
    """For JSON outputs: the key whose text is compared with ``expected``."""


class JudgeSpec(_Config):
    weight: Weight = 1.0
    threshold: Threshold | None = None
    rubric: str | None = None
    """The rubric for examples that bring none of their own."""


class ScorersSection(_Config):
    assertions: AssertionsSpec | None = None
    similarity: SimilaritySpec | None = None
    judge: JudgeSpec | None = None


class JudgeConfig(_Config):
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
    """Which scorers a prompt's evaluation runs, how they weigh in the overall score, and pass lines."""

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
        """The scorers, ready to run; a judge scorer needs ``judge_client``."""
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
    """A bad ``scorers.yaml``; the message lists every problem as ``path:line: field: message``."""

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
    """Read one ``scorers.yaml``; raises ``ScorerConfigError`` with a line for each problem."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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
    """``<evals dir>/<prompt_name>/scorers.yaml``, validated."""
    path = prompt_evals_dir(prompt_name, directory) / SCORER_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scorer configuration for prompt {prompt_name!r}")
    return parse_scorer_config(path, prompt_name)


def judge_cost(details: dict[str, Any]) -> Decimal:
    """What the judge calls behind a score's (or a JudgeOutputError's) details cost; zero when no
    judge was called or its model is unpriced."""
    cost = details.get("judge_cost_usd")
    return Decimal(cost) if cost is not None else Decimal(0)
