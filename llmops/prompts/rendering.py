"""Using a prompt version: its system prompt with the variables filled in, and a diff of two versions.

Rendering is strict (a missing variable is an error, never an empty string) because a prompt
with a hole in it is still accepted by the API and only shows up as worse answers. The diff
puts first what changes the model's behaviour: model, parameters, then the system prompt.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping

from llmops.prompts.schema import PLACEHOLDER, PromptParameters, PromptVersion


class PromptRenderError(ValueError):
    """A placeholder in the system prompt had no value."""


def render(prompt_version: PromptVersion, variables: Mapping[str, str]) -> str:
    """The system prompt with ``{name}`` replaced; ``{{name}}`` stays a literal ``{name}``.

    Args:
        prompt_version: The version whose system prompt is rendered.
        variables: A value for each of ``prompt_version.variables`` (extra ones are ignored).

    Returns:
        The text to send as the system prompt.

    Raises:
        PromptRenderError: A placeholder has no value.

    Example:
        >>> prompt = PromptVersion(
        ...     name="greeting", version="1.0.0", model="claude-3-5-haiku-20241022", created="2025-11-15",
        ...     author="team-ai", changelog="First.", system="Greet {customer}; reply as {{json}}.",
        ...     parameters={"max_tokens": 64},
        ... )
        >>> render(prompt, {"customer": "Ada"})
        'Greet Ada; reply as {json}.'
    """
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
    """What changes for the model from ``a`` to ``b``: model, parameters, then the system prompt.

    Args:
        a: The version before.
        b: The version after; its changelog heads the diff.

    Returns:
        Plain text: a header, one line per changed model or parameter, and a unified diff of
        the system prompts (or ``unchanged`` lines).

    Example:
        >>> common = dict(name="greeting", model="claude-3-5-haiku-20241022", created="2025-11-15", author="team-ai")
        >>> old = PromptVersion(version="1.0.0", changelog="First.", system="Be brief.",
        ...                     parameters={"max_tokens": 64}, **common)
        >>> new = PromptVersion(version="1.1.0", changelog="Longer answers.", system="Be brief.",
        ...                     parameters={"max_tokens": 256}, **common)
        >>> print(diff(old, new))
        greeting@1.0.0 -> greeting@1.1.0
        changelog (1.1.0): Longer answers.
        parameters.max_tokens: 64 -> 256
        system: unchanged
    """
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
