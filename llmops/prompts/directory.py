"""The prompts directory: every ``<name>/<version>.yaml`` under ``LLMOPS_PROMPTS_DIR``, loaded whole.

Loading is all or nothing: one bad file fails the load with every error of every file, so a
half-valid set of prompts is never served. Validation (``validate_prompts``) is the CI side:
every problem, warnings included, and files the loader would silently skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmops import settings
from llmops.prompts.checks import Problem, PromptFileError, check_prompt_file, did_you_mean
from llmops.prompts.schema import PROMPT_FILE_SUFFIX, PromptVersion
from llmops.prompts.versions import latest_version, sort_versions


class PromptNotFoundError(LookupError):
    """No such prompt name or version in the prompts directory."""


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
    """Every ``<name>/<version>.yaml`` under the prompts directory, in a stable order.

    Args:
        directory: The prompts directory; None reads ``LLMOPS_PROMPTS_DIR`` (default ``./prompts``).

    Returns:
        The version files, sorted by path.

    Raises:
        FileNotFoundError: There is no such directory.

    Example:
        ```python
        prompt_files("prompts")  # [PosixPath('prompts/code-review/3.0.1.yaml'), ...]
        ```
    """
    return sorted(_directory(directory).glob(f"*/*{PROMPT_FILE_SUFFIX}"))


def prompt_names(directory: Path | str | None = None) -> list[str]:
    """The names of the prompts that have at least one version file, sorted.

    Args:
        directory: The prompts directory; None reads ``LLMOPS_PROMPTS_DIR``.

    Returns:
        Prompt names (directory names), without reading the files.

    Raises:
        FileNotFoundError: There is no such directory.

    Example:
        ```python
        prompt_names("prompts")  # ['code-review', 'doc-summary', 'help-center', 'support-chat']
        ```
    """
    return sorted({path.parent.name for path in prompt_files(directory)})


def validate_prompts(directory: Path | str | None = None, *, allow_unknown_models: bool = False) -> list[Problem]:
    """Every problem in every prompt file, by file and line, for CI and ``llmops prompts validate``.

    Args:
        directory: The prompts directory; None reads ``LLMOPS_PROMPTS_DIR``.
        allow_unknown_models: Do not warn about models genai-prices cannot price.

    Returns:
        Errors and warnings, misplaced files first, then file by file; empty when all is well.

    Raises:
        FileNotFoundError: There is no such directory.

    Example:
        ```python
        errors = [p for p in validate_prompts("prompts") if p.severity == "error"]
        ```
    """
    root = _directory(directory)
    problems = list(_layout_problems(root))
    for path in prompt_files(root):
        problems.extend(check_prompt_file(path, allow_unknown_models=allow_unknown_models)[1])
    return problems


def load_prompts(directory: Path | str | None = None) -> dict[str, dict[str, PromptVersion]]:
    """Every version of every prompt, or an error naming every bad file.

    Args:
        directory: The prompts directory; None reads ``LLMOPS_PROMPTS_DIR``.

    Returns:
        ``{name: {version: PromptVersion}}``, names sorted, versions oldest first by semver.

    Raises:
        FileNotFoundError: There is no such directory.
        PromptFileError: Some file has errors; all of them are listed, so nothing half-valid is served.

    Example:
        ```python
        prompts = load_prompts("prompts")
        list(prompts["support-chat"])  # ['2.3.0', '2.3.1']
        ```
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


def get_prompt(name: str, version: str | None = None, directory: Path | str | None = None) -> PromptVersion:
    """One version of one prompt, the latest release when ``version`` is None.

    Args:
        name: The prompt's name.
        version: A semantic version; None picks the latest release (see ``latest_version``).
        directory: The prompts directory; None reads ``LLMOPS_PROMPTS_DIR``.

    Returns:
        The version, read and validated.

    Raises:
        FileNotFoundError: There is no such directory.
        PromptFileError: Some prompt file has errors (the whole directory is loaded).
        PromptNotFoundError: No prompt of that name, or no such version of it.

    Example:
        ```python
        prompt = get_prompt("support-chat", directory="prompts")
        prompt.version  # '2.3.1'
        ```
    """
    prompts = load_prompts(directory)
    if name not in prompts:
        known = ", ".join(prompts) or "none"
        raise PromptNotFoundError(f"no prompt named {name!r}{did_you_mean(name, prompts)} (prompts: {known})")
    versions = prompts[name]
    chosen = version if version is not None else latest_version(versions)
    if chosen not in versions:
        raise PromptNotFoundError(f"{name} has no version {chosen!r} (versions: {', '.join(versions)})")
    return versions[chosen]
