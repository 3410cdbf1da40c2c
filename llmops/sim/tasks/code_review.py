"""The ``code_review`` task: the issues a reviewer's checklist finds in a snippet, and a verdict.

Each check of ``knowledge.CODE_CHECKS`` that matches is reported with the model's probability;
larger models also suggest a fix. A high-severity finding requests changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.sim.knowledge import CODE_CHECKS, CodeCheck
from llmops.sim.tasks.ask import CODE_FENCE, Answer, Ask

CODE_REQUEST = re.compile(r"code review|review (this |the |my |a )?(code|snippet|diff|pull request|function)", re.I)


@dataclass(frozen=True)
class Finding:
    """One check that matched: on a line, or for the code as a whole (``line`` None)."""

    check: CodeCheck
    line: int | None


def extract_code(user: str) -> str:
    """The snippet under review: a fenced block, or what follows a one-line instruction.

    Example:
        >>> extract_code("Please review:\\n```python\\nx = eval(s)\\n```")
        'x = eval(s)'
    """
    if match := CODE_FENCE.search(user):
        return match.group(1).strip("\n")
    head, found, rest = user.partition("\n")
    if found and re.search(r"\breview\b", head, re.I) and rest.strip():
        return rest.strip("\n")
    return user.strip("\n")


def find_issues(code: str) -> list[Finding]:
    """Every check that matches: line patterns line by line, then what the code as a whole lacks.

    Args:
        code: The snippet.

    Returns:
        The findings, line checks first (in line order), then whole-code checks.
    """
    findings = [
        Finding(check, number)
        for number, line in enumerate(code.splitlines(), start=1)
        for check in CODE_CHECKS
        if check.pattern is not None and check.pattern.search(line)
    ]
    findings.extend(Finding(check, None) for check in CODE_CHECKS if check.absent is not None and not check.absent.search(code))
    return findings


def describe(finding: Finding, suggests_fix: bool) -> str:
    """One line of the review: where, how severe, what, and the fix when the model suggests fixes."""
    where = f"Line {finding.line}" if finding.line is not None else "Overall"
    fix = f" Fix: {finding.check.fix}" if suggests_fix else ""
    return f"{where} [{finding.check.severity}] {finding.check.name}: {finding.check.message}{fix}"


def code_review(ask: Ask) -> Answer:
    """A numbered review of the snippet in the user's turn, ending with a verdict.

    Args:
        ask: The request; its profile decides which issues are reported and whether fixes are.

    Returns:
        The review, and as JSON its ``issues`` and ``verdict`` (``approve``,
        ``approve_with_comments`` or ``request_changes``; ``no_code`` without a snippet).
    """
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
