"""Prompt version files: ``prompts/<name>/<version>.yaml``, one immutable file per version.

"Prompts are code": a version is reviewed, validated in CI and released like code. This
package reads the files (DESIGN.md §3), checks them with a line number for every problem, hashes
the content that changes what the model is asked, renders ``{variable}`` placeholders and diffs
two versions. Which version serves which traffic is registry state (``llmops.release``), not
file state.

- ``versions``: semantic-version order, the latest release, ``name@version`` refs.
- ``schema``: the file's fields as pydantic models (``PromptVersion``) and its content hash.
- ``checks``: reading one file, every problem located by line (``check_prompt_file``).
- ``directory``: the prompts directory, loaded all or nothing (``load_prompts``, ``get_prompt``).
- ``rendering``: ``render`` a version's system prompt, ``diff`` two versions.
- ``safe_yaml``: YAML from users loaded within limits of size, nodes, aliases and depth.

Every name is importable from ``llmops.prompts`` itself, which is how the rest of the project
imports them.
"""

from llmops.prompts.checks import (
    FIELD_HINTS,
    FILE_FIELDS,
    PASSED_THROUGH_PARAMETERS,
    Problem,
    PromptFileError,
    Severity,
    check_prompt_file,
    did_you_mean,
    load_prompt_file,
)
from llmops.prompts.directory import (
    PromptNotFoundError,
    get_prompt,
    load_prompts,
    prompt_files,
    prompt_names,
    validate_prompts,
)
from llmops.prompts.rendering import PromptRenderError, diff, render
from llmops.prompts.safe_yaml import (
    MAX_YAML_ALIASES,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    LimitedLoader,
    YAMLLimitError,
    compose_and_load,
    read_limited,
    safe_load,
)
from llmops.prompts.schema import (
    PINNED_DATE,
    PLACEHOLDER,
    PROMPT_FILE_SUFFIX,
    PROMPT_NAME,
    CompressionHints,
    PromptParameters,
    PromptVersion,
    StrictText,
    is_pinned_model,
)
from llmops.prompts.versions import SEMVER, is_pre_release, latest_version, parse_ref, semver_key, sort_versions

__all__ = [
    "MAX_YAML_ALIASES",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "LimitedLoader",
    "YAMLLimitError",
    "compose_and_load",
    "read_limited",
    "safe_load",
    "FIELD_HINTS",
    "FILE_FIELDS",
    "PASSED_THROUGH_PARAMETERS",
    "PINNED_DATE",
    "PLACEHOLDER",
    "PROMPT_FILE_SUFFIX",
    "PROMPT_NAME",
    "SEMVER",
    "CompressionHints",
    "Problem",
    "PromptFileError",
    "PromptNotFoundError",
    "PromptParameters",
    "PromptRenderError",
    "PromptVersion",
    "Severity",
    "StrictText",
    "check_prompt_file",
    "did_you_mean",
    "diff",
    "get_prompt",
    "is_pinned_model",
    "is_pre_release",
    "latest_version",
    "load_prompt_file",
    "load_prompts",
    "parse_ref",
    "prompt_files",
    "prompt_names",
    "render",
    "semver_key",
    "sort_versions",
    "validate_prompts",
]
