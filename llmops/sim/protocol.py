"""Request shapes of the Messages API and its error convention, as the simulator accepts them.

Only what the simulator reads is modelled; other request fields (tools, metadata, thinking…)
are accepted and ignored, as a client written for the real API would expect.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.sim.config import describe_validation_error

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "not_found_error",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
]


class ApiError(Exception):
    """An error the server answers with Anthropic's JSON shape and the given status."""

    def __init__(self, status: int, error_type: ErrorType, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


class CacheControl(BaseModel):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] = "5m"


class ContentBlock(BaseModel):
    """A content block; non-text blocks (images, tool results) count by their JSON size."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    cache_control: CacheControl | None = None

    def as_text(self) -> str:
        if self.type == "text" and self.text is not None:
            return self.text
        return json.dumps(self.model_dump(exclude={"cache_control"}, exclude_none=True), sort_keys=True)


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    def blocks(self) -> list[ContentBlock]:
        if isinstance(self.content, str):
            return [ContentBlock(type="text", text=self.content)]
        return self.content

    def text(self) -> str:
        return "\n".join(block.as_text() for block in self.blocks())


class CountTokensRequest(BaseModel):
    """Body of ``POST /v1/messages/count_tokens``: the prompt without generation settings."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[ContentBlock] | None = None

    def system_blocks(self) -> list[ContentBlock]:
        if self.system is None:
            return []
        if isinstance(self.system, str):
            return [ContentBlock(type="text", text=self.system)] if self.system else []
        return self.system

    def system_text(self) -> str:
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
    """Validate ``body``, turning pydantic's errors into one readable invalid_request_error."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise ApiError(400, "invalid_request_error", describe_validation_error(error)) from None
