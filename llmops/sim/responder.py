"""The simulated model: deterministic answers that depend on the prompt, the model and drift.

An identical request always yields identical text (the RNG is seeded from a hash of the
request), while a better system prompt, a larger model or an unchanged provider really
produce better answers, so evaluations and drift detection have something true to find.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any, Literal

from llmops.sim.config import Tier, model_tier, resolve_model
from llmops.sim.grounding import PromptText, states
from llmops.sim.knowledge import (
    ANGER_MARKERS,
    CLOSING,
    CODE_CHECKS,
    ESCALATION_FOLLOW_UP,
    ESCALATION_OFFER,
    ESCALATION_OFFER_WITHOUT_TIME,
    GENERAL_TOPIC,
    GRADING_RULES,
    OPENERS,
    ORDER_NUMBER_INSTRUCTION,
    REFUSAL,
    REFUSAL_MARKERS,
    RUBRIC_WORDS,
    STOPWORDS,
    SUPPORT_TOPICS,
    VERBOSE_CLOSER,
    VERBOSE_OPENER,
    CodeCheck,
    Topic,
)
from llmops.sim.protocol import MessagesRequest
from llmops.sim.usage import CHARS_PER_TOKEN, estimate_tokens

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]


@dataclass(frozen=True)
class Profile:
    """How complete a model is: the chance of stating each fact or issue, summary length, drift traits."""

    keep_fact: float
    keep_issue: float
    summary_sentences: int
    suggests_fixes: bool
    refusal_rate: float = 0.0
    verbose: bool = False


TIER_PROFILES: dict[Tier, Profile] = {
    "haiku": Profile(keep_fact=0.6, keep_issue=0.65, summary_sentences=2, suggests_fixes=False),
    "sonnet": Profile(keep_fact=0.92, keep_issue=0.9, summary_sentences=3, suggests_fixes=True),
    "opus": Profile(keep_fact=0.98, keep_issue=1.0, summary_sentences=4, suggests_fixes=True),
}


def after_provider_update(profile: Profile) -> Profile:
    """The silent model change: wordier, drops policy facts, refuses more often."""
    return replace(profile, keep_fact=profile.keep_fact * 0.35, refusal_rate=0.3, verbose=True)


@dataclass(frozen=True)
class Style:
    """What the system prompt asks for."""

    policy: bool
    escalation: bool
    concise: bool
    json: bool
    bullets: bool
    single_sentence: bool
    detailed: bool


STYLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "policy": re.compile(r"\bpolic(y|ies)\b", re.I),
    "escalation": re.compile(r"\bescalat|\bhuman (agent|support)", re.I),
    "concise": re.compile(r"\b(concise|brief|briefly|short|succinct|terse)\b", re.I),
    "json": re.compile(r"\bjson\b", re.I),
    "bullets": re.compile(r"\bbullet", re.I),
    "single_sentence": re.compile(r"\b(one|single|1)[ -]sentence\b", re.I),
    "detailed": re.compile(r"\b(detailed|thorough|comprehensive)\b", re.I),
}


def read_style(system: str) -> Style:
    return Style(**{field.name: bool(STYLE_PATTERNS[field.name].search(system)) for field in fields(Style)})


@dataclass(frozen=True)
class Ask:
    """One request as a task sees it: the user's turn, the prompt's style, the model and its RNG."""

    user: str
    style: Style
    profile: Profile
    rng: random.Random
    varied: bool
    tier: Tier
    system: str
    transcript: str
    """Every user turn: a grader re-reads the answer it was given in the first one."""


@dataclass(frozen=True)
class Answer:
    """One answer in both renderings: prose, and the structure returned when JSON is asked for."""

    prose: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    text: str
    stop_reason: StopReason
    stop_sequence: str | None
    output_tokens: int


def complete(request: MessagesRequest, provider_updated: bool = False, sample: int = 0) -> Completion:
    """The answer as the API returns it: cut at a stop sequence or at ``max_tokens``."""
    text = answer_text(request, provider_updated, sample)
    limit = request.max_tokens * CHARS_PER_TOKEN
    stops = [(text.find(stop), stop) for stop in request.stop_sequences or [] if stop and stop in text]
    if stops:
        position, stop = min(stops)
        if position <= limit:
            cut = text[:position]
            return Completion(cut, "stop_sequence", stop, max(1, estimate_tokens(cut)))
    if len(text) > limit:
        return Completion(text[:limit], "max_tokens", None, request.max_tokens)
    return Completion(text, "end_turn", None, max(1, estimate_tokens(text)))


def answer_text(request: MessagesRequest, provider_updated: bool = False, sample: int = 0) -> str:
    """The full (untruncated) answer to ``request``; identical requests (and ``sample``) give identical text."""
    model_id = resolve_model(request.model)
    tier = model_tier(model_id)
    profile = TIER_PROFILES[tier]
    if provider_updated:
        profile = after_provider_update(profile)
    rng = random.Random(request_seed(request, model_id, provider_updated, sample))
    system = request.system_text()
    style = read_style(system)
    transcript = "\n\n".join(message.text() for message in request.messages if message.role == "user")
    ask = Ask(
        request.last_user_text(), style, profile, rng, varied=request.temperature != 0, tier=tier,
        system=system, transcript=transcript,
    )  # fmt: skip

    if rng.random() < profile.refusal_rate:
        answer = Answer(REFUSAL, {"refusal": REFUSAL})
    else:
        answer = TASKS[detect_task(system, ask.user, transcript)](ask)

    if style.json:
        data = {**answer.data, "note": VERBOSE_CLOSER} if profile.verbose else answer.data
        return json.dumps(data, ensure_ascii=False)
    if profile.verbose:
        return f"{VERBOSE_OPENER}\n\n{answer.prose}\n\n{VERBOSE_CLOSER}"
    return answer.prose


def request_seed(request: MessagesRequest, model_id: str, provider_updated: bool, sample: int = 0) -> int:
    """Hash of everything that defines the answer, so the same request gets the same text; a
    nonzero ``sample`` is another draw of the same request (a real model's sampling variation)."""
    key = json.dumps(
        [
            model_id,
            request.system_text(),
            [(message.role, message.text()) for message in request.messages],
            request.max_tokens,
            request.temperature,
            int(provider_updated),
            *([sample] if sample else []),
        ]
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


CODE_REQUEST = re.compile(r"code review|review (this |the |my |a )?(code|snippet|diff|pull request|function)", re.I)
CODE_FENCE = re.compile(r"```[\w+-]*\n?(.*?)```", re.S)
SUMMARY_REQUEST = re.compile(r"\bsummar(y|ies|ize|ise|izing|ising)\b|\btl;?dr\b", re.I)


def detect_task(system: str, user: str, transcript: str = "") -> str:
    """Which of the demo application's features the request is for, or a grader's request."""
    if is_grading_request(system, transcript or user):
        return "grading"
    if CODE_REQUEST.search(system) or CODE_REQUEST.search(user) or CODE_FENCE.search(user):
        return "code_review"
    if SUMMARY_REQUEST.search(system) or SUMMARY_REQUEST.search(user):
        return "document_summarization"
    return "chat_response"


def pick(options: tuple[str, ...], ask: Ask) -> str:
    """The first phrasing at temperature 0, a seeded choice otherwise."""
    return ask.rng.choice(options) if ask.varied else options[0]


# --- chat_response -----------------------------------------------------------------------


def keyword_hits(topic: Topic, text: str) -> int:
    return sum(len(re.findall(rf"\b{re.escape(keyword)}\b", text)) for keyword in topic.keywords)


def detect_topics(user: str) -> list[Topic]:
    """Topics mentioned by the user, most mentioned first."""
    lowered = user.lower()
    scored = [(keyword_hits(topic, lowered), index, topic) for index, topic in enumerate(SUPPORT_TOPICS)]
    return [topic for hits, _, topic in sorted(scored, key=lambda item: (-item[0], item[1])) if hits]


def is_angry(user: str) -> bool:
    letters = [char for char in user if char.isalpha()]
    shouting = len(letters) >= 12 and sum(char.isupper() for char in letters) / len(letters) > 0.6
    return shouting or any(marker in user.lower() for marker in ANGER_MARKERS)


@lru_cache(maxsize=64)
def prompt_text(system: str) -> PromptText:
    """A system prompt parsed once for the fact lookups of every request that sends it."""
    return PromptText.of(system)


def chat_response(ask: Ask) -> Answer:
    """A support reply: only the policy facts the system prompt states (``grounding``), each
    kept with the model's probability, and the escalation offer when the prompt asks for one."""
    topics = detect_topics(ask.user)
    topic = topics[0] if topics else GENERAL_TOPIC
    angry = is_angry(ask.user)
    complex_case = topic.complex_case or len(topics) > 1 or len(ask.user.split()) > 80
    prompt = prompt_text(ask.system)
    stated = [fact for fact in topic.facts if states(prompt, fact)] if ask.style.policy else []
    kept = [fact for fact in stated if ask.rng.random() < ask.profile.keep_fact]
    facts = kept[:2] if ask.style.concise else kept
    escalate = ask.style.escalation and (angry or complex_case)
    offer = ESCALATION_OFFER if states(prompt, ESCALATION_FOLLOW_UP) else ESCALATION_OFFER_WITHOUT_TIME
    opener = pick(OPENERS["angry" if angry else "calm"], ask)
    reply = topic.reply
    if topic.order_number_request and ORDER_NUMBER_INSTRUCTION.search(" ".join(ask.system.split())):
        reply = f"{reply} {topic.order_number_request}"
    lead = [reply] if ask.style.concise else [opener, reply]
    tail = ([offer] if escalate else []) + ([] if ask.style.concise else [CLOSING])
    if ask.style.bullets and facts:
        prose = "\n".join([" ".join(lead), *(f"- {fact}" for fact in facts), " ".join(tail)]).strip()
    else:
        prose = " ".join([*lead, *facts, *tail])
    return Answer(
        prose=prose,
        data={"topic": topic.name, "answer": " ".join([*lead, *tail]), "policy_facts": facts, "escalate": escalate},
    )


# --- document_summarization --------------------------------------------------------------

DOCUMENT_TAG = re.compile(r"<document>(.*?)</document>", re.S | re.I)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
WORD = re.compile(r"[a-z0-9']+")


def extract_document(user: str) -> str:
    """The text to summarise: a tagged or fenced document, or what follows the instruction."""
    if match := DOCUMENT_TAG.search(user) or CODE_FENCE.search(user):
        return match.group(1).strip()
    for separator in ("\n", ":"):
        head, found, rest = user.partition(separator)
        if found and SUMMARY_REQUEST.search(head) and rest.strip():
            return rest.strip()
    return user.strip()


def split_sentences(document: str) -> list[str]:
    return [sentence.strip() for sentence in SENTENCE_END.split(" ".join(document.split())) if sentence.strip()]


def top_sentences(sentences: list[str], count: int) -> list[str]:
    """The ``count`` most content-bearing sentences (frequent content words, lead bonus), in order."""
    words = [[word for word in WORD.findall(sentence.lower()) if word not in STOPWORDS] for sentence in sentences]
    frequency = Counter(word for sentence_words in words for word in sentence_words)

    def score(index: int) -> float:
        content = sum(frequency[word] for word in set(words[index]))
        lead_bonus = 1.5 if index == 0 else 1.0
        return lead_bonus * content / math.sqrt(len(words[index]) + 1)

    chosen = sorted(sorted(range(len(sentences)), key=lambda index: (-score(index), index))[:count])
    return [sentences[index] for index in chosen]


def summary_length(style: Style, profile: Profile) -> int:
    if style.single_sentence:
        return 1
    if style.concise:
        return max(1, profile.summary_sentences - 1)
    if style.detailed:
        return profile.summary_sentences + 2
    return profile.summary_sentences


def document_summarization(ask: Ask) -> Answer:
    sentences = split_sentences(extract_document(ask.user))
    if not sentences:
        message = "There is no document to summarise. Please include the text."
        return Answer(message, {"summary": "", "key_points": [], "error": message})
    key_points = top_sentences(sentences, summary_length(ask.style, ask.profile))
    summary = " ".join(key_points)
    prose = "\n".join(f"- {point}" for point in key_points) if ask.style.bullets else summary
    return Answer(prose, {"summary": summary, "key_points": key_points})


# --- code_review -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    check: CodeCheck
    line: int | None


def extract_code(user: str) -> str:
    """The snippet under review: a fenced block, or what follows a one-line instruction."""
    if match := CODE_FENCE.search(user):
        return match.group(1).strip("\n")
    head, found, rest = user.partition("\n")
    if found and re.search(r"\breview\b", head, re.I) and rest.strip():
        return rest.strip("\n")
    return user.strip("\n")


def find_issues(code: str) -> list[Finding]:
    findings = [
        Finding(check, number)
        for number, line in enumerate(code.splitlines(), start=1)
        for check in CODE_CHECKS
        if check.pattern is not None and check.pattern.search(line)
    ]
    findings.extend(Finding(check, None) for check in CODE_CHECKS if check.absent is not None and not check.absent.search(code))
    return findings


def describe(finding: Finding, suggests_fix: bool) -> str:
    where = f"Line {finding.line}" if finding.line is not None else "Overall"
    fix = f" Fix: {finding.check.fix}" if suggests_fix else ""
    return f"{where} [{finding.check.severity}] {finding.check.name}: {finding.check.message}{fix}"


def code_review(ask: Ask) -> Answer:
    code = extract_code(ask.user)
    if not code.strip():
        message = "Please include the code you would like me to review."
        return Answer(message, {"issues": [], "verdict": "no_code", "error": message})
    profile = ask.profile
    reported = [finding for finding in find_issues(code) if ask.rng.random() < profile.keep_issue]
    if any(finding.check.severity == "high" for finding in reported):
        verdict = "request_changes"
    else:
        verdict = "approve_with_comments" if reported else "approve"
    issues = [
        {"line": finding.line, "severity": finding.check.severity, "check": finding.check.name,
         "issue": finding.check.message, **({"fix": finding.check.fix} if profile.suggests_fixes else {})}
        for finding in reported
    ]  # fmt: skip
    if not reported:
        prose = "I reviewed the code and found no issues. It looks good to merge."
    else:
        heading = f"Code review: {len(reported)} issue{'s' if len(reported) != 1 else ''} found."
        lines = [f"{number}. {describe(finding, profile.suggests_fixes)}" for number, finding in enumerate(reported, 1)]
        prose = "\n".join([heading, *lines, f"Verdict: {verdict.replace('_', ' ')}."])
    return Answer(prose, {"issues": issues, "verdict": verdict})


# --- grading (LLM as judge) --------------------------------------------------------------

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
    """A grader's instructions, with an ``<answer>`` to grade or a ``score`` to reply with."""
    return bool(GRADER_PROMPT.search(system) and (tagged("answer", transcript) is not None or SCORE_FIELD.search(system)))


def tagged(tag: str, text: str) -> str | None:
    match = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.S | re.I)
    return match.group(1) if match else None


def numbers(text: str) -> set[str]:
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
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def behaviours(rubric: str, answer: str) -> list[tuple[str, bool]]:
    """Each behaviour the rubric asks for, and whether the answer shows it."""
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
    """``asks for X`` → ``does not ask for X``."""
    verb, rest = behaviour.split(" ", 1)
    return f"does not {'have' if verb == 'has' else verb.removesuffix('s')} {rest}"


def content_words(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower()) if len(word) > 3 and word not in STOPWORDS and word not in RUBRIC_WORDS}


def grade(answer: str, rubric: str, reference: str, conversation: str) -> Grade:
    """What a careful grader finds: the rubric's and the reference's facts (numbers, quoted terms,
    menu paths, addresses) the answer states, the behaviours the rubric asks for, how much of the
    expected content it covers, and numbers it states that nothing given supports."""
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
    with the grader's own seeded noise (larger models grade more consistently)."""
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


TASKS: dict[str, Callable[[Ask], Answer]] = {
    "chat_response": chat_response,
    "document_summarization": document_summarization,
    "code_review": code_review,
    "grading": grading,
}
