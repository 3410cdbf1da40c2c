"""LLM as judge: a pinned judge model grades an output 1-5 against a rubric, with its cost counted.

A judge is itself a model call, so everything that makes its scores comparable is pinned and
recorded with every score: the dated judge model, the version of its instructions (a released
version's text never changes) and what the call cost. Its reply is read tolerantly (prose or
fences around the JSON); a reply that still cannot be read is asked for once more, and a
second failure is an error rather than an invented score. The exchange is written once,
without I/O, and driven by a sync or an async client.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic

from llmops.evals.datasets import EvalExample
from llmops.evals.scorers.base import Score, Scorer, ScorerInput
from llmops.pricing import TokenUsage, price_call
from llmops.prompts import is_pinned_model


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's instructions; a released version never changes (its scores are compared).

    Args:
        system: The judge's system prompt, with the 1-5 scale and the reply format.
        user_template: The first message; ``{conversation}``, ``{reference}``, ``{answer}``, ``{rubric}``.
        retry_message: What is sent after an unreadable reply; ``{error}`` says what was wrong.
    """

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
    """The judge answered unreadably twice; ``details`` carries its outputs and the cost spent.

    Args:
        message: What went wrong.
        details: The judge's model, prompt version, token counts, cost and ``replies``.
    """

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
    """The judge's 1-5 score and reason from its reply, tolerating prose or fences around the JSON.

    Args:
        text: The judge's reply.

    Returns:
        ``(stars, reason)``; the reason is ``""`` when the judge gave none.

    Raises:
        JudgeParseError: If no JSON object in the reply has a ``score`` from 1 to 5.

    Example:
        >>> parse_judge_output('Here is my grade: {"score": "4/5", "reason": "Misses the fee."}')
        (4.0, 'Misses the fee.')
    """
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
    """``messages.create`` keyword arguments, with what the SDK has no argument for sent as ``extra_body``.

    Args:
        request: A Messages API request body.

    Returns:
        The same request as keyword arguments this SDK version accepts.

    Example:
        >>> sdk_arguments({"model": "claude-sonnet-4-20250514", "max_tokens": 10, "temperature": 0.0})["extra_body"]
        {'temperature': 0.0}
    """
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
    Stars map to [0, 1] as ``(stars - 1) / 4``.

    Args:
        client: What the judge calls: ``messages.create(**request)``, sync or async.
        judge_model: A dated model id (an alias would let scores drift with the alias).
        judge_prompt_version: A key of ``JUDGE_PROMPTS``.
        default_rubric: The rubric for examples that bring none of their own.
        max_tokens: The judge's reply budget.
        name: The metric the score is stored under.

    Raises:
        ValueError: If ``judge_model`` is an alias or the prompt version is unknown.

    Example:
        ```python
        judge = JudgeScorer(anthropic.Anthropic(), "claude-sonnet-4-20250514", default_rubric="States the 30-day window.")
        score = judge.score(example, ScorerInput(text="You have 30 days."))
        score.value  # 0.75 for 4 stars; score.details has the judge model, prompt version and cost
        ```
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
        """Whether there is a rubric to grade against: the example's or the default one."""
        return (example.rubric or self.default_rubric) is not None

    def request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Keyword arguments of ``messages.create`` for one judge call, sync or async client."""
        return sdk_arguments({"model": self.judge_model, "system": self.prompt.system, "messages": messages,
                              "max_tokens": self.max_tokens, "temperature": 0.0})  # fmt: skip

    def first_message(self, example: EvalExample, output: ScorerInput) -> str:
        """The judge's first message: the conversation, the reference answer if any, the answer and the rubric."""
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
        priced = [cost for cost in costs if cost is not None]
        total = sum(priced, Decimal(0)) if len(priced) == len(costs) else None
        return {
            "judge_model": self.judge_model,
            "judge_response_model": response_model,
            "judge_prompt_version": self.judge_prompt_version,
            "judge_input_tokens": sum(u.input_tokens for u in usages),
            "judge_output_tokens": sum(u.output_tokens for u in usages),
            "judge_cost_usd": None if total is None else str(total),
            **extra,
        }

    def score(self, example: EvalExample, output: ScorerInput) -> Score:
        """Grade with a synchronous client; an async one raises ``TypeError`` (use ``ascore``)."""
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
                return done.value

    async def ascore(self, example: EvalExample, output: ScorerInput) -> Score:
        """Grade with an async client (a sync one works too)."""
        dialogue = self._dialogue(example, output)
        request = next(dialogue)
        while True:
            response: Any = self.client.messages.create(**request)
            if inspect.isawaitable(response):
                response = await response
            try:
                request = dialogue.send(response)
            except StopIteration as done:
                return done.value


def judge_cost(details: dict[str, Any]) -> Decimal:
    """What the judge calls behind a score's (or a ``JudgeOutputError``'s) details cost.

    Args:
        details: ``Score.details`` or ``JudgeOutputError.details``.

    Returns:
        The cost in USD; zero when no judge was called or its model is unpriced.

    Example:
        >>> judge_cost({"judge_cost_usd": "0.0021"}), judge_cost({"assertions": []})
        (Decimal('0.0021'), Decimal('0'))
    """
    cost = details.get("judge_cost_usd")
    return Decimal(cost) if cost is not None else Decimal(0)
