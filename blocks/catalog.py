"""How the Blocks present themselves in Prefect's block catalog: the logo and the documentation link."""

from __future__ import annotations

PROJECT_URL = "https://github.com/prefect-llmops/prefect-llmops"
"""The project's home; ``pyproject.toml``'s ``[project.urls]`` names the same."""
DOCUMENTATION_URL = f"{PROJECT_URL}#readme"
LOGO_URL = "https://raw.githubusercontent.com/prefect-llmops/prefect-llmops/main/docs/logo.png"
"""``docs/logo.png`` of this repository, as the catalog fetches it (256 × 256 PNG)."""
