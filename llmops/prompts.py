"""Prompt version files: ``prompts/<name>/<version>.yaml``, one immutable file per version.

"Prompts are code": a version is reviewed, validated in CI and released like code. This
module reads the files (DESIGN.md §3), checks them with a line number for every problem, hashes
the content that changes what the model is asked, renders ``{variable}`` placeholders and diffs
two versions. Which version serves which traffic is registry state, not file state.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from llmops import settings
from llmops.pricing import is_known_model

PROMPT_FILE_SUFFIX = ".yaml"
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?$"
)
"""Semantic version X.Y.Z with an optional pre-release (``2.4.0-rc.1``); no build metadata,
since two files differing only in build metadata would be the same version."""
PINNED_DATE = re.compile(r"[-@](\d{8})(?:-v\d+(?::\d+)?)?$")
"""A dated snapshot id: Anthropic's ``claude-3-5-sonnet-20241022``, Vertex's ``…@20241022``,
Bedrock's ``…-20241022-v2:0``. Anything else (``-latest``, ``claude-sonnet-4-5``) is an alias
that the provider moves to a new model without notice."""
PROMPT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PLACEHOLDER = re.compile(r"\{\{([A-Za-z_]\w*)\}\}|\{([A-Za-z_]\w*)\}")
"""``{name}`` is a variable, ``{{name}}`` a literal ``{name}``; any other brace (a JSON example
in the prompt, say) is text and needs no escaping."""

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
FILE_FIELDS = ("version", "model", "created", "author", "changelog", "system", "parameters", "eval_metrics", "compression")
PASSED_THROUGH_PARAMETERS = frozenset({"thinking", "service_tier", "metadata", "tool_choice", "tools"})
"""Messages API parameters that llmops passes on unchecked (no warning)."""

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in a prompt file, located so an editor can jump to it."""

    path: Path
    line: int
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        marker = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {self.field}: {marker}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "line": self.line, "field": self.field,
                "message": self.message, "severity": self.severity}  # fmt: skip


class PromptFileError(ValueError):
    """Prompt files with errors; the message lists every one as ``path:line: field: message``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class PromptRenderError(ValueError):
    """A placeholder in the system prompt had no value."""


class PromptNotFoundError(LookupError):
    """No such prompt name or version in the prompts directory."""


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
    """Sort key in semantic-version precedence: 2.3.0-rc.1 < 2.3.0 < 2.3.1 < 2.10.0."""
    match = SEMVER.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a semantic version X.Y.Z[-pre-release]")
    major, minor, patch, pre_release = match.groups()
    if pre_release is None:
        return int(major), int(minor), int(patch), 1, ()
    # Numeric identifiers sort numerically and before alphanumeric ones (semver.org §11).
    identifiers = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre_release.split("."))
    return int(major), int(minor), int(patch), 0, identifiers


def is_pre_release(version: str) -> bool:
    return semver_key(version)[3] == 0


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Oldest first by semantic-version precedence."""
    return sorted(versions, key=semver_key)


def latest_version(versions: Iterable[str]) -> str:
    """The highest release; a pre-release only when there is no release yet (as pip and npm do)."""
    ordered = sort_versions(versions)
    releases = [version for version in ordered if not is_pre_release(version)]
    return (releases or ordered)[-1]


def is_pinned_model(model: str) -> bool:
    """True for a dated snapshot id with a real date, False for an alias."""
    match = PINNED_DATE.search(model)
    if match is None:
        return False
    try:
        dt.datetime.strptime(match.group(1), "%Y%m%d")
    except ValueError:
        return False
    return True


StrictText = Annotated[str, Field(strict=True)]


class PromptParameters(BaseModel):
    """Sampling parameters sent with every call; other Messages API parameters pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_tokens: Annotated[int, Field(strict=True, gt=0)]
    temperature: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(strict=True, gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(strict=True, gt=0)] | None = None
    stop_sequences: list[StrictText] | None = None


class CompressionHints(BaseModel):
    """What ``llmops compress`` keeps verbatim in this prompt beyond its defaults (see ``llmops.compression``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep_sections: list[StrictText] = Field(default_factory=list)
    """Headings or XML tag names whose whole section stays as written, e.g. "Examples"."""
    keep_patterns: list[StrictText] = Field(default_factory=list)
    """Regular expressions whose matches stay as written, e.g. "SKU-\\d+"."""

    @field_validator("keep_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns


class PromptVersion(BaseModel):
    """One version of one prompt, as read from ``<name>/<version>.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    model: StrictText
    created: dt.date
    author: StrictText
    changelog: StrictText
    system: StrictText
    parameters: PromptParameters
    eval_metrics: dict[str, Any] | None = None
    compression: CompressionHints | None = None
    path: Path | None = None

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, name: str) -> str:
        if not PROMPT_NAME.match(name):
            raise ValueError(f"prompt name {name!r} (the directory's name) must be lowercase letters, digits, '.', '_' or '-'")
        return name

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_semver(cls, version: object) -> str:
        if not isinstance(version, str):
            kind = type(version).__name__
            raise ValueError(f'must be a quoted string such as "2.3.1"; YAML read {version!r} as {kind}')
        if not SEMVER.match(version):
            raise ValueError(f"{version!r} is not a semantic version X.Y.Z (optionally -pre.release, e.g. 2.4.0-rc.1)")
        return version

    @field_validator("model")
    @classmethod
    def _model_is_pinned(cls, model: str) -> str:
        if not is_pinned_model(model):
            raise ValueError(
                f"{model!r} is an alias the provider can move to another model; "
                "pin a dated model id ending in -YYYYMMDD, e.g. claude-3-5-sonnet-20241022"
            )
        return model

    @field_validator("system")
    @classmethod
    def _system_is_not_empty(cls, system: str) -> str:
        if not system.strip():
            raise ValueError("the system prompt is empty")
        return system

    @model_validator(mode="wrap")
    @classmethod
    def _stated_hash_matches(cls, data: Any, handler: ModelWrapValidatorHandler[PromptVersion]) -> PromptVersion:
        """Accept a dump of a version back (it carries ``content_hash``) only if the content still matches."""
        stated = data.get("content_hash") if isinstance(data, dict) else None
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key != "content_hash"}
        prompt = handler(data)
        if stated is not None and stated != prompt.content_hash:
            raise ValueError(f"content_hash {stated} does not match the content, whose hash is {prompt.content_hash}")
        return prompt

    @property
    def ref(self) -> str:
        """``name@version``, how people and logs name a version."""
        return f"{self.name}@{self.version}"

    @property
    def variables(self) -> list[str]:
        """The ``{placeholders}`` the system prompt needs, in order of first use."""
        found = (match.group(2) for match in PLACEHOLDER.finditer(self.system) if match.group(2))
        return list(dict.fromkeys(found))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """sha256 of what changes the model's behaviour: name, version, model, system, parameters.

        ``eval_metrics`` is left out because the eval flow rewrites it in a released file; so are
        ``created``, ``author``, ``changelog`` and ``compression``, which describe the version
        without changing what the model is sent. The system prompt is hashed byte for byte: whitespace is sent to the model too.
        """
        canonical = {
            "name": self.name,
            "version": self.version,
            "model": self.model,
            "system": self.system,
            "parameters": self.parameters.model_dump(exclude_none=True),
        }
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(encoded.encode()).hexdigest()


# --- reading a file, with a line for every problem ------------------------------------------


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


def _suggestion(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_keys(path: Path, root: yaml.MappingNode, data: dict[str, Any]) -> Iterator[Problem]:
    for name, key_node, _ in _key_nodes(root):
        if name in FILE_FIELDS:
            continue
        line = key_node.start_mark.line + 1
        if name == "name":
            message = f"ignored: a prompt's name comes from its directory ({path.parent.name!r})"
        else:
            expected = ", ".join(FILE_FIELDS)
            message = f"unknown key, ignored; expected one of {expected}{_suggestion(name, FILE_FIELDS)}"
        yield Problem(path, line, name, message, "warning")
    parameters = data.get("parameters")
    if isinstance(parameters, dict):
        checked = PromptParameters.model_fields.keys()
        for name in parameters:
            if name not in checked and name not in PASSED_THROUGH_PARAMETERS:
                yield Problem(
                    path, _line_of(root, ("parameters", name)), f"parameters.{name}",
                    f"not a parameter llmops checks; sent to the API as is{_suggestion(str(name), checked)}", "warning",
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
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = exc.context
        if context and exc.context_mark and exc.context_mark.line + 1 != line:
            context = f"{context} opened on line {exc.context_mark.line + 1}"
        reason = "; ".join(part for part in (context, exc.problem) if part)
        return None, None, [Problem(path, line, "yaml", f"not valid YAML: {reason}")]
    finally:
        loader.dispose()
    return node, data, []


def check_prompt_file(
    path: Path | str, *, check_models_priced: bool = True, allow_unknown_models: bool = False
) -> tuple[PromptVersion | None, list[Problem]]:
    """Read one file and every problem in it; the version is None when any problem is an error.

    A model genai-prices does not know is a warning (its calls would go unpriced), and nothing
    at all with ``allow_unknown_models``; ``check_models_priced=False`` skips that lookup.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
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
    if check_models_priced and not allow_unknown_models and isinstance(model, str) and not is_known_model(model):
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
    """One version; raises ``PromptFileError`` listing every error in the file."""
    prompt, problems = check_prompt_file(path, check_models_priced=False)
    if prompt is None:
        raise PromptFileError([problem for problem in problems if problem.severity == "error"])
    return prompt


# --- a directory of prompts -------------------------------------------------------------------


def _directory(directory: Path | str | None) -> Path:
    path = Path(directory) if directory is not None else settings.prompts_dir()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no prompts directory (set {settings.LLMOPS_PROMPTS_DIR} or pass a directory)")
    return path


def _layout_problems(directory: Path) -> Iterator[Problem]:
    """Files the loader would silently skip because they are not at ``<name>/<version>.yaml``."""
    for stray in sorted(directory.glob(f"*{PROMPT_FILE_SUFFIX}")):
        where = f"{directory}/<name>/<version>{PROMPT_FILE_SUFFIX}"
        yield Problem(stray, 1, "file", f"skipped: prompt files live at {where}")
    for stray in sorted(directory.glob("*/*.yml")):
        yield Problem(stray, 1, "file", f"skipped: prompt files end in {PROMPT_FILE_SUFFIX}", "warning")


def prompt_files(directory: Path | str | None = None) -> list[Path]:
    """Every ``<name>/<version>.yaml`` under the prompts directory, in a stable order."""
    return sorted(_directory(directory).glob(f"*/*{PROMPT_FILE_SUFFIX}"))


def prompt_names(directory: Path | str | None = None) -> list[str]:
    """The names of the prompts that have at least one version file, sorted."""
    return sorted({path.parent.name for path in prompt_files(directory)})


def validate_prompts(directory: Path | str | None = None, *, allow_unknown_models: bool = False) -> list[Problem]:
    """Every problem in every prompt file, by file and line; raises FileNotFoundError for no directory."""
    root = _directory(directory)
    problems = list(_layout_problems(root))
    for path in prompt_files(root):
        problems.extend(check_prompt_file(path, allow_unknown_models=allow_unknown_models)[1])
    return problems


def load_prompts(directory: Path | str | None = None) -> dict[str, dict[str, PromptVersion]]:
    """``{name: {version: PromptVersion}}``, names sorted, versions oldest first by semver.

    Raises ``PromptFileError`` listing the errors of every bad file, so nothing half-valid is served.
    """
    loaded: dict[str, dict[str, PromptVersion]] = {}
    errors: list[Problem] = []
    for path in prompt_files(directory):
        prompt, problems = check_prompt_file(path, check_models_priced=False)
        if prompt is None:
            errors.extend(problem for problem in problems if problem.severity == "error")
        else:
            loaded.setdefault(prompt.name, {})[prompt.version] = prompt
    if errors:
        raise PromptFileError(errors)
    return {name: {v: loaded[name][v] for v in sort_versions(loaded[name])} for name in sorted(loaded)}


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"support-chat@2.3.1"`` → ``("support-chat", "2.3.1")``; no ``@`` → latest (None)."""
    name, _, version = ref.partition("@")
    return name, version or None


def get_prompt(name: str, version: str | None = None, directory: Path | str | None = None) -> PromptVersion:
    """One version of one prompt, the latest release when ``version`` is None."""
    prompts = load_prompts(directory)
    if name not in prompts:
        known = ", ".join(prompts) or "none"
        raise PromptNotFoundError(f"no prompt named {name!r}{_suggestion(name, prompts)} (prompts: {known})")
    versions = prompts[name]
    chosen = version if version is not None else latest_version(versions)
    if chosen not in versions:
        raise PromptNotFoundError(f"{name} has no version {chosen!r} (versions: {', '.join(versions)})")
    return versions[chosen]


# --- using a version --------------------------------------------------------------------------


def render(prompt_version: PromptVersion, variables: Mapping[str, str]) -> str:
    """The system prompt with ``{name}`` replaced; ``{{name}}`` stays a literal ``{name}``."""
    missing = [name for name in prompt_version.variables if name not in variables]
    if missing:
        raise PromptRenderError(
            f"{prompt_version.ref}: no value for {', '.join(missing)} "
            f"(the system prompt uses {', '.join('{' + name + '}' for name in prompt_version.variables)}; "
            "write {{name}} for a literal {name})"
        )

    def substitute(match: re.Match[str]) -> str:
        escaped, variable = match.groups()
        return "{" + escaped + "}" if escaped else str(variables[variable])

    return PLACEHOLDER.sub(substitute, prompt_version.system)


def _parameter_changes(a: PromptParameters, b: PromptParameters) -> Iterator[str]:
    before, after = a.model_dump(exclude_none=True), b.model_dump(exclude_none=True)
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            yield f"parameters.{key}: {before.get(key, 'unset')} -> {after.get(key, 'unset')}"


def diff(a: PromptVersion, b: PromptVersion) -> str:
    """What changes for the model from ``a`` to ``b``: model, parameters, then the system prompt."""
    lines = [f"{a.ref} -> {b.ref}", f"changelog ({b.version}): {b.changelog}"]
    changes = ([f"model: {a.model} -> {b.model}"] if a.model != b.model else []) + list(
        _parameter_changes(a.parameters, b.parameters)
    )
    lines.extend(changes or ["model and parameters: unchanged"])
    system_diff = list(
        difflib.unified_diff(
            a.system.splitlines(), b.system.splitlines(),
            fromfile=f"{a.ref} system", tofile=f"{b.ref} system", lineterm="",
        )
    )  # fmt: skip
    lines.extend(system_diff or ["system: unchanged"])
    return "\n".join(lines)
