"""The ``grading`` task: an LLM judge's score for an answer, from what a careful grader would check.

The grader reads the ``<answer>``, ``<rubric>``, ``<reference_answer>`` and ``<conversation>``
of its request and scores the facts stated, the behaviours the rubric asks for, the coverage of
the expected content, and numbers nothing supports (``grade``); its own seeded noise shrinks
with model size, so judge agreement behaves as it does with real judges.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from llmops.sim.config import Tier
from llmops.sim.knowledge import GRADING_RULES, REFUSAL_MARKERS, RUBRIC_WORDS, STOPWORDS
from llmops.sim.tasks.ask import Answer, Ask
from llmops.sim.tasks.summary import WORD, split_sentences

GRADER_PROMPT = re.compile(r"\b(grader|grade|grading|judge|evaluator)\b", re.I)
SCORE_FIELD = re.compile(r"[\"']score[\"']")
SCORE_SCALE = re.compile(r"score[^0-9]{0,40}(\d+)\s*(?:-|–|to)\s*(\d+)", re.I | re.S)
NUMBER = re.compile(r"[$#]?\d+(?:[.,]\d+)*(?:-\d+)?")
QUOTED = re.compile(r"'([^']{2,40})'")
MENU_PATH = re.compile(r"\b[A-Z]\w+(?: > [A-Z]\w+)+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ASKED_VERDICT = re.compile(r"\bverdict (request_changes|approve_with_comments|approve)\b")
ASKED_SENTENCES = re.compile(
    r"\b(one|two|three|four|five)(?: or (two|three|four|five|six))? (?:plain |short )?sentences?\b", re.I
)
COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
JUDGE_NOISE: dict[Tier, float] = {"haiku": 0.7, "sonnet": 0.45, "opus": 0.3}
"""Standard deviation of a grader's score, in points of a 1-5 scale: smaller models grade less consistently."""
INVENTED_PENALTY, MAX_INVENTED_PENALTY = 0.05, 0.2


def is_grading_request(system: str, transcript: str) -> bool:
    """A grader's instructions, with an ``<answer>`` to grade or a ``score`` to reply with.

    Args:
        system: The system prompt.
        transcript: Every user turn.

    Returns:
        True when the request is for a judge rather than the application.

    Example:
        >>> is_grading_request("You are a strict grader.", "<answer>42</answer>")
        True
    """
    return bool(GRADER_PROMPT.search(system) and (tagged("answer", transcript) is not None or SCORE_FIELD.search(system)))


def tagged(tag: str, text: str) -> str | None:
    """The content of the first ``<tag>…</tag>`` in ``text``, stripped, or None.

    Example:
        >>> tagged("rubric", "<rubric> Mention the 30 days. </rubric>")
        'Mention the 30 days.'
    """
    match = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.S | re.I)
    return match.group(1) if match else None


def numbers(text: str) -> set[str]:
    """The numbers in ``text`` as written (amounts, ranges, ids).

    Example:
        >>> sorted(numbers("Refunds within 30 days; express costs $14.99, 5-7 days."))
        ['$14.99', '30', '5-7']
    """
    return set(NUMBER.findall(text))


@dataclass(frozen=True)
class Grade:
    """A grader's findings on one answer; ``quality`` in [0, 1] before the grader's own noise."""

    quality: float
    strengths: list[str]
    problems: list[str]


def prose_of(answer: str) -> str:
    """The text whose sentences count: a JSON answer's ``summary``, else the whole answer."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
        return answer
    return data["summary"] if isinstance(data, dict) and isinstance(data.get("summary"), str) else answer


def is_json_object(text: str) -> bool:
    """Whether ``text`` parses as a JSON object."""
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def behaviours(rubric: str, answer: str) -> list[tuple[str, bool]]:
    """Each behaviour the rubric asks for, and whether the answer shows it.

    Args:
        rubric: The grading rubric.
        answer: The answer graded.

    Returns:
        ``(label, shown)`` pairs: the rubric's grading rules, JSON, a verdict, a sentence count.

    Example:
        >>> behaviours("Answer in JSON.", '{"answer": "yes"}')
        [('answers in JSON', True)]
    """
    checks = [(rule.label, bool(rule.shows.search(answer))) for rule in GRADING_RULES if rule.asks.search(rubric)]
    if re.search(r"\bJSON\b", rubric):
        checks.append(("answers in JSON", is_json_object(answer)))
    if verdict := ASKED_VERDICT.search(rubric):
        name = verdict.group(1)
        shown = re.search(rf"\b{name.replace('_', '[ _]')}\b" + (r"(?![ _]with)" if name == "approve" else ""), answer, re.I)
        checks.append((f"ends with the verdict {name}", shown is not None))
    if asked := ASKED_SENTENCES.search(rubric):
        low = COUNTS[asked.group(1).lower()]
        high = COUNTS[(asked.group(2) or asked.group(1)).lower()]
        count = len(split_sentences(prose_of(answer)))
        checks.append((f"has {asked.group(0)} ({count})", low <= count <= high))
    return checks


def negated(behaviour: str) -> str:
    """``asks for X`` → ``does not ask for X``.

    Example:
        >>> negated("answers in JSON"), negated("has two sentences (3)")
        ('does not answer in JSON', 'does not have two sentences (3)')
    """
    verb, rest = behaviour.split(" ", 1)
    return f"does not {'have' if verb == 'has' else verb.removesuffix('s')} {rest}"


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry content: longer than three letters, not stop or rubric words."""
    return {word for word in WORD.findall(text.lower()) if len(word) > 3 and word not in STOPWORDS and word not in RUBRIC_WORDS}


def grade(answer: str, rubric: str, reference: str, conversation: str) -> Grade:
    """What a careful grader finds: the rubric's and the reference's facts (numbers, quoted terms,
    menu paths, addresses) the answer states, the behaviours the rubric asks for, how much of the
    expected content it covers, and numbers it states that nothing given supports.

    Args:
        answer: The answer graded.
        rubric: What a good answer does ("" when none was given).
        reference: A reference answer ("" when none was given).
        conversation: The conversation the answer replied to, whose numbers count as supported.

    Returns:
        The quality in [0, 1] and the strengths and problems that explain it.

    Example:
        >>> grade("Refunds take 30 days.", "Mention the 30 days.", "", "").strengths
        ['states the key fact']
        >>> grade("Refunds take 45 days.", "Mention the 30 days.", "", "").problems
        ['does not state 30', 'states 45, which nothing given supports']
    """
    if not answer.strip():
        return Grade(0.0, [], ["the answer is empty"])
    if REFUSAL_MARKERS.search(answer) and not re.search(r"\b(refuse|decline)", rubric, re.I):
        return Grade(0.0, [], ["the answer refuses a request it should have answered"])
    lowered = answer.lower()
    facts = (
        numbers(rubric) | numbers(reference) | set(EMAIL.findall(rubric + " " + reference))
        | {term.lower() for term in QUOTED.findall(rubric) + MENU_PATH.findall(rubric)}
    )  # fmt: skip
    stated = numbers(answer) | {fact for fact in facts if not NUMBER.fullmatch(fact) and fact.lower() in lowered}
    missing = sorted(fact for fact in facts if fact not in stated)
    checks = behaviours(rubric, answer)
    expected_words = content_words(reference or rubric)
    parts: list[tuple[float, float]] = []
    strengths: list[str] = []
    problems: list[str] = []
    if facts:
        parts.append((0.45, (len(facts) - len(missing)) / len(facts)))
        if missing:
            more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            problems.append(f"does not state {', '.join(missing[:4])}{more}")
        else:
            strengths.append("states the key fact" if len(facts) == 1 else f"states all {len(facts)} key facts")
    if checks:
        parts.append((0.35, sum(shown for _, shown in checks) / len(checks)))
        strengths += [label for label, shown in checks if shown]
        problems += [negated(label) for label, shown in checks if not shown]
    if expected_words:
        parts.append((0.2, len(expected_words & content_words(answer)) / len(expected_words)))
    quality = sum(weight * value for weight, value in parts) / sum(weight for weight, _ in parts) if parts else 0.5
    invented = sorted(numbers(answer) - numbers(conversation) - numbers(rubric) - numbers(reference))
    if invented:
        quality -= min(MAX_INVENTED_PENALTY, INVENTED_PENALTY * len(invented))
        problems.append(f"states {', '.join(invented[:3])}, which nothing given supports")
    return Grade(min(1.0, max(0.0, quality)), strengths, problems)


def grading(ask: Ask) -> Answer:
    """A grader's reply: the score on the scale its instructions name, from what ``grade`` finds,
    with the grader's own seeded noise (larger models grade more consistently).

    Args:
        ask: The grader's request; the tagged parts are read from its whole transcript.

    Returns:
        ``{"score": …, "reason": …}`` as JSON text and as data; the scale defaults to 1-5.
    """
    transcript = ask.transcript
    answer = tagged("answer", transcript)
    if answer is None:
        answer = ask.user
    rubric = tagged("rubric", transcript) or ""
    found = grade(answer, rubric, tagged("reference_answer", transcript) or "", tagged("conversation", transcript) or "")
    scale = SCORE_SCALE.search(ask.system) or SCORE_SCALE.search(transcript)
    low, high = (int(scale.group(1)), int(scale.group(2))) if scale else (1, 5)
    noisy = low + (high - low) * found.quality + ask.rng.gauss(0.0, JUDGE_NOISE[ask.tier] * (high - low) / 4)
    score = min(high, max(low, round(noisy)))
    said = [*found.problems[:2], *found.strengths[:2]]
    if not rubric:
        reason = "No rubric was given: a general impression of the answer."
    else:
        reason = f"The answer {'; '.join(said)}." if said else "The answer meets the rubric."
    return Answer(json.dumps({"score": score, "reason": reason}), {"score": score, "reason": reason})
