r"""Pure: the adoption chart of a channel, as a Mermaid ``xychart-beta`` block and as inline SVG.

Mermaid (what GitHub renders in a PR comment or job summary; the grammar is Mermaid's
``xychart.jison``, in GitHub since Mermaid 10.3): one statement per line, ``title "…"``,
``x-axis "…" ["…", …]`` (band of category labels), ``y-axis "…" 0 --> 100`` and
``line [n, …]`` with plain decimals (``[+-]?\\d+(\\.\\d+)?``; no exponent, no NaN). A quoted
string ends at the next ``"`` whatever precedes it, so text keeps a short set of characters and
``"`` never gets in. xychart has no legend and no gaps, so a chart shows one series (the current
release) over the hours in which devices checked in, each labelled with its hour. The keyword
is ``xychart-beta``: plain ``xychart`` is accepted only by newer Mermaid releases than some
renderers run, while every release with xychart accepts the ``-beta`` name.
"""

from __future__ import annotations

import re
from datetime import UTC
from html import escape
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from otaseal.health.stats import AdoptionPoint
    from otaseal.health.status import ChannelHealth

MERMAID_HOURS: Final = 24
"""The PR comment charts the last 24 hours that have data; the HTML page, the whole window."""
_TEXT_CAP: Final = 40
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9 .,_+:()%/-]")

SVG_WIDTH: Final = 720
SVG_HEIGHT: Final = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 16, 28, 36
_LINE_COLOR: Final = "#1f6feb"


def mermaid_text(value: str) -> str:
    """Text safe inside a Mermaid quoted string: a short whitelist, ``_`` for the rest, capped."""
    cleaned = _UNSAFE.sub("_", value)
    return cleaned if len(cleaned) <= _TEXT_CAP else cleaned[: _TEXT_CAP - 3] + "..."


def _known(points: tuple[AdoptionPoint, ...]) -> list[AdoptionPoint]:
    return [p for p in points if p.active]


def mermaid(channel: ChannelHealth, *, hours: int = MERMAID_HOURS) -> str | None:
    """The fenced ``mermaid`` block charting the current release's share, or None without data."""
    current = channel.current
    points = _known(channel.adoption)[-hours:]
    if current is None or not points:
        return None
    label = mermaid_text(current.health.release)
    hours_utc = [p.hour.astimezone(UTC) for p in points]
    names = [f"{h:%H}h" for h in hours_utc]
    if len(set(names)) < len(names):  # a band axis needs distinct labels
        names = [f"{h:%d} {h:%H}h" for h in hours_utc]
    categories = ", ".join(f'"{name}"' for name in names)
    values = ", ".join(f"{100 * p.devices / p.active:.1f}" for p in points)
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{mermaid_text(channel.channel)}: {label} on active devices"',
        f'    x-axis "hour (UTC)" [{categories}]',
        f'    y-axis "devices on {label} (%)" 0 --> 100',
        f"    line [{values}]",
        "```",
    ]
    return "\n".join(lines)


def svg(channel: ChannelHealth) -> str:
    """An inline SVG line chart of the current release's share over every hour of the window.

    Hours without any device checking break the line (no data is not 0 %).
    """
    current = channel.current
    label = current.health.release if current is not None else ""
    points = channel.adoption
    plot_w = SVG_WIDTH - _LEFT - _RIGHT
    plot_h = SVG_HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return _LEFT + i * step

    def y(share: float) -> float:
        return _TOP + plot_h * (1 - share)

    title = f"{channel.channel}: share of active devices on {label}" if label else channel.channel
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{SVG_WIDTH}" '
            f'height="{SVG_HEIGHT}" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">'
        ),
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" fill="#ffffff"/>',
        (
            f'<text x="{_LEFT}" y="16" font-size="12" fill="#1f2328">{escape(title)} (%, per hour, '
            "UTC)</text>"
        ),
    ]
    for tick in (0, 25, 50, 75, 100):
        ty = y(tick / 100)
        parts.append(
            f'<line x1="{_LEFT}" y1="{ty:.1f}" x2="{SVG_WIDTH - _RIGHT}" y2="{ty:.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{tick} %</text>'
        )
    if points:
        ticks = sorted({0, len(points) - 1, *range(0, len(points), max(len(points) // 6, 1))})
        for i in ticks:
            hour = points[i].hour.astimezone(UTC)
            anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
            parts.append(
                f'<text x="{x(i):.1f}" y="{SVG_HEIGHT - 12}" text-anchor="{anchor}" '
                f'font-size="11" fill="#57606a">{hour:%m-%d %H}h</text>'
            )
    for run in _runs(points):
        coords = " ".join(f"{x(i):.1f},{y(share):.1f}" for i, share in run)
        if len(run) == 1:
            ((i, share),) = run
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(share):.1f}" r="3.5" fill="{_LINE_COLOR}"/>'
            )
        else:
            parts.append(
                f'<polyline class="adoption" points="{coords}" fill="none" '
                f'stroke="{_LINE_COLOR}" stroke-width="2.5" stroke-linejoin="round"/>'
            )
    if not _known(points):
        parts.append(
            f'<text x="{SVG_WIDTH / 2:.0f}" y="{SVG_HEIGHT / 2:.0f}" text-anchor="middle" '
            'font-size="14" fill="#57606a">no device checked in during the window</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _runs(points: tuple[AdoptionPoint, ...]) -> list[list[tuple[int, float]]]:
    """Consecutive hours with data, as (index, share) runs."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, p in enumerate(points):
        if p.active:
            current.append((i, p.devices / p.active))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs
