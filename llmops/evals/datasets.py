"""Eval datasets: ``evals/<prompt_name>/<dataset>.jsonl``, one example per line.

A dataset is identified by the hash of its canonical examples, which every eval run stores:
two runs are comparable only when they saw the same examples, and reformatting the file
(key order, whitespace) must not make them incomparable. Every bad line is reported at once,
as ``path:line: field: message``, so one edit fixes a whole file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from llmops import settings
from llmops.prompts import PROMPT_NAME, Problem

DATASET_SUFFIX = ".jsonl"
ASSERTION_TYPES = (
    "equals", "contains", "not_contains", "regex", "json_valid", "json_schema", "max_length", "max_cost", "max_latency",
)  # fmt: skip

NonEmptyText = Annotated[str, Field(strict=True, min_length=1)]


def _text_or_list(value: Any) -> str | None:
    """Which branch of a text-or-list field to validate, so errors come from that branch alone."""
    return "text" if isinstance(value, str) else "list" if isinstance(value, list) else None


def _text_or_list_of(what: str) -> Discriminator:
    """The discriminator of a text-or-list field, whose error says the field ``must be {what}``."""
    return Discriminator(_text_or_list, custom_error_type="text_or_list", custom_error_message=f"must be {what}")


_Text = Annotated[NonEmptyText, Tag("text")]
"""The text branch of a text-or-list field."""
Phrases = Annotated[
    _Text | Annotated[list[NonEmptyText], Field(min_length=1), Tag("list")],
    _text_or_list_of("a phrase or a list of phrases"),
]
"""One phrase or a non-empty list of them (``contains``, ``not_contains``)."""
UNION_TAGS = frozenset({"text", "list"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    """One turn of a multi-turn input."""

    role: Literal["user", "assistant"]
    content: NonEmptyText


# --- assertions: deterministic checks on one output ------------------------------------------


class Equals(_Strict):
    """The whole output (stripped of surrounding whitespace) equals ``value``."""

    type: Literal["equals"]
    value: Annotated[str, Field(strict=True)]
    ignore_case: bool = False


class Contains(_Strict):
    """Every phrase in ``value`` occurs in the output."""

    type: Literal["contains"]
    value: Phrases
    ignore_case: bool = False


class NotContains(_Strict):
    """No phrase in ``value`` occurs in the output."""

    type: Literal["not_contains"]
    value: Phrases
    ignore_case: bool = False


class Regex(_Strict):
    """``value`` (a Python regular expression) matches somewhere in the output."""

    type: Literal["regex"]
    value: NonEmptyText
    ignore_case: bool = False

    @field_validator("value")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class JsonValid(_Strict):
    """The output is one JSON document and nothing else: what a program parsing it needs."""

    type: Literal["json_valid"]


class JsonSchema(_Strict):
    """The output is JSON that validates against ``value``, a JSON Schema."""

    type: Literal["json_schema"]
    value: dict[str, Any]


class MaxLength(_Strict):
    """The output has at most ``value`` characters."""

    type: Literal["max_length"]
    value: Annotated[int, Field(strict=True, gt=0)]


class MaxCost(_Strict):
    """The call cost at most ``value`` USD (an unpriced call fails: cost is never assumed 0)."""

    type: Literal["max_cost"]
    value: Annotated[float, Field(gt=0)]


class MaxLatency(_Strict):
    """The call took at most ``value`` milliseconds."""

    type: Literal["max_latency"]
    value: Annotated[float, Field(gt=0)]


Assertion = Annotated[
    Equals | Contains | NotContains | Regex | JsonValid | JsonSchema | MaxLength | MaxCost | MaxLatency,
    Field(discriminator="type"),
]
"""Any one assertion, told apart by its ``type``."""


# --- examples and datasets --------------------------------------------------------------------

EXAMPLE_FIELDS = ("id", "input", "expected", "rubric", "assertions", "metadata")


def canonical_hash(data: Any) -> str:
    """sha256 of JSON data with sorted keys and no whitespace, so key order and layout do not count.

    Args:
        data: JSON-like data; anything not JSON is written as its ``str``.

    Returns:
        The hex digest.

    Example:
        >>> canonical_hash({"b": 1, "a": [1, 2]}) == canonical_hash({"a": [1, 2], "b": 1})
        True
    """
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


class EvalExample(_Strict):
    """One case: what the user sends, and what a good answer looks like.

    One line of a dataset file. Unknown fields are refused (a typo would otherwise drop a check).

    Args:
        id: Unique within its dataset; pairs the examples of two runs.
        input: The user's message, or a conversation of alternating ``{role, content}`` turns
            that starts and ends with the user.
        expected: A reference answer (the similarity scorer compares with it).
        rubric: What a good answer does (the judge grades against it).
        assertions: Deterministic checks on the answer.
        metadata: Anything else; ``metadata.variables`` fills the prompt's ``{variables}``.

    Example:
        >>> example = EvalExample.model_validate(
        ...     {"id": "refund-1", "input": "Can I get a refund?", "assertions": [{"type": "contains", "value": "30 days"}]}
        ... )
        >>> example.messages()
        [{'role': 'user', 'content': 'Can I get a refund?'}]
    """

    id: NonEmptyText
    input: Annotated[
        _Text | Annotated[list[Message], Field(min_length=1), Tag("list")],
        _text_or_list_of("the user's message (a string) or a list of {role, content} messages"),
    ]
    expected: NonEmptyText | None = None
    rubric: NonEmptyText | None = None
    assertions: list[Assertion] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("input")
    @classmethod
    def _conversation_ends_with_user(cls, value: str | list[Message]) -> str | list[Message]:
        """The Messages API needs a conversation that opens with the user and awaits an answer."""
        if isinstance(value, list):
            if value[0].role != "user":
                raise ValueError("a conversation must start with a user message")
            if value[-1].role != "user":
                raise ValueError("a conversation must end with a user message (the turn the model answers)")
            for before, after in zip(value, value[1:], strict=False):
                if before.role == after.role:
                    raise ValueError(f"roles must alternate user/assistant; found two {after.role!r} messages in a row")
        return value

    def messages(self) -> list[dict[str, str]]:
        """The input as Messages API ``messages``."""
        if isinstance(self.input, str):
            return [{"role": "user", "content": self.input}]
        return [message.model_dump() for message in self.input]

    def last_user_message(self) -> str:
        """The message the model answers: the input, or the conversation's last turn."""
        return self.input if isinstance(self.input, str) else self.input[-1].content

    def canonical(self) -> dict[str, Any]:
        """The example as plain JSON data, without defaults, for hashing and storage."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical example: an edited input, expectation or rubric is a new question."""
        return canonical_hash(self.canonical())


class Dataset(BaseModel):
    """The examples of one file, in file order.

    Read one with ``load_dataset``; ``content_hash`` is what makes two runs comparable.

    Args:
        name: The file's stem (``golden`` for ``golden.jsonl``).
        prompt_name: The prompt the examples are for.
        path: The file it was read from, if any.
        examples: The examples; their ids must be unique.

    Example:
        >>> dataset = Dataset(name="golden", prompt_name="support-chat", examples=[
        ...     EvalExample.model_validate({"id": "refund-1", "input": "Can I get a refund?"}),
        ... ])
        >>> dataset.ref, len(dataset), dataset.get("refund-1").input
        ('support-chat/golden', 1, 'Can I get a refund?')
    """

    model_config = ConfigDict(frozen=True)

    name: str
    prompt_name: str
    path: Path | None = None
    examples: list[EvalExample]

    @model_validator(mode="after")
    def _ids_unique(self) -> Dataset:
        seen: set[str] = set()
        for example in self.examples:
            if example.id in seen:
                raise ValueError(f"duplicate example id {example.id!r}")
            seen.add(example.id)
        return self

    @property
    def ref(self) -> str:
        """``prompt_name/name``, how logs and reports name a dataset."""
        return f"{self.prompt_name}/{self.name}"

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical examples in order: what makes two runs comparable."""
        return canonical_hash([example.canonical() for example in self.examples])

    def __len__(self) -> int:
        return len(self.examples)

    def get(self, example_id: str) -> EvalExample:
        """The example with this id; ``KeyError`` when there is none."""
        for example in self.examples:
            if example.id == example_id:
                return example
        raise KeyError(f"{self.ref} has no example {example_id!r}")


def subset(
    dataset: Dataset, *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> tuple[Dataset, dict[str, Any] | None]:
    """``dataset`` cut down for a quick run: its first ``limit`` examples, or a seeded random ``sample``.

    A subset is named ``<name>@first<N>`` or ``<name>@sample<N>-seed<S>`` and its content hash is
    its own, so its runs are never compared with whole-dataset runs; the description returned
    is stored in the run's details (``details["subset"]``), and the rollouts' evaluation gate
    never counts such a run. When the subset would hold every example, it is the dataset itself.

    Args:
        dataset: The dataset.
        limit: Keep the first ``limit`` examples (file order).
        sample: Keep ``sample`` examples drawn at random with ``seed`` (kept in file order).
        seed: The sample's seed: the same seed draws the same examples.

    Returns:
        The examples to run and the subset's description, or ``(dataset, None)`` for the whole.

    Example:
        >>> data = Dataset(name="golden", prompt_name="chat", examples=[
        ...     EvalExample.model_validate({"id": f"e{i}", "input": "hi"}) for i in range(5)])
        >>> part, about = subset(data, limit=2)
        >>> part.name, [e.id for e in part.examples], about["of"]
        ('golden@first2', ['e0', 'e1'], 5)
        >>> subset(data, sample=9)[1] is None
        True
    """
    if limit is not None and sample is not None:
        raise ValueError("pass a limit or a sample, not both")
    size = limit if limit is not None else sample
    if size is None or size >= len(dataset.examples):
        return dataset, None
    if size < 1:
        raise ValueError(f"a subset needs at least one example, got {size}")
    if limit is not None:
        examples, name, about = dataset.examples[:size], f"{dataset.name}@first{size}", {"kind": "first", "size": size}
    else:
        chosen = set(random.Random(seed).sample(range(len(dataset.examples)), size))
        examples = [example for index, example in enumerate(dataset.examples) if index in chosen]
        name, about = f"{dataset.name}@sample{size}-seed{seed}", {"kind": "sample", "size": size, "seed": seed}
    about |= {"of": len(dataset.examples), "dataset": dataset.name, "dataset_hash": dataset.content_hash}
    return dataset.model_copy(update={"name": name, "examples": examples}), about


class DatasetError(ValueError):
    """Bad dataset lines; the message lists every one as ``path:line: field: message``.

    Args:
        problems: Every problem found; ``problems`` keeps them for tools that jump to a line.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


# --- reading ----------------------------------------------------------------------------------


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "missing required field"
    if error["type"] == "extra_forbidden":
        if len(error["loc"]) != 1:
            return "unknown field"
        close = difflib.get_close_matches(str(error["loc"][0]), EXAMPLE_FIELDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field; expected {', '.join(EXAMPLE_FIELDS)}{hint}"
    if error["type"] == "union_tag_invalid":
        return f"unknown assertion type {error['input'].get('type')!r}; expected one of {', '.join(ASSERTION_TYPES)}"
    if error["type"] == "union_tag_not_found":
        return f"an assertion needs a 'type', one of {', '.join(ASSERTION_TYPES)}"
    if error["type"] == "value_error" or isinstance(error.get("input"), dict | list):
        return message
    return f"{message}, got {error['input']!r}"


def _field_path(loc: tuple[Any, ...]) -> str:
    """``('assertions', 0, 'contains', 'value')`` → ``assertions.0.value`` (drop union branch tags)."""
    parts = [str(part) for part in loc if not (isinstance(part, str) and (part in ASSERTION_TYPES or part in UNION_TAGS))]
    return ".".join(parts) or "example"


def _schema_problems(path: Path, line: int, error: ValidationError) -> Iterator[Problem]:
    """One problem per failing field; a union's alternatives are folded into one line."""
    reported: set[str] = set()
    for item in error.errors():
        field = _field_path(tuple(item["loc"]))
        if field in reported:
            continue
        reported.add(field)
        yield Problem(path, line, field, _describe(item))


def _parse_lines(path: Path, text: str) -> tuple[list[tuple[int, EvalExample]], list[Problem]]:
    examples: list[tuple[int, EvalExample]] = []
    problems: list[Problem] = []
    first_line_of: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(path, number, "json", f"not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(path, number, "example", f"expected a JSON object, found {type(data).__name__}"))
            continue
        try:
            example = EvalExample.model_validate(data)
        except ValidationError as exc:
            problems.extend(_schema_problems(path, number, exc))
            continue
        if example.id in first_line_of:
            first = first_line_of[example.id]
            problems.append(Problem(path, number, "id", f"duplicate id {example.id!r} (first on line {first})"))
            continue
        first_line_of[example.id] = number
        examples.append((number, example))
    return examples, problems


def load_dataset(path: Path | str, prompt_name: str | None = None) -> Dataset:
    """Read and validate one dataset file, reporting every bad line at once.

    Args:
        path: A ``.jsonl`` file, one JSON example per line (blank lines are skipped).
        prompt_name: The prompt it is for; the file's directory name when None.

    Returns:
        The dataset, named after the file's stem.

    Raises:
        DatasetError: Listing each bad line (and a missing, empty or non-UTF-8 file) as
            ``path:line: field: message``.

    Example:
        ```python
        dataset = load_dataset("evals/support-chat/golden.jsonl")
        dataset.ref  # 'support-chat/golden'; dataset.content_hash identifies its examples
        ```
    """
    path = Path(path)
    if path.suffix != DATASET_SUFFIX:
        raise DatasetError([Problem(path, 1, "file", f"a dataset is a {DATASET_SUFFIX} file, one JSON example per line")])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError([Problem(path, 1, "file", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise DatasetError([Problem(path, 1, "file", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    examples, problems = _parse_lines(path, text)
    if not examples and not problems:
        problems.append(Problem(path, 1, "file", "no examples: a dataset needs at least one line"))
    if problems:
        raise DatasetError(problems)
    return Dataset(
        name=path.stem,
        prompt_name=prompt_name or path.parent.name,
        path=path,
        examples=[example for _, example in examples],
    )


def prompt_evals_dir(prompt_name: str, directory: Path | str | None = None) -> Path:
    """``<evals dir>/<prompt_name>``: where a prompt's datasets and ``scorers.yaml`` live.

    Args:
        prompt_name: The prompt.
        directory: The evals directory; ``LLMOPS_EVALS_DIR`` (or its default) when None.

    Returns:
        The prompt's folder.

    Raises:
        ValueError: If ``prompt_name`` is not a valid prompt name.
        FileNotFoundError: If the folder does not exist.

    Example:
        ```python
        prompt_evals_dir("support-chat", "evals")  # PosixPath('evals/support-chat')
        ```
    """
    if not PROMPT_NAME.match(prompt_name):
        raise ValueError(f"{prompt_name!r} is not a prompt name (lowercase letters, digits, '.', '_' or '-')")
    root = Path(directory) if directory is not None else settings.evals_dir()
    folder = root / prompt_name
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no evals for prompt {prompt_name!r} (set {settings.LLMOPS_EVALS_DIR} or pass a directory)"
        )
    return folder


def dataset_paths(prompt_name: str, directory: Path | str | None = None) -> list[Path]:
    """Every ``<dataset>.jsonl`` of a prompt, sorted by name, without reading them.

    Args:
        prompt_name: The prompt.
        directory: The evals directory; ``LLMOPS_EVALS_DIR`` (or its default) when None.

    Returns:
        The files; empty when the prompt's folder has none.

    Raises:
        FileNotFoundError: If the prompt has no evals folder.

    Example:
        ```python
        [path.name for path in dataset_paths("support-chat")]  # ['golden.jsonl']
        ```
    """
    return sorted(prompt_evals_dir(prompt_name, directory).glob(f"*{DATASET_SUFFIX}"))


def load_datasets(prompt_name: str, directory: Path | str | None = None) -> list[Dataset]:
    """Every dataset of a prompt, sorted by name.

    Args:
        prompt_name: The prompt.
        directory: The evals directory; ``LLMOPS_EVALS_DIR`` (or its default) when None.

    Returns:
        The datasets.

    Raises:
        FileNotFoundError: If the prompt has no evals folder or no dataset in it.
        DatasetError: One error listing the bad lines of all files.

    Example:
        ```python
        for dataset in load_datasets("support-chat"):
            print(dataset.ref, len(dataset))
        ```
    """
    paths = dataset_paths(prompt_name, directory)
    if not paths:
        folder = prompt_evals_dir(prompt_name, directory)
        raise FileNotFoundError(f"{folder}: no {DATASET_SUFFIX} datasets for prompt {prompt_name!r}")
    datasets: list[Dataset] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            datasets.append(load_dataset(path, prompt_name))
        except DatasetError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DatasetError(problems)
    return datasets
