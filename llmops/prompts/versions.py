"""Version numbers of prompts: semantic-version order, the latest release, and ``name@version`` refs.

A prompt version is named by a semantic version (``2.3.1``, ``2.4.0-rc.1``). Ordering them is
its own small idea, shared by the file loader, the registry and compression (which picks the
next free version), so it lives here, apart from the file format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?$"
)
"""Semantic version X.Y.Z with an optional pre-release (``2.4.0-rc.1``); no build metadata,
since two files differing only in build metadata would be the same version."""


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
    """Sort key in semantic-version precedence: 2.3.0-rc.1 < 2.3.0 < 2.3.1 < 2.10.0.

    Args:
        version: A semantic version ``X.Y.Z`` with an optional ``-pre.release``.

    Returns:
        A tuple that orders versions as semver.org §11 does: numbers numerically, a
        pre-release before its release, numeric identifiers before alphanumeric ones.

    Raises:
        ValueError: ``version`` is not a semantic version.

    Example:
        >>> sorted(["2.10.0", "2.3.0", "2.3.0-rc.1", "2.3.1"], key=semver_key)
        ['2.3.0-rc.1', '2.3.0', '2.3.1', '2.10.0']
    """
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
    """Whether ``version`` carries a pre-release suffix.

    Args:
        version: A semantic version.

    Returns:
        True for ``2.4.0-rc.1``, False for ``2.4.0``.

    Raises:
        ValueError: ``version`` is not a semantic version.

    Example:
        >>> is_pre_release("2.4.0-rc.1"), is_pre_release("2.4.0")
        (True, False)
    """
    return semver_key(version)[3] == 0


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions oldest first, by semantic-version precedence.

    Args:
        versions: Semantic versions, in any order.

    Returns:
        A new list, oldest first.

    Raises:
        ValueError: One of ``versions`` is not a semantic version.

    Example:
        >>> sort_versions(["1.10.0", "1.2.0", "1.2.0-beta"])
        ['1.2.0-beta', '1.2.0', '1.10.0']
    """
    return sorted(versions, key=semver_key)


def latest_version(versions: Iterable[str]) -> str:
    """The highest release; a pre-release only when there is no release yet (as pip and npm do).

    Args:
        versions: At least one semantic version.

    Returns:
        The version an unqualified ``name`` means.

    Raises:
        ValueError: One of ``versions`` is not a semantic version.

    Example:
        >>> latest_version(["2.3.0", "2.3.1", "2.4.0-rc.1"])
        '2.3.1'
        >>> latest_version(["1.0.0-rc.1", "1.0.0-rc.2"])
        '1.0.0-rc.2'
    """
    ordered = sort_versions(versions)
    releases = [version for version in ordered if not is_pre_release(version)]
    return (releases or ordered)[-1]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split a prompt reference into its name and version.

    Args:
        ref: ``name@version`` or just ``name``.

    Returns:
        ``(name, version)``; the version is None (meaning the latest) when ``ref`` has no ``@``.

    Example:
        >>> parse_ref("support-chat@2.3.1")
        ('support-chat', '2.3.1')
        >>> parse_ref("support-chat")
        ('support-chat', None)
    """
    name, _, version = ref.partition("@")
    return name, version or None
