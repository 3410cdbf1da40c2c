"""A pinned Anthropic model and its credentials as a Prefect Block."""

from __future__ import annotations

import re

import anthropic
from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from llmops import settings
from prefect_llmops.blocks.catalog import DOCUMENTATION_URL, LOGO_URL

PINNED_MODEL = re.compile(r"^[a-z0-9][a-z0-9.\-]*-\d{8}$")
"""A dated snapshot id such as ``claude-3-5-sonnet-20241022``; aliases move under you."""


class AnthropicModel(Block):
    """A pinned Claude model with the key, endpoint, timeout and retries to call it.

    Evaluations and drift checks compare runs over time, so the model must be a dated
    snapshot, never an alias like ``claude-3-5-sonnet-latest`` that Anthropic repoints.

    Example:
        ```python
        from prefect_llmops.blocks import AnthropicModel

        model = AnthropicModel.load("BLOCK_NAME")
        reply = model.client().messages.create(
            model=model.model, max_tokens=256, messages=[{"role": "user", "content": "Hello"}]
        )
        ```
    """

    _logo_url = LOGO_URL
    _documentation_url = DOCUMENTATION_URL
    _block_type_name = "LLMOps Anthropic Model"
    _description = "A pinned Claude model id with the API key, endpoint, timeout and retries to call it."

    model: str = Field(
        description="Dated model snapshot, e.g. claude-3-5-sonnet-20241022. Aliases (-latest, undated) are refused.",
    )
    api_key: SecretStr | None = Field(
        default=None, title="API key", description="Anthropic API key. Empty: the ANTHROPIC_API_KEY variable."
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description="API endpoint, e.g. the local simulator http://127.0.0.1:8765. Empty: ANTHROPIC_BASE_URL or Anthropic's.",
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="SDK retries on 408/409/429/5xx and connection errors.")
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600, description="Per-request timeout in seconds.")

    @field_validator("model")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not PINNED_MODEL.match(value):
            raise ValueError(
                f"model {value!r} is not a dated snapshot id; aliases change behind your evaluations. "
                "Pin one such as 'claude-3-5-sonnet-20241022' or 'claude-sonnet-4-5-20250929'"
            )
        return value

    def client(self) -> anthropic.Anthropic:
        """An SDK client with this block's key, endpoint, timeout and retries."""
        api_key = self.api_key.get_secret_value() if self.api_key else settings.env(settings.ANTHROPIC_API_KEY)
        if not api_key:
            raise ValueError(f"no Anthropic API key: set api_key on this block or the {settings.ANTHROPIC_API_KEY} variable")
        return anthropic.Anthropic(
            api_key=api_key, base_url=self.base_url, max_retries=self.max_retries, timeout=self.timeout_seconds
        )
