"""What a prompt version file holds: the pydantic models of ``prompts/<name>/<version>.yaml``.

The schema says what a valid version is (a semantic version, a dated model id, a non-empty
system prompt, checked sampling parameters) and which part of it changes what the model is
asked (``content_hash``). Reading files and locating problems by line is ``checks``' job; this
module knows nothing about YAML.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    computed_field,
    field_validator,
    model_validator,
)

from llmops.prompts.versions import SEMVER

PROMPT_FILE_SUFFIX = ".yaml"
PINNED_DATE = re.compile(r"[-@](\d{8})(?:-v\d+(?::\d+)?)?$")
"""A dated snapshot id: Anthropic's ``claude-3-5-sonnet-20241022``, Vertex's ``…@20241022``,
Bedrock's ``…-20241022-v2:0``. Anything else (``-latest``, ``claude-sonnet-4-5``) is an alias
that the provider moves to a new model without notice."""
PROMPT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PLACEHOLDER = re.compile(r"\{\{([A-Za-z_]\w*)\}\}|\{([A-Za-z_]\w*)\}")
"""``{name}`` is a variable, ``{{name}}`` a literal ``{name}``; any other brace (a JSON example
in the prompt, say) is text and needs no escaping."""


def is_pinned_model(model: str) -> bool:
    """Whether a model id names a dated snapshot rather than an alias the provider can move.

    Args:
        model: A model id as written in a prompt file or sent to the API.

    Returns:
        True for a dated snapshot id with a real calendar date, False for an alias.

    Example:
        >>> is_pinned_model("claude-3-5-sonnet-20241022"), is_pinned_model("claude-sonnet-4-5")
        (True, False)
        >>> is_pinned_model("anthropic.claude-3-5-sonnet-20241022-v2:0"), is_pinned_model("model-20241399")
        (True, False)
    """
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
    """Sampling parameters sent with every call; other Messages API parameters pass through unchecked."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_tokens: Annotated[int, Field(strict=True, gt=0)]
    """The answer's token limit."""
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
    """One version of one prompt, as read from ``<name>/<version>.yaml``; immutable once released.

    Example:
        >>> prompt = PromptVersion(
        ...     name="support-chat", version="1.0.0", model="claude-3-5-sonnet-20241022",
        ...     created="2025-11-15", author="team-ai", changelog="First version.",
        ...     system="You help {customer} with Acme orders.", parameters={"max_tokens": 512},
        ... )
        >>> prompt.ref, prompt.variables
        ('support-chat@1.0.0', ['customer'])
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The prompt's name: its directory's name, a lowercase slug."""
    version: str
    """The semantic version; also the file's name without ``.yaml``."""
    model: StrictText
    """The dated model id the version is written and evaluated for (never an alias)."""
    created: dt.date
    author: StrictText
    changelog: StrictText
    """What changed since the previous version, and why."""
    system: StrictText
    """The system prompt; ``{name}`` placeholders are filled by ``render``."""
    parameters: PromptParameters
    eval_metrics: dict[str, Any] | None = None
    """Metric values the eval flow writes back into a released file (not part of the content hash)."""
    compression: CompressionHints | None = None
    path: Path | None = None
    """The file it was read from; None for a version built in code."""

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

    @computed_field  # type: ignore[prop-decorator]  # mypy can't type decorators on @property (mypy#1362); pydantic's own idiom
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
