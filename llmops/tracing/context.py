"""What a traced call served and for whom: the ``TraceContext``, and the scope ``trace_context`` sets.

The app knows the user, session or feature deep in a request handler, far from where the
client was wrapped; so the context lives in a ``ContextVar`` that every traced call reads when
it starts. That makes it nest, follow asyncio tasks, and stay out of the SDK's signatures. The
client's own defaults (given to ``trace_anthropic``) are merged under it, in ``calls``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TraceContext", "current_trace_context", "trace_context"]


@dataclass(frozen=True, slots=True)
class TraceContext:
    """What a call served and for whom; unset fields (None) inherit from the enclosing scope.

    Args:
        feature: The product feature the call served (``"chat_response"``).
        prompt_name: The prompt it used.
        prompt_version: That prompt's version.
        environment: ``"production"``, ``"staging"``...; unset, the trace says ``"production"``.
        user_id: Who it served (the store keeps a salted hash, never the id).
        session_id: The conversation or request it belongs to.
        tags: Free labels; scopes add to them.
        metadata: Free key-value pairs; inner scopes override keys.

    Example:
        >>> TraceContext(feature="chat_response", tags=("beta",)).merged(TraceContext(user_id="u-42")).user_id
        'u-42'
    """

    feature: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    environment: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, inner: TraceContext) -> TraceContext:
        """This context with ``inner`` on top: ``inner`` wins field by field.

        Args:
            inner: The narrower scope (a nested ``trace_context``, or the block around a call).

        Returns:
            A new context: set fields of ``inner`` override, tags accumulate (without repeats),
            metadata keys are overridden; ``self`` itself when ``inner`` is empty.

        Example:
            >>> outer = TraceContext(feature="chat_response", tags=("beta",), metadata={"ticket": 7})
            >>> outer.merged(TraceContext(prompt_version="2.4.0", tags=("canary",), metadata={"ticket": 8}))
            ... # doctest: +NORMALIZE_WHITESPACE
            TraceContext(feature='chat_response', prompt_name=None, prompt_version='2.4.0', environment=None,
                         user_id=None, session_id=None, tags=('beta', 'canary'), metadata={'ticket': 8})
        """
        if inner is _EMPTY_CONTEXT:
            return self
        return TraceContext(
            feature=inner.feature if inner.feature is not None else self.feature,
            prompt_name=inner.prompt_name if inner.prompt_name is not None else self.prompt_name,
            prompt_version=inner.prompt_version if inner.prompt_version is not None else self.prompt_version,
            environment=inner.environment if inner.environment is not None else self.environment,
            user_id=inner.user_id if inner.user_id is not None else self.user_id,
            session_id=inner.session_id if inner.session_id is not None else self.session_id,
            tags=tuple(dict.fromkeys((*self.tags, *inner.tags))),
            metadata={**self.metadata, **inner.metadata},
        )


_EMPTY_CONTEXT = TraceContext()
_CURRENT_CONTEXT: ContextVar[TraceContext] = ContextVar("llmops_trace_context", default=_EMPTY_CONTEXT)


def current_trace_context() -> TraceContext:
    """The context that a call made here and now would be tagged with (besides client defaults).

    Returns:
        The merged ``trace_context`` scopes around the caller; an empty context outside any.

    Example:
        >>> with trace_context(feature="chat_response"):
        ...     current_trace_context().feature
        'chat_response'
        >>> current_trace_context().feature is None
        True
    """
    return _CURRENT_CONTEXT.get()


@contextmanager
def trace_context(
    *,
    feature: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
    environment: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[TraceContext]:
    """Tag every traced call made inside the block.

    It overrides the defaults given to ``trace_anthropic`` and nests (inner fields win, tags
    accumulate). It is a ``ContextVar``: it follows asyncio tasks started inside the block, so
    concurrent requests never see each other's user; a new thread starts without it.

    Args:
        feature: The product feature the calls serve.
        prompt_name: The prompt they use.
        prompt_version: That prompt's version (for instance the one the registry resolved).
        environment: ``"production"``, ``"staging"``...
        user_id: Who they serve; stored as a salted hash.
        session_id: The conversation or request they belong to.
        tags: Labels added to the enclosing scope's.
        metadata: Key-value pairs; override the enclosing scope's keys.

    Returns:
        A context manager yielding the merged context in force inside the block.

    Raises:
        TypeError: ``tags`` is a single string rather than a list of tags.

    Example:
        Per request, in a web handler:

        ```python
        with trace_context(user_id=request.user.id, session_id=request.session_id, prompt_version=version):
            reply = client.messages.create(model=model, max_tokens=512, messages=messages)
        ```

        Scopes nest; inner fields win and tags accumulate:

        >>> with trace_context(feature="chat_response", tags=["beta"]):
        ...     with trace_context(user_id="u-42", tags=["canary"]) as scope:
        ...         print(scope.feature, scope.user_id, scope.tags)
        chat_response u-42 ('beta', 'canary')
    """
    if isinstance(tags, str):
        raise TypeError(f"trace_context(tags=...) takes a list of tags, not the string {tags!r}")
    scope = _CURRENT_CONTEXT.get().merged(
        TraceContext(
            feature=feature,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            environment=environment,
            user_id=user_id,
            session_id=session_id,
            tags=tuple(tags),
            metadata=dict(metadata or {}),
        )
    )
    token = _CURRENT_CONTEXT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT_CONTEXT.reset(token)
