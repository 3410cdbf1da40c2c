"""YAML from users, loaded with limits: size, nodes, aliases and depth, each checked while composing.

``yaml.SafeLoader`` builds no arbitrary objects, but it still trusts a file's shape: a
"billion laughs" file (anchors whose aliases nest nine times over) loads into a few kilobytes
of shared references that explode when anything walks them, and a file nested a thousand deep
ends in a ``RecursionError``. ``LimitedLoader`` counts while it composes the node tree, before
any Python object exists: every node, every alias (an alias costs as many nodes as the subtree
it points to, so an expansion is paid for in full) and the nesting depth (an alias's subtree
counts at the depth it is used). The first limit crossed stops the load with a
``YAMLLimitError`` carrying the line of the offending node. ``read_limited`` bounds the bytes read.

A prompt file or a ``scorers.yaml`` holds a few dozen nodes, ten levels at most and rarely an
alias, so the limits are far above any real file and far below what could hurt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

MAX_YAML_BYTES = 256 * 1024
"""The largest YAML file read; a prompt file is a few kilobytes."""
MAX_YAML_NODES = 10_000
"""Nodes composed, each alias counting as many nodes as the subtree it repeats."""
MAX_YAML_ALIASES = 100
"""Alias uses (``*name``) in one document."""
MAX_YAML_DEPTH = 50
"""Nesting levels of collections, an alias's subtree counting at the depth it is used."""


class YAMLLimitError(yaml.MarkedYAMLError):
    """A YAML file over one of the limits; ``problem_mark`` is where (``line`` is 0-based there).

    It is a ``MarkedYAMLError``, so code that reports YAML errors with their line reports it too.
    """

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)

    @property
    def line(self) -> int:
        """The 1-based line of the offending node (1 when unknown)."""
        return self.problem_mark.line + 1 if self.problem_mark is not None else 1

    def __str__(self) -> str:
        return str(self.problem)


class LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents over ``MAX_YAML_NODES``, ``MAX_YAML_ALIASES`` or ``MAX_YAML_DEPTH``.

    Example:
        >>> loader = LimitedLoader("a: &x [1, 2]\\nb: *x\\n")
        >>> loader.get_single_data()
        {'a': [1, 2], 'b': [1, 2]}
        >>> loader.dispose()
    """

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._aliases = 0
        self._depth = 0
        self._deepest = 0
        self._sizes: dict[int, tuple[int, int]] = {}
        """Per anchored node (by id): the nodes composed under it and its height, what an alias repeats."""

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self._nodes += nodes
        if self._nodes > MAX_YAML_NODES:
            raise YAMLLimitError(f"too many YAML nodes: more than {MAX_YAML_NODES:,} (aliases count what they repeat)", mark)

    def _reach(self, deepest: int, mark: yaml.Mark) -> None:
        self._deepest = max(self._deepest, deepest)
        if deepest > MAX_YAML_DEPTH:
            raise YAMLLimitError(f"nested too deeply: more than {MAX_YAML_DEPTH} levels", mark)

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Flow collections ("[[[[…") are refused as the scanner meets them: the scanner runs up
        # to 1,024 characters ahead of the composer, and each open bracket costs it a little more.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise YAMLLimitError(f"nested too deeply: more than {MAX_YAML_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        mark = event.start_mark
        depth = self._depth + 1
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise YAMLLimitError(f"too many YAML aliases: more than {MAX_YAML_ALIASES}", mark)
            target = self.anchors.get(event.anchor) if event.anchor is not None else None
            if target is not None:
                nodes, height = self._sizes.get(id(target), (1, 1))
                self._count(nodes, mark)
                self._reach(depth + height - 1, mark)
            return super().compose_node(parent, index)
        self._count(1, mark)
        self._reach(depth, mark)
        before_nodes, before_deepest = self._nodes, self._deepest
        self._depth, self._deepest = depth, depth
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth = depth - 1
        height = self._deepest - depth + 1
        if getattr(event, "anchor", None) is not None and node is not None:
            self._sizes[id(node)] = (self._nodes - before_nodes + 1, height)
        self._deepest = max(before_deepest, self._deepest)
        return node


def read_limited(path: Path | str, limit: int = MAX_YAML_BYTES) -> bytes:
    """A file's bytes, refusing one over ``limit`` without reading the rest.

    Args:
        path: The file.
        limit: The most bytes accepted.

    Returns:
        The file's content.

    Raises:
        YAMLLimitError: The file is larger than ``limit`` (line 1).
        OSError: It cannot be read.
    """
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        mark = yaml.Mark(str(path), 0, 0, 0, None, None)
        raise YAMLLimitError(f"file too large: more than {limit:,} bytes", mark)
    return data


def compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """One document's node tree (for line numbers) and its data, within the limits.

    Args:
        text: The YAML.

    Returns:
        ``(node, data)``; ``(None, None)`` for an empty document.

    Raises:
        YAMLLimitError: The document is over a limit; ``.line`` is the offending node's line.
        yaml.MarkedYAMLError: It is not valid YAML.

    Example:
        >>> node, data = compose_and_load("a: 1")
        >>> data, node.start_mark.line
        ({'a': 1}, 0)
    """
    loader = LimitedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within the limits of ``LimitedLoader``.

    Args:
        text: The YAML.

    Returns:
        The document's data.

    Raises:
        YAMLLimitError: The document is over a limit.
        yaml.YAMLError: It is not valid YAML.
    """
    return compose_and_load(text)[1]
