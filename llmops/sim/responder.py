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
from typing import Any, Literal

from llmops.sim.config import Tier, model_tier, resolve_model
from llmops.sim.knowledge import (
    ANGER_MARKERS,
    CLOSING,
    CODE_CHECKS,
    ESCALATION_OFFER,
    GENERAL_TOPIC,
    OPENERS,
    REFUSAL,
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


def complete(request: MessagesRequest, provider_updated: bool = False) -> Completion:
    """The answer as the API returns it: cut at a stop sequence or at ``max_tokens``."""
    text = answer_text(request, provider_updated)
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


def answer_text(request: MessagesRequest, provider_updated: bool = False) -> str:
    """The full (untruncated) answer to ``request``; identical requests give identical text."""
    model_id = resolve_model(request.model)
    profile = TIER_PROFILES[model_tier(model_id)]
    if provider_updated:
        profile = after_provider_update(profile)
    rng = random.Random(request_seed(request, model_id, provider_updated))
    system = request.system_text()
    style = read_style(system)
    ask = Ask(request.last_user_text(), style, profile, rng, varied=request.temperature != 0)

    if rng.random() < profile.refusal_rate:
        answer = Answer(REFUSAL, {"refusal": REFUSAL})
    else:
        answer = TASKS[detect_task(system, ask.user)](ask)

    if style.json:
        data = {**answer.data, "note": VERBOSE_CLOSER} if profile.verbose else answer.data
        return json.dumps(data, ensure_ascii=False)
    if profile.verbose:
        return f"{VERBOSE_OPENER}\n\n{answer.prose}\n\n{VERBOSE_CLOSER}"
    return answer.prose


def request_seed(request: MessagesRequest, model_id: str, provider_updated: bool) -> int:
    """Hash of everything that defines the answer, so the same request gets the same text."""
    key = json.dumps(
        [
            model_id,
            request.system_text(),
            [(message.role, message.text()) for message in request.messages],
            request.max_tokens,
            request.temperature,
            int(provider_updated),
        ]
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


CODE_REQUEST = re.compile(r"code review|review (this |the |my |a )?(code|snippet|diff|pull request|function)", re.I)
CODE_FENCE = re.compile(r"```[\w+-]*\n?(.*?)```", re.S)
SUMMARY_REQUEST = re.compile(r"\bsummar(y|ies|ize|ise|izing|ising)\b|\btl;?dr\b", re.I)


def detect_task(system: str, user: str) -> str:
    """Which of the demo application's features the request is for."""
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


def chat_response(ask: Ask) -> Answer:
    topics = detect_topics(ask.user)
    topic = topics[0] if topics else GENERAL_TOPIC
    angry = is_angry(ask.user)
    complex_case = topic.complex_case or len(topics) > 1 or len(ask.user.split()) > 80
    kept = [fact for fact in topic.facts if ask.rng.random() < ask.profile.keep_fact]
    facts = (kept[:2] if ask.style.concise else kept) if ask.style.policy else []
    escalate = ask.style.escalation and (angry or complex_case)
    opener = pick(OPENERS["angry" if angry else "calm"], ask)
    lead = [topic.reply] if ask.style.concise else [opener, topic.reply]
    tail = ([ESCALATION_OFFER] if escalate else []) + ([] if ask.style.concise else [CLOSING])
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
    findings.extend(
        Finding(check, None) for check in CODE_CHECKS if check.absent is not None and not check.absent.search(code)
    )
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


TASKS: dict[str, Callable[[Ask], Answer]] = {
    "chat_response": chat_response,
    "document_summarization": document_summarization,
    "code_review": code_review,
}
