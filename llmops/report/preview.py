"""A picture of a Slack message: its Block Kit drawn as a PNG, for the flow's artifact and the README.

Slack is not needed: the blocks are laid out the way Slack shows them — the header large,
a rule per divider, section fields two to a row with their labels bold, bullet lines wrapped,
the footer small and grey — and drawn with matplotlib (Agg, no display). The mrkdwn is read
back as a reader sees it: ``&lt;`` as ``<``, ``*bold*`` as bold, links as their label, a
mention ``<@U024BE7LH>`` as ``@U024BE7LH``. Characters the font lacks (most emoji) are left
out rather than drawn as boxes. Text is never parsed as matplotlib mathtext.
"""

from __future__ import annotations

import base64
import io
import re
import textwrap
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

WIDTH_PX = 900
DPI = 100
MARGIN_PX = 24
WRAP_CHARS = 110
FIELD_WRAP_CHARS = 52
PALETTE_COLOURS = 16
MAX_LINES = 400
"""A preview longer than this many lines is cut (Slack itself caps a message at 50 blocks)."""
STYLES: dict[str, dict[str, Any]] = {
    "header": {"size": 15, "weight": "bold", "color": "#1d1c1d", "step": 30},
    "title": {"size": 10.5, "weight": "bold", "color": "#1d1c1d", "step": 20},
    "label": {"size": 9.5, "weight": "bold", "color": "#1d1c1d", "step": 16},
    "text": {"size": 9.5, "weight": "normal", "color": "#1d1c1d", "step": 16},
    "context": {"size": 8.5, "weight": "normal", "color": "#616061", "step": 14},
}
LINK = re.compile(r"<(?:https?://[^|>]*\|)([^>]+)>|<(https?://[^|>]+)>")
MENTION = re.compile(r"<(@[UW][A-Z0-9]+)>|<!subteam\^(S[A-Z0-9]+)>")


@cache
def _font_chars() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())


def readable(mrkdwn: str) -> str:
    """Slack mrkdwn as a reader sees it, without the characters the font cannot draw.

    Example:
        >>> readable("*Cost* &lt;b&gt; <https://x.io/runs|Flow runs> · owner <@U024BE7LH> 🐢 ▲")
        'Cost <b> Flow runs · owner @U024BE7LH ▲'
    """
    text = LINK.sub(lambda found: found.group(1) or found.group(2), mrkdwn)
    text = MENTION.sub(lambda found: found.group(1) or f"@{found.group(2)}", text)
    text = re.sub(r"(?<!\w)\*([^*\n]+)\*(?!\w)", r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    drawable = _font_chars()
    kept = "".join(char for char in text if char in "\n" or ord(char) in drawable)
    return re.sub(r"(?<=\S) {2,}", " ", kept).strip()  # where an emoji was left out


def _wrap(text: str, width: int) -> list[str]:
    lines = []
    for paragraph in text.splitlines() or [""]:
        indent = "   " if paragraph.startswith("• ") else ""
        lines += textwrap.wrap(paragraph, width, subsequent_indent=indent, break_long_words=True) or [""]
    return lines


def _rows(blocks: list[dict[str, Any]]) -> list[tuple[str, str, str] | tuple[str]]:
    """The blocks as drawing rows: ``(style, left text, right text)``, or ``("rule",)``."""
    rows: list[tuple[str, str, str] | tuple[str]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            rows += [("header", line, "") for line in _wrap(readable(block["text"]["text"]), 70)]
        elif kind == "divider":
            rows.append(("rule",))
        elif kind == "section":
            text = block.get("text", {}).get("text", "")
            first, _, rest = text.partition("\n")
            if first.startswith("*") and first.endswith("*"):
                rows += [("title", line, "") for line in _wrap(readable(first), WRAP_CHARS - 10)]
                text = rest
            rows += [("text", line, "") for line in _wrap(readable(text), WRAP_CHARS)] if text.strip() else []
            fields = [field["text"] for field in block.get("fields", [])]
            for index in range(0, len(fields), 2):
                left, right = fields[index], fields[index + 1] if index + 1 < len(fields) else ""
                (left_label, _, left_value), (right_label, _, right_value) = left.partition("\n"), right.partition("\n")
                rows.append(("label", readable(left_label), readable(right_label)))
                left_lines = _wrap(readable(left_value), FIELD_WRAP_CHARS)
                right_lines = _wrap(readable(right_value), FIELD_WRAP_CHARS)
                for index in range(max(len(left_lines), len(right_lines))):
                    pair = (
                        left_lines[index] if index < len(left_lines) else "",
                        right_lines[index] if index < len(right_lines) else "",
                    )
                    rows.append(("text", *pair))
        elif kind == "context":
            for element in block.get("elements", []):
                rows += [("context", line, "") for line in _wrap(readable(element.get("text", "")), WRAP_CHARS + 15)]
    if len(rows) > MAX_LINES:
        rows = [*rows[: MAX_LINES - 1], ("context", "… (preview cut)", "")]
    return rows


def render_preview(blocks: list[dict[str, Any]], thread_blocks: list[dict[str, Any]] | None = None) -> bytes:
    """Draw a message's Block Kit (and its thread reply, under a rule) as a PNG.

    Args:
        blocks: The message's blocks, as ``RenderedMessage.blocks``.
        thread_blocks: The reply in its thread, drawn below with a "in the thread" mark; None for none.

    Returns:
        PNG bytes, ``WIDTH_PX`` wide and as tall as the message.

    Example:
        ```python
        message = render_digest(compute_digest(engine), with_chart=False)
        Path("digest.png").write_bytes(render_preview(message.blocks, message.thread_blocks))
        ```
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(blocks)
    if thread_blocks:
        rows += [("rule",), ("context", "↳ in the thread", ""), *_rows(thread_blocks)]
    height_px = 2 * MARGIN_PX + sum(12 if row[0] == "rule" else STYLES[row[0]]["step"] for row in rows)
    figure = plt.figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    try:
        y = height_px - MARGIN_PX
        left, right = MARGIN_PX / WIDTH_PX, 0.5 + MARGIN_PX / WIDTH_PX / 2
        figure.add_artist(plt.Line2D([2 / WIDTH_PX] * 2, [0.01, 0.99], color="#e8e8e8", linewidth=3))
        for row in rows:
            if row[0] == "rule":
                y -= 6
                figure.add_artist(plt.Line2D([left, 1 - left], [y / height_px] * 2, color="#dddddd", linewidth=0.8))
                y -= 6
                continue
            style, first, second = row  # type: ignore[misc]
            spec = STYLES[style]
            y -= spec["step"]
            for x, text in ((left, first), (right, second)):
                if text:
                    figure.text(
                        x, y / height_px, text, fontsize=spec["size"], fontweight=spec["weight"], color=spec["color"],
                        family="DejaVu Sans", parse_math=False, va="bottom",
                    )  # fmt: skip
        drawn = io.BytesIO()
        figure.savefig(drawn, format="png", dpi=DPI, facecolor="white")
    finally:
        plt.close(figure)
    from PIL import Image

    buffer = io.BytesIO()  # text on white needs few colours: a 16-colour palette is a quarter of the size
    Image.open(drawn).convert("RGB").quantize(PALETTE_COLOURS).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


MAX_INLINE_BYTES = 150_000
"""A preview up to this size is also inlined in the flow's markdown artifact as a data URI."""


def save_preview(png: bytes, directory: Path, day: date, destination: str) -> Path:
    """Write a digest's preview as ``<directory>/digest-<day>-<destination>.png`` (the directory made 0700).

    Example:
        ```python
        path = save_preview(render_preview(message.blocks), settings.home() / "digests", date(2026, 11, 26), "#llm-ops")
        ```
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", destination).strip("_") or "outbox"
    path = directory / f"digest-{day.isoformat()}-{safe}.png"
    path.write_bytes(png)
    return path


def preview_markdown(png: bytes, path: Path | None) -> str:
    """The preview for a markdown artifact: inline as a data URI when small, and where the file is.

    Example:
        >>> preview_markdown(b"\\x89PNG", None).startswith("![Preview of the Slack message](data:image/png;base64,")
        True
    """
    from llmops.text import markdown_code

    parts = []
    if len(png) <= MAX_INLINE_BYTES:
        parts.append(f"![Preview of the Slack message](data:image/png;base64,{base64.b64encode(png).decode()})")
    if path is not None:
        parts.append(f"Preview of the Slack message: {markdown_code(str(path))}")
    return "\n\n".join(parts)
