"""Pure: ``otaseal status --html``: one self-contained page (inline CSS and SVG, no script).

A workflow uploads it as an artifact; it must open offline, so nothing is fetched: no fonts,
images, scripts or style sheets from elsewhere, and a Content-Security-Policy that forbids them.
Every value from a manifest or a device goes through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

from otaseal.health import chart
from otaseal.health.status import (
    METHOD,
    RATE_DEFINITION,
    adoption_text,
    age_text,
    evidence_text,
    failures_text,
    iso,
    percent_text,
)

if TYPE_CHECKING:
    from datetime import datetime

    from otaseal.health.status import ChannelHealth, ReleaseRow, StatusHealth

_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE: Final = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1f2328; margin: 24px; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f8fa; }
.note { color: #9a6700; } .muted { color: #57606a; }
"""
_COLUMNS: Final = (
    "Release",
    "Rollout",
    "Devices",
    "Checks",
    "Downloads",
    "Installs",
    "Install failures",
    "Rollbacks",
    "Failure rate",
    "95 % upper bound",
    "Newest event",
    "Failures by kind",
)


def render(report: StatusHealth) -> str:
    """The whole page."""
    title = f"otaseal status \u2014 {report.app}"
    body = [
        f"<h1>{escape(title)}</h1>",
        (
            f'<p class="muted">Device stats from {_time(report.since)} to {_time(report.until)} '
            f"({escape(report.stats)}). Failure rate = {escape(RATE_DEFINITION)}; bound: "
            f"{escape(METHOD)}.</p>"
        ),
    ]
    if not report.has_events:
        body.append(
            '<p class="note">Stats missing: the stats database has no event for this app.</p>'
        )
    body += [_channel(c, report) for c in report.channels]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _channel(channel: ChannelHealth, report: StatusHealth) -> str:
    head = f'<section id="channel-{escape(channel.channel)}"><h2>{escape(channel.channel)}</h2>'
    if channel.error is not None:
        return f'{head}<p class="note">Manifest unreadable: {escape(channel.error)}</p></section>'
    if not channel.releases:
        what = "the app's builtin build" if channel.builtin else "no release yet"
        return f"{head}<p>Serves {escape(what)}.</p></section>"
    parts = [
        head,
        (
            f"<p>Newest event {escape(age_text(channel.newest_age))}; "
            f"{escape(adoption_text(channel))}.</p>"
        ),
        f"<figure>{chart.svg(channel)}</figure>",
        "<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS) + "</tr></thead>",
        "<tbody>" + "".join(_row(r) for r in channel.releases) + "</tbody></table>",
    ]
    notes = [
        f"<li>{escape(r.health.release)}: {escape(note)}</li>"
        for r in channel.releases
        if (note := evidence_text(r.health, report.stale_after))
    ]
    if notes:
        parts.append(f'<ul class="note">{"".join(notes)}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


def _row(row: ReleaseRow) -> str:
    h = row.health
    rollout = f"{row.rollout_percent:g} %" + (" (paused)" if row.paused else "")
    cells = [
        h.release + (" (current)" if row.current else ""),
        rollout,
        str(h.devices),
        str(h.checks),
        str(h.downloads),
        str(h.installs),
        str(h.failures),
        str(h.rollbacks),
        percent_text(h.rate) if h.rate is not None else "no data",
        percent_text(h.upper) if h.rate is not None else "no data",
        age_text(h.newest_age),
        failures_text(h),
    ]
    return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def _time(moment: datetime) -> str:
    return escape(iso(moment))
