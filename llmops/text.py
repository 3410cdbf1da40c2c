"""Data as Markdown text: values from traces and users placed into a Markdown document stay text.

A feature name, an outcome key, a reason typed into a promotion or an error message can hold
``[x](https://evil)``, ``![](url)``, ``<img src=…>`` or a ``|`` that breaks a table. The
Prefect UI renders markdown artifacts, so every such value goes through ``markdown_escape``
(or ``markdown_code`` inside a code span) before it joins the document; numbers we format
ourselves need nothing. This module imports nothing from llmops, so every feature may use it.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"\r\n|[\t\n\r\x85\u2028\u2029]")
_SPECIAL = re.compile(
    r"[\\`*_{}\[\]()#!|<>~@]"  # emphasis, code, links, images, headings, tables, HTML, strikethrough, e-mail autolinks
    r"|\.(?=[^\W\d_])"  # a dot before a letter: bare domains and www. autolinks (never "2.3.1" or "$20.80")
    r"|:(?=/)|/(?=/)"  # scheme and protocol-relative autolinks: https://, //host
    r"|&(?=[#0-9A-Za-z])"  # entity and character references
)
_LINE_START = re.compile(r"^( {0,3})(?:([-+=])|(\d{1,9})(\.)(?=\s|$))")
"""What starts a list, a thematic break or a setext heading when the value starts a line."""


def markdown_escape(value: object) -> str:
    r"""``value`` as literal Markdown text on one line: nothing in it links, embeds, formats or breaks a table.

    Every character that can start Markdown structure is backslash-escaped (CommonMark lets any
    ASCII punctuation be escaped): emphasis, code, links, images, raw HTML and table pipes
    always; a dot before a letter, ``:`` and ``/`` before ``/``, ``&`` before a reference and
    ``@``, so no autolink or entity forms; a leading ``-``, ``+``, ``=`` or ``1.``. Versions,
    model ids and amounts stay readable (``2.3.1``, ``$20.80``). Line breaks and tabs become
    spaces and leading spaces go; control characters and bidi overrides are dropped.

    Args:
        value: Anything; it is turned into a string first.

    Returns:
        The text, safe inline and inside a table cell.

    Example:
        >>> print(markdown_escape("[x](https://evil.com) ![](u) a|b, support-chat 2.3.1 at $20.80"))
        \[x\]\(https\:\//evil\.com\) \!\[\]\(u\) a\|b, support-chat 2.3.1 at $20.80
    """
    text = _CONTROL.sub("", _BREAKS.sub(" ", str(value))).lstrip(" ")  # four leading spaces would make a code block
    text = _SPECIAL.sub(lambda match: "\\" + match.group(), text)
    return _LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\."), text)


def markdown_code(value: object) -> str:
    """``value`` as an inline code span, fenced with more backticks than it holds, on one line.

    Inside a code span nothing is interpreted, so no escaping is needed; a ``|`` would still end
    a GFM table cell, so use ``markdown_escape`` for table cells.

    Args:
        value: Anything; it is turned into a string first.

    Returns:
        The code span, backticks included.

    Example:
        >>> markdown_code("golden"), markdown_code("a`b")
        ('`golden`', '``a`b``')
    """
    text = _CONTROL.sub("", _BREAKS.sub(" ", str(value)))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"
