"""Which stores a process uses: ``get_engine`` reports every call here, and a listener may ask.

The command line names the store a command read this way (``prefect_llmops.cli.store_note``).
This module imports nothing, so listening costs a command nothing when it never opens a store.
"""

from __future__ import annotations

from collections.abc import Callable

_listeners: list[Callable[[str], None]] = []


def on_use(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(url)`` on every ``get_engine`` from now on (the URL unmasked: mask it to show it).

    Args:
        listener: Called with the store's URL.

    Returns:
        A function that removes the listener again.

    Example:
        >>> seen = []
        >>> stop = on_use(seen.append)
        >>> used("sqlite://"); stop(); used("sqlite:///other.db")
        >>> seen
        ['sqlite://']
    """
    _listeners.append(listener)

    def remove() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return remove


def used(url: str) -> None:
    """Tell the listeners that ``url``'s store is used (``get_engine`` calls it)."""
    for listener in list(_listeners):
        listener(url)
