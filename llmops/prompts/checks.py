"""Reading one prompt file, with a line number for every problem in it.

"Prompts are code": a version is reviewed and validated in CI, so a bad file must say where it
is bad. This module parses the YAML keeping its node tree, validates the fields against
``schema.PromptVersion``, and maps every error (duplicate keys, unknown keys, schema errors, a
version that does not match its file name, a model genai-prices cannot price) back to the line
an editor should jump to.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from llmops.prompts.safe_yaml import YAMLLimitError, compose_and_load, read_limited
from llmops.prompts.schema import PROMPT_FILE_SUFFIX, PromptParameters, PromptVersion

FIELD_HINTS: dict[str, str] = {
    "version": 'a quoted semantic version such as "2.3.1"',
    "model": 'a dated model id such as "claude-3-5-sonnet-20241022"',
    "created": 'the date the version was written, e.g. "2025-11-15"',
    "author": 'who wrote it, e.g. "team-ai"',
    "changelog": "what changed since the previous version, and why",
    "system": "the system prompt text",
    "parameters": "a mapping with max_tokens (and usually temperature)",
    "parameters.max_tokens": "a positive integer: the answer's token limit",
    "eval_metrics": "a mapping of metric names to values (written by the eval flow)",
    "compression": "a mapping with keep_sections and keep_patterns (what compression keeps verbatim)",
}
"""What a missing field should hold, said in the error."""
FILE_FIELDS = ("version", "model", "created", "author", "changelog", "system", "parameters", "eval_metrics", "compression")
PASSED_THROUGH_PARAMETERS = frozenset({"thinking", "service_tier", "metadata", "tool_choice", "tools"})
"""Messages API parameters that llmops passes on unchecked (no warning)."""

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in a prompt file, located so an editor can jump to it.

    Example:
        >>> print(Problem(Path("prompts/chat/1.0.0.yaml"), 3, "model", "not priced", "warning"))
        prompts/chat/1.0.0.yaml:3: model: warning: not priced
    """

    path: Path
    line: int
    """1-based line of the offending key (of its parent, for a missing key)."""
    field: str
    """Dotted field name (``parameters.max_tokens``), or ``yaml``/``file``/``document`` for the file as a whole."""
    message: str
    severity: Severity = "error"
    """An error makes the file unusable; a warning is reported and the version still loads."""

    def __str__(self) -> str:
        marker = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {self.field}: {marker}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready fields (for ``--json`` output).

        Returns:
            ``path``, ``line``, ``field``, ``message`` and ``severity``.
        """
        return {"path": str(self.path), "line": self.line, "field": self.field,
                "message": self.message, "severity": self.severity}  # fmt: skip


class PromptFileError(ValueError):
    """Prompt files with errors; the message lists every one as ``path:line: field: message``.

    Args:
        problems: The errors found, kept on ``.problems``.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``; did you mean …?`` hint for a misspelt name, or nothing.

    Args:
        word: What was written.
        choices: The names that would have been valid.

    Returns:
        The hint to append to an error message, or ``""`` when no choice is close.

    Example:
        >>> did_you_mean("chagelog", ["changelog", "created"])
        "; did you mean 'changelog'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _key_nodes(mapping: yaml.MappingNode) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    for key_node, value_node in mapping.value:
        yield str(key_node.value), key_node, value_node


def _line_of(root: yaml.MappingNode, loc: tuple[str | int, ...]) -> int:
    """The line of the deepest key of ``loc`` present in the file (the parent's for a missing key)."""
    line = root.start_mark.line + 1
    node: yaml.Node = root
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        # The last of duplicate keys, since that is the value YAML keeps.
        matches = [(key, value) for name, key, value in _key_nodes(node) if name == str(part)]
        if not matches:
            break
        key_node, node = matches[-1]
        line = key_node.start_mark.line + 1
    return line


def _duplicate_keys(path: Path, node: yaml.Node, prefix: str = "") -> Iterator[Problem]:
    """PyYAML keeps the last of two equal keys silently; a reviewer would read the first."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for name, key_node, value_node in _key_nodes(node):
        field = f"{prefix}{name}"
        line = key_node.start_mark.line + 1
        if name in seen:
            yield Problem(path, line, field, f"duplicate key (first on line {seen[name]}); YAML would keep only this one")
        else:
            seen[name] = line
        yield from _duplicate_keys(path, value_node, f"{field}.")


def _unknown_keys(path: Path, root: yaml.MappingNode, data: dict[str, Any]) -> Iterator[Problem]:
    for name, key_node, _ in _key_nodes(root):
        if name in FILE_FIELDS:
            continue
        line = key_node.start_mark.line + 1
        if name == "name":
            message = f"ignored: a prompt's name comes from its directory ({path.parent.name!r})"
        else:
            expected = ", ".join(FILE_FIELDS)
            message = f"unknown key, ignored; expected one of {expected}{did_you_mean(name, FILE_FIELDS)}"
        yield Problem(path, line, name, message, "warning")
    parameters = data.get("parameters")
    if isinstance(parameters, dict):
        checked = PromptParameters.model_fields.keys()
        for name in parameters:
            if name not in checked and name not in PASSED_THROUGH_PARAMETERS:
                yield Problem(
                    path, _line_of(root, ("parameters", name)), f"parameters.{name}",
                    f"not a parameter llmops checks; sent to the API as is{did_you_mean(str(name), checked)}", "warning",
                )  # fmt: skip


def _describe(error: Mapping[str, Any], field: str) -> str:
    if error["type"] == "missing":
        hint = FIELD_HINTS.get(field)
        return f"missing required field; expected {hint}" if hint else "missing required field"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error" or isinstance(error.get("input"), dict | list):
        return message
    return f"{message}, got {error['input']!r}"


def _schema_problems(path: Path, root: yaml.MappingNode, error: ValidationError) -> Iterator[Problem]:
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if isinstance(part, str | int))
        field = ".".join(str(part) for part in loc) or "document"
        yield Problem(path, _line_of(root, loc), field, _describe(item, field))


def _compose(path: Path, text: str) -> tuple[yaml.Node | None, Any, list[Problem]]:
    """The document's node tree (for lines) and its data, or YAML's own error with its line."""
    try:
        node, data = compose_and_load(text)
    except YAMLLimitError as exc:
        return None, None, [Problem(path, exc.line, "yaml", str(exc))]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = exc.context
        if context and exc.context_mark and exc.context_mark.line + 1 != line:
            context = f"{context} opened on line {exc.context_mark.line + 1}"
        reason = "; ".join(part for part in (context, exc.problem) if part)
        return None, None, [Problem(path, line, "yaml", f"not valid YAML: {reason}")]
    return node, data, []


def check_prompt_file(
    path: Path | str, *, check_models_priced: bool = True, allow_unknown_models: bool = False
) -> tuple[PromptVersion | None, list[Problem]]:
    """Read one file and every problem in it; the version is None when any problem is an error.

    A model genai-prices does not know is a warning (its calls would go unpriced), and nothing
    at all with ``allow_unknown_models``; ``check_models_priced=False`` skips that lookup.

    Args:
        path: A ``<name>/<version>.yaml`` file; the directory's name is the prompt's name.
        check_models_priced: Look the model up in genai-prices (a warning when it is unknown).
        allow_unknown_models: Say nothing about an unknown model (a private or fine-tuned one).

    Returns:
        ``(version, problems)``, problems sorted by line; ``version`` is None when any is an error.

    Example:
        ```python
        prompt, problems = check_prompt_file("prompts/support-chat/2.3.1.yaml")
        for problem in problems:
            print(problem)  # prompts/support-chat/2.3.1.yaml:4: model: warning: ...
        ```
    """
    path = Path(path)
    try:
        text = read_limited(path).decode("utf-8")
    except YAMLLimitError as exc:
        return None, [Problem(path, exc.line, "file", str(exc))]
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 1, "file", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    node, data, problems = _compose(path, text)
    if problems:
        return None, problems
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        found = "an empty file" if node is None else f"a YAML {type(data).__name__}"
        expected = f"expected a mapping of fields ({', '.join(FILE_FIELDS)}), found {found}"
        return None, [Problem(path, line, "document", expected)]

    problems.extend(_duplicate_keys(path, node))
    problems.extend(_unknown_keys(path, node, data))
    fields = {key: value for key, value in data.items() if key in FILE_FIELDS}
    prompt: PromptVersion | None = None
    try:
        prompt = PromptVersion.model_validate({**fields, "name": path.parent.name, "path": path})
    except ValidationError as exc:
        problems.extend(_schema_problems(path, node, exc))

    version = data.get("version")
    if isinstance(version, str) and version != path.stem:
        problems.append(Problem(
            path, _line_of(node, ("version",)), "version",
            f"{version!r} does not match the file name {path.name!r}; a version lives in <version>{PROMPT_FILE_SUFFIX}",
        ))  # fmt: skip
    model = data.get("model")
    if check_models_priced and not allow_unknown_models and isinstance(model, str):
        from llmops.pricing import is_known_model  # genai-prices is slow to import: checking a file needs it, loading one not

        if not is_known_model(model):
            problems.append(Problem(
                path, _line_of(node, ("model",)), "model",
                f"{model!r} is not a model genai-prices knows: its calls would have no cost "
                "(check the id, or pass --allow-unknown-model for a private model)", "warning",
            ))  # fmt: skip

    problems.sort(key=lambda problem: problem.line)
    if any(problem.severity == "error" for problem in problems):
        return None, problems
    return prompt, problems


def load_prompt_file(path: Path | str) -> PromptVersion:
    """One version from its file, or an error listing everything wrong with it.

    Args:
        path: A ``<name>/<version>.yaml`` file.

    Returns:
        The validated version (warnings are dropped; the model is not looked up in genai-prices).

    Raises:
        PromptFileError: The file has errors; each is on ``.problems`` with its line.

    Example:
        ```python
        prompt = load_prompt_file("prompts/support-chat/2.3.1.yaml")
        prompt.ref  # 'support-chat@2.3.1'
        ```
    """
    prompt, problems = check_prompt_file(path, check_models_priced=False)
    if prompt is None:
        raise PromptFileError([problem for problem in problems if problem.severity == "error"])
    return prompt
