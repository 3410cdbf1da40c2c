"""The digest's chart: 30 days of cost per feature as a PNG, with every spike labelled.

Slack shows it in the digest's thread (the Web API only; a webhook cannot upload files).
matplotlib is imported when a chart is drawn, not when this module is, and draws with the
Agg backend, so no display is needed. Feature names come from traces: they are clipped and
kept from being read as matplotlib markup.
"""

from __future__ import annotations

import io

import numpy as np

from llmops.report.digest_data import Digest
from llmops.report.formatting import clip

SPIKE_FACTOR = 2.5
"""A day over this multiple of a feature's median day is labelled on the chart."""
MAX_LABEL_CHARS = 40


def chart_spikes(digest: Digest) -> list[tuple[str, int]]:
    """Find each charted feature's peak day when it stands out from the feature's usual day.

    Args:
        digest: A digest with its chart series.

    Returns:
        ``(feature, index into digest.chart_days)`` for each series whose peak is positive and
        over ``SPIKE_FACTOR`` times its median day.

    Example:
        ```python
        digest = compute_digest(engine, date(2026, 11, 26))
        for feature, index in chart_spikes(digest):
            print(feature, digest.chart_days[index], digest.chart_series[feature][index])
        ```
    """
    spikes = []
    for feature, values in digest.chart_series.items():
        ordered = sorted(values)
        median = ordered[len(ordered) // 2]
        peak = max(range(len(values)), key=values.__getitem__)
        if values[peak] > 0 and values[peak] > SPIKE_FACTOR * median:
            spikes.append((feature, peak))
    return spikes


def _chart_label(feature: str) -> str:
    label = clip(feature, MAX_LABEL_CHARS).replace("$", r"\$")  # "$" would start matplotlib mathtext
    return " " + label if label.startswith("_") else label  # matplotlib hides labels starting with "_"


def render_chart(digest: Digest) -> bytes:
    """Draw the digest's 30 days of cost per feature, one line each, with every spike labelled.

    Args:
        digest: A digest with its chart days and series.

    Returns:
        The chart as PNG bytes (1000 × 450 pixels).

    Example:
        ```python
        png = render_chart(compute_digest(engine, date(2026, 11, 26)))
        Path("cost.png").write_bytes(png)
        ```
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = digest.chart_days
    x = np.asarray(days)  # dates, as matplotlib makes of the list itself; its stubs take arrays, not lists of dates
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        for feature, values in digest.chart_series.items():
            axes.plot(x, values, marker="o", markersize=3, linewidth=1.5, label=_chart_label(feature))
        for feature, index in chart_spikes(digest):
            value = digest.chart_series[feature][index]
            axes.annotate(
                f"{_chart_label(feature)}: \\${value:,.2f} on {days[index]:%d %b}",
                (days[index], value),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "alpha": 0.5},
            )
        axes.set_title(f"Cost per feature, {days[0]:%d %b} – {days[-1]:%d %b %Y} (USD per day, {digest.timezone})")
        axes.set_ylabel("USD per day")
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        axes.grid(axis="y", alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)
