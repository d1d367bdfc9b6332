"""The Action's ``status`` with the ``stats`` input: the Rollout health section in the job summary
and the sticky PR comment (GitHub stand-in), warnings for stale or missing stats, and a failing
step for an unreadable database. The Action runs as in test_action.py (its fixtures)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import test_action
from test_action import APP, Workspace, bot_comments, publish_inputs
from tests.unit.test_health_status import check_xychart

from otaseal.operations import now_utc
from otaseal.serve.db import StatsEvent, open_stats

if TYPE_CHECKING:
    from pathlib import Path

    from github_standin import GitHubStandIn

# test_action's fixtures, used here under the same names
ws = test_action.ws
gh = test_action.gh
action = test_action.action

HOUR = 3_600_000


def _stats(path: Path, *, age_hours: float = 0.0) -> str:
    """A stats database where 1.4.2 on beta has 10 installs, 1 set_fail and 1 rollback."""
    url = f"sqlite://{path}"
    db = open_stats(url)
    db.migrate()
    now = int(now_utc().timestamp() * 1000) - int(age_hours * HOUR)
    events = []
    for dev in range(10):
        device = str(uuid.UUID(int=dev))
        events += [
            StatsEvent(APP, device, "check", "1.4.2", channel="beta", received_ms=now - HOUR - dev),
            StatsEvent(APP, device, "check", "1.4.2", channel="beta", received_ms=now - dev - 1),
            StatsEvent(
                APP,
                device,
                "set",
                "1.4.2",
                channel="beta",
                timestamp_ms=now - 2 * HOUR,
                received_ms=now - 2 * HOUR,
            ),
        ]
    events += [
        StatsEvent(
            APP,
            "d-fail",
            "set_fail",
            "1.4.2",
            channel="beta",
            timestamp_ms=now - HOUR,
            received_ms=now - HOUR,
        ),
        StatsEvent(
            APP,
            str(uuid.UUID(int=3)),
            "update_fail",
            "1.4.2",
            channel="beta",
            timestamp_ms=now - HOUR + 5,
            received_ms=now - HOUR + 5,
        ),
    ]
    db.record(events)
    db.close()
    return url


def test_status_with_stats_puts_the_health_and_a_chart_in_summary_and_comment(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    url = _stats(ws.temp / "stats.sqlite")

    run = action("workflow_dispatch", command="status", channel="beta", stats=url)

    assert run.returncode == 0, run.stdout
    assert run.annotations("warning") == []
    for text in (run.summary, bot_comments(gh)[0]["body"]):
        assert "#### Rollout health" in text
        assert "Wilson score interval, 95 % two-sided, upper end" in text
        # (1 set_fail + 1 update_fail) of (10 set + 1 set_fail)
        assert "| 1.4.2 (current) | 100 % | 11 | 10 | 1 | 1 | 18.2 % | 47.7 % |" in text
        block = re.search(r"```mermaid\n.*?\n```", text, re.DOTALL)
        assert block is not None
        body = check_xychart(block.group(0))
        assert body[3].endswith("100.0]")  # every device checking runs 1.4.2
    assert "**production**: serves no release yet." in run.summary


def test_stale_and_missing_stats_are_warnings_not_zero_percent(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    stale = _stats(ws.temp / "stale.sqlite", age_hours=30)
    run = action("workflow_dispatch", command="status", channel="beta", stats=stale)
    assert run.returncode == 0
    [warning] = run.annotations("warning")
    assert warning.startswith("beta 1.4.2: stats stale: the newest event is 1 d ago")
    assert "stats stale" in run.summary

    empty = ws.temp / "empty.sqlite"
    db = open_stats(f"sqlite://{empty}")
    db.migrate()
    db.close()
    run = action("workflow_dispatch", command="status", channel="beta", stats=f"sqlite://{empty}")
    assert run.returncode == 0
    [warning] = run.annotations("warning")
    assert "stats missing: the stats database has no event for this app" in warning
    assert "**Stats missing:**" in run.summary
    assert "0.0 %" not in run.summary


def test_an_unreadable_stats_database_fails_status(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    missing = f"sqlite://{ws.temp / 'none.sqlite'}"
    run = action("workflow_dispatch", command="status", channel="beta", stats=missing)
    assert run.returncode == 5
    [error] = run.annotations("error")
    assert "the device stats could not be read: there is no stats database at" in error
    assert "**Stats unreadable:**" in run.summary
    assert not (ws.temp / "none.sqlite").exists()
