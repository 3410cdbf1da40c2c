"""Artifact keys: Prefect accepts lowercase letters, digits and dashes only."""

from __future__ import annotations


def artifact_key(*parts: str) -> str:
    """One artifact history per combination of ``parts``, e.g. ("rollout-plan", prompt, environment)."""
    raw = "-".join(parts).lower()
    return "".join(char if char.isalnum() else "-" for char in raw).strip("-")
