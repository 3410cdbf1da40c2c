"""Request shapes of the Messages API and its error convention, as the simulator accepts them.

Only what the simulator reads is modelled; other request fields (tools, metadata, thinking…)
are accepted and ignored, as a client written for the real API would expect.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.sim.config import UnknownModelError, describe_validation_error, resolve_model

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "not_found_error",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
]


class ApiError(Exception):
    """An error the server answers with Anthropic's JSON shape and the given status.

    Args:
        status: The HTTP status (400, 401, 404, 429, 500, 529).
        error_type: The API's ``error.type``.
        message: What a client developer reads.
        headers: Extra response headers, e.g. ``retry-after`` on a 429.
    """

    def __init__(self, status: int, error_type: ErrorType, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON error body, as the SDK parses it into its exception classes.

        Example:
            >>> ApiError(404, "not_found_error", "no such batch").body("req_1")["error"]
            {'type': 'not_found_error', 'message': 'no such batch'}
        """
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


class CacheControl(BaseModel):
    """A block's cache breakpoint: the prompt up to here is cached for ``ttl``."""

    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] = "5m"


class ContentBlock(BaseModel):
    """A content block; non-text blocks (images, tool results) count by their JSON size."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    cache_control: CacheControl | None = None

    def as_text(self) -> str:
        """The block's text, or its JSON for a block that is not text (what its tokens are counted on)."""
        if self.type == "text" and self.text is not None:
            return self.text
        return json.dumps(self.model_dump(exclude={"cache_control"}, exclude_none=True), sort_keys=True)


class MessageParam(BaseModel):
    """One turn of the conversation: a string or a list of content blocks."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    def blocks(self) -> list[ContentBlock]:
        """The content as blocks (a string is one text block)."""
        if isinstance(self.content, str):
            return [ContentBlock(type="text", text=self.content)]
        return self.content

    def text(self) -> str:
        """The turn's blocks as text, one per line."""
        return "\n".join(block.as_text() for block in self.blocks())


class CountTokensRequest(BaseModel):
    """Body of ``POST /v1/messages/count_tokens``: the prompt without generation settings."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[ContentBlock] | None = None

    def system_blocks(self) -> list[ContentBlock]:
        """The system prompt as blocks; none when it is absent or empty."""
        if self.system is None:
            return []
        if isinstance(self.system, str):
            return [ContentBlock(type="text", text=self.system)] if self.system else []
        return self.system

    def system_text(self) -> str:
        """The system prompt as text (blocks one per line)."""
        return "\n".join(block.as_text() for block in self.system_blocks())

    def last_user_text(self) -> str:
        """What the user asked last: the turn the answer responds to."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""


class MessagesRequest(CountTokensRequest):
    """Body of ``POST /v1/messages``."""

    max_tokens: int = Field(ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    stop_sequences: list[str] | None = None
    stream: bool = False


RequestModel = TypeVar("RequestModel", bound=BaseModel)


def parse_request(model: type[RequestModel], body: object) -> RequestModel:
    """Validate ``body``, turning pydantic's errors into one readable invalid_request_error.

    Args:
        model: The request model, e.g. ``MessagesRequest``.
        body: The parsed JSON body.

    Returns:
        The validated request.

    Raises:
        ApiError: 400 ``invalid_request_error`` naming every bad field.

    Example:
        >>> body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
        >>> parse_request(MessagesRequest, body).last_user_text()
        'Hi'
        >>> parse_request(MessagesRequest, {**body, "max_tokens": 0})
        Traceback (most recent call last):
        ...
        llmops.sim.protocol.ApiError: max_tokens: Input should be greater than or equal to 1
    """
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise ApiError(400, "invalid_request_error", describe_validation_error(error)) from None


def known_model(name: str) -> str:
    """The dated id of a model the simulator serves, or the API's 404 for any other.

    Args:
        name: The ``model`` of a request: a dated id or an alias.

    Returns:
        The dated model id.

    Raises:
        ApiError: 404 ``not_found_error`` listing the known models and aliases.

    Example:
        >>> known_model("claude-sonnet-4-5")
        'claude-sonnet-4-5-20250929'
    """
    try:
        return resolve_model(name)
    except UnknownModelError as error:
        raise ApiError(404, "not_found_error", str(error)) from None
