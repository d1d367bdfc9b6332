"""The guard's line in the sticky comment and the job summary: after the headline, and inert."""

from __future__ import annotations

from otaseal.action.report import render_comment, render_summary
from tests.unit.action.test_report import make

TEXT = (
    "guard paused 1.4.2 on production at 10 %; evidence: 1.4.2 at 10 % for 3.0 h: 250 installs, "
    "9 failures, 3 rollbacks; failure rate 4.80 % (95 % Wilson upper bound 8.13 %, limit 2.00 %)"
)


def test_the_guard_line_follows_the_headline_in_comment_and_summary() -> None:
    report = make(stage="rollout", guard=TEXT)
    for text in (render_comment(report), render_summary(report)):
        parts = text.split("\n\n")
        line = next(i for i, part in enumerate(parts) if part.startswith("**Guard:** "))
        assert "is rolling out on" in parts[line - 1] or "paused" in parts[line - 1]
        assert "Wilson upper bound 8.13 %" in parts[line]


def test_no_guard_line_without_a_guard_run() -> None:
    assert "**Guard:**" not in render_comment(make())
    assert "**Guard:**" not in render_summary(make())


def test_a_label_in_the_guard_line_cannot_inject_markdown_or_mentions() -> None:
    report = make(guard="guard held production: 1.4.2<img src=x> @octocat [x](http://e)")
    line = next(p for p in render_comment(report).split("\n\n") if p.startswith("**Guard:**"))
    assert "<img" not in line
    assert "@octocat" not in line
    assert "](http" not in line
