"""The ``Rollout health`` markdown of ``status --stats`` (sticky PR comment and job summary)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from otaseal.action.health_markdown import render
from otaseal.action.report import render_comment, render_summary
from otaseal.serve.db import HourlyDevices, ReleaseCounts
from tests.unit.action.test_report import make
from tests.unit.test_health_status import (
    APP,
    HOURS,
    UNTIL,
    check_xychart,
    manifest,
    release,
    report,
)


def test_the_section_has_a_table_row_per_release_and_a_chart_github_renders() -> None:
    md = render(report(), channel="production")
    assert md.startswith("#### Rollout health\n")
    assert "Wilson score interval, 95 % two-sided, upper end" in md
    assert (
        "| 1.1 (current) | 10 % | 52 | 48 | 1 | 1 | 4.1 % | 13.7 % | 3 min ago "
        "| download\\_fail 3, set\\_fail 1 |" in md
    )
    assert "| 1.0 | 100 % | 280 | 0 | 0 | 0 | no data (empty) | \u2014 | 20 s ago | \u2014 |" in md
    assert "- 1.0: stats empty: devices reported, but no install attempt yet" in md
    start = md.index("```mermaid")
    end = md.index("```", start + 3) + 3
    check_xychart(md[start:end])
    assert md.count("```mermaid") == 1  # beta (builtin) and nightly (unreadable) have no chart
    assert "**beta**: serves the app's builtin build." in md
    assert "**nightly**: manifest unreadable, no health shown." in md


def test_the_channel_the_comment_is_about_comes_first() -> None:
    md = render(report(), channel="nightly")
    assert md.index("**nightly**") < md.index("**production**") < md.index("**beta**")


def test_missing_stats_are_said_and_no_rate_is_invented() -> None:
    md = render(report(counts=[], newest={}, hourly={}))
    assert "**Stats missing:** the stats database has no event for this app." in md
    assert "no data (missing)" in md
    assert "- 1.1: stats missing: no device has reported anything about this release" in md
    assert "0.0 %" not in md
    assert "```mermaid" not in md
    stale = render(report(newest={("production", "1.1"): UNTIL - timedelta(days=2)}))
    assert "- 1.1: stats stale: the newest event is 2 d ago, older than 6 h" in stale


def test_labels_and_failure_kinds_from_outside_are_escaped() -> None:
    hostile = release("1.1|@team <b>")
    counts = [
        ReleaseCounts(APP, "production", "1.1|@team <b>", installs=1, failures={"x|<i>_fail": 1})
    ]
    md = render(
        report(
            channels=[("production", manifest("production", hostile), None)],
            counts=counts,
            newest={},
            hourly={"production": [HourlyDevices(HOURS[0], "1.1|@team <b>", 1)]},
        )
    )
    assert "<b>" not in md
    assert "<i>" not in md
    assert "@team" not in md  # a mention gets a zero-width space
    assert "1.1\\|@&#8203;team &lt;b&gt; (current)" in md
    assert "x\\|&lt;i&gt;\\_fail 1" in md
    start = md.index("```mermaid")
    check_xychart(md[start : md.index("```", start + 3) + 3])


def test_the_comment_and_the_summary_carry_the_section() -> None:
    section = render(report(), channel="production")
    base = replace(make(stage="status"), health=section)
    assert section in render_comment(base)
    assert section in render_summary(base)
    assert "Rollout health" not in render_comment(make(stage="status"))
