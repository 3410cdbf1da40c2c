"""How values read in a message: Slack escaping, clipping to a limit, and numbers as money, rates and changes.

Every message part (Block Kit, markdown, plain text, chart labels, stored errors) takes its
strings from here, so a name from traces is shortened the same way everywhere and Slack's
control characters are escaped in one place. Missing values read ``–`` and missing changes
``n/a``, never ``None``.
"""

from __future__ import annotations

MAX_NAME_CHARS = 80
"""A name from traces or users (feature, model, prompt) is cut to this many characters."""


def escape(value: object) -> str:
    """Escape Slack's three control characters, so trace data shows but pings nobody.

    Args:
        value: Anything; it is turned into a string first.

    Returns:
        The text with ``&``, ``<`` and ``>`` as HTML entities.

    Example:
        >>> escape("<!channel> & co")
        '&lt;!channel&gt; &amp; co'
    """
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, marking the cut with an ellipsis.

    Args:
        text: The text to fit.
        limit: The most characters the result may have.

    Returns:
        ``text`` itself when it fits, else its start and ``…``.

    Example:
        >>> clip("support-chat", 8)
        'support…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


MENTION_OPEN = "\ue000"
MENTION_CLOSE = "\ue001"
"""Private-use characters around a Slack mention (``@U024BE7LH``) in raw text: Block Kit turns it into ``<@U024BE7LH>``."""


def name(value: object) -> str:
    """A name from traces or users on one line, shortened to ``MAX_NAME_CHARS`` (escaped later, where rendered).

    Args:
        value: A feature, model, prompt or label name, or anything else shown inline.

    Returns:
        The text with its whitespace runs collapsed to single spaces, clipped, without the
        private-use characters that mark a Slack mention (``MENTION_OPEN``/``MENTION_CLOSE``):
        only a configured owner becomes a mention, never a name from traces.

    Example:
        >>> name("chat\\n  response")
        'chat response'
    """
    text = str(value).replace(MENTION_OPEN, "").replace(MENTION_CLOSE, "")
    return clip(" ".join(text.split()), MAX_NAME_CHARS)


def money(value: float | None) -> str:
    """USD with as many decimals as the amount needs to be readable.

    Args:
        value: Dollars, or None when unknown.

    Returns:
        ``$1,234`` from $100 up, ``$12.30`` from $1, ``$0.0042`` below; ``–`` for None.

    Example:
        >>> money(1234.5), money(12.3), money(0.0042), money(None)
        ('$1,234', '$12.30', '$0.0042', '–')
    """
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:,.4f}"


def number(value: float | None) -> str:
    """A count or a duration rounded to a whole number with thousands separators.

    Args:
        value: The number, or None when unknown.

    Returns:
        ``12,345``, or ``–`` for None.

    Example:
        >>> number(12345.6)
        '12,346'
    """
    return "–" if value is None else f"{value:,.0f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A share or a rate as a percentage.

    Args:
        value: The fraction (``0.123`` is 12.3 %), or None when unknown.
        digits: Decimals shown.

    Returns:
        ``12.3%``, or ``–`` for None.

    Example:
        >>> percent(0.1234), percent(0.0123, 2)
        ('12.3%', '1.23%')
    """
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def change(value: float | None, points: bool = False) -> str:
    """A change with an arrow, so the eye finds the direction: ``+12%`` for a ratio, ``+1.3 pp`` for a rate.

    Args:
        value: The relative change (``0.12`` is +12 %), or the difference of two rates when ``points``.
        points: Whether ``value`` is a difference in percentage points.

    Returns:
        ``▲ +12%``, ``▼ -1.3 pp`` or ``= +0%``; ``n/a`` for None.

    Example:
        >>> change(0.12), change(-0.013, points=True), change(None)
        ('▲ +12%', '▼ -1.3 pp', 'n/a')
    """
    if value is None:
        return "n/a"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    if points:
        return f"{arrow} {value * 100:+.1f} pp"
    return f"{arrow} {value * 100:+.0f}%"


def score(value: float | None) -> str:
    """An evaluation score or mean feedback with three decimals.

    Args:
        value: The score, or None when nothing was scored.

    Returns:
        ``0.842``, or ``–`` for None.

    Example:
        >>> score(0.84213)
        '0.842'
    """
    return "–" if value is None else f"{value:.3f}"
