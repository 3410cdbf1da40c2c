"""Git tags for releases: ``prompt/<name>/<version>`` where a version became production.

The prompt files live in a git checkout; tagging the commit a version was released from lets
``git log prompt/support-chat/1.3.0`` answer "what exactly went out". Tagging is best effort
outside a checkout, and never moves a tag: a version promoted again after a rollback keeps
its first one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from llmops import settings
from llmops.release.registry import PRODUCTION
from llmops.release.rollouts.state import RolloutError, RolloutOutcome

TAG_TIMEOUT_SECONDS = 10


def tag_release(prompt_name: str, version: str, directory: Path | None = None) -> str | None:
    """Tag ``prompt/<name>/<version>`` at HEAD of the git checkout holding the prompt files.

    Args:
        prompt_name: The prompt.
        version: The version released.
        directory: The prompt files' directory; ``settings.prompts_dir()`` by default.

    Returns:
        The tag, or None outside a git checkout, before its first commit, or when the tag
        exists already.

    Raises:
        RolloutError: git refused to create the tag.

    Example:
        ```python
        tag_release("support-chat", "1.3.0")  # "prompt/support-chat/1.3.0"
        ```
    """
    directory = directory or settings.prompts_dir()
    tag = f"prompt/{prompt_name}/{version}"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=TAG_TIMEOUT_SECONDS)

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (FileNotFoundError, NotADirectoryError, subprocess.TimeoutExpired):
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return None
    if git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}").returncode == 0:
        return None
    created = git("tag", tag)
    if created.returncode != 0:
        raise RolloutError(f"could not create git tag {tag} in {directory}: {created.stderr.strip()}")
    return tag


def tag_if_released(outcome: RolloutOutcome) -> str | None:
    """Tag the release when production moved in the production environment and the plan wants tags.

    Args:
        outcome: What a rollout action did.

    Returns:
        The tag created, or None when there was nothing to tag (see ``tag_release``).

    Raises:
        RolloutError: git refused to create the tag; the labels have moved all the same.

    Example:
        ```python
        tag_if_released(start_rollout(engine, request))
        ```
    """
    rollout = outcome.rollout
    if outcome.production_changed_to is None or rollout.environment != PRODUCTION or not rollout.plan.git_tag:
        return None
    return tag_release(rollout.prompt_name, outcome.production_changed_to)
