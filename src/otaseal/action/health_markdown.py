"""Pure: ``status --stats`` as GitHub markdown, for the sticky PR comment and the job summary.

One section per channel that serves a release: a table of its releases (rollout, devices,
installs, failures, rollbacks, the failure rate with its Wilson upper bound, the newest event)
and the adoption chart as a Mermaid ``xychart-beta`` block, which GitHub renders in comments and
job summaries. Labels and failure kinds (from manifests and devices) are escaped with the
comment's own rules (:func:`report.escape`); the rest is otaseal's own words. Stats that are
missing, empty or stale are written out, never shown as 0 %.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from otaseal.action.report import escape
from otaseal.health import chart
from otaseal.health.status import (
    METHOD,
    RATE_DEFINITION,
    adoption_text,
    age_text,
    evidence_text,
    iso,
    percent_text,
)

if TYPE_CHECKING:
    from otaseal.health.status import ChannelHealth, ReleaseRow, StatusHealth

_DASH: Final = "\u2014"
_HEADER: Final = (
    "| Release | Rollout | Devices | Installs | Install failures | Rollbacks "
    "| Failure rate | 95 % upper bound | Newest event | Failures by kind |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)


def render(report: StatusHealth, *, channel: str | None = None) -> str:
    """The ``Rollout health`` section; ``channel`` first (the one the comment is about)."""
    lines = [
        "#### Rollout health",
        "",
        (
            f"Device stats from {iso(report.since)} to {iso(report.until)}. Failure rate = "
            f"{RATE_DEFINITION}; bound: {METHOD}."
        ),
    ]
    if not report.has_events:
        lines += ["", "**Stats missing:** the stats database has no event for this app."]
    ordered = sorted(report.channels, key=lambda c: c.channel != channel)
    for entry in ordered:
        lines += ["", *_channel(entry, report)]
    return "\n".join(lines)


def _channel(entry: ChannelHealth, report: StatusHealth) -> list[str]:
    name = f"**{escape(entry.channel)}**"
    if entry.error is not None:
        return [f"{name}: manifest unreadable, no health shown."]
    if not entry.releases:
        what = "the app's builtin build" if entry.builtin else "no release yet"
        return [f"{name}: serves {what}."]
    out = [
        (f"{name}: newest event {age_text(entry.newest_age)}; {adoption_text(entry)}."),
        "",
        _HEADER,
        *(_row(r) for r in entry.releases),
    ]
    notes = [
        f"- {escape(r.health.release)}: {note}"
        for r in entry.releases
        if (note := evidence_text(r.health, report.stale_after))
    ]
    if notes:
        out += ["", *notes]
    block = chart.mermaid(entry)
    if block is not None:
        out += ["", block]
    return out


def _row(row: ReleaseRow) -> str:
    h = row.health
    label = escape(h.release) + (" (current)" if row.current else "")
    rollout = f"{row.rollout_percent:g} %" + (" (paused)" if row.paused else "")
    kinds = ", ".join(f"{escape(k)} {n}" for k, n in h.failures_by_kind) or _DASH
    no_data = f"no data ({h.evidence})"
    cells = [
        label,
        rollout,
        str(h.devices),
        str(h.installs),
        str(h.failures),
        str(h.rollbacks),
        percent_text(h.rate) if h.rate is not None else no_data,
        percent_text(h.upper) if h.rate is not None else _DASH,
        age_text(h.newest_age),
        kinds,
    ]
    return "| " + " | ".join(cells) + " |"
