"""The Action's ``status`` with ``stats:``: read device stats and render the Rollout health section.

It reads the last 7 days, as ``otaseal status --stats`` does by default, and calls a release's
stats stale after 6 hours without an event. A stats database that cannot be read fails the step
(``::error::``, exit 5: a scheduled check must go red); stats that are missing or stale for a
channel's current release are ``::warning::`` annotations, and the section says so in words.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

from otaseal.action.health_markdown import render
from otaseal.action.report import escape
from otaseal.errors import Error
from otaseal.health.stats import Evidence
from otaseal.health.status import evidence_text

if TYPE_CHECKING:
    from otaseal.action.runner import Runner
    from otaseal.operations import Project

WINDOW: Final = timedelta(days=7)
_WARN: Final = frozenset({Evidence.MISSING, Evidence.STALE})
_ERROR_CAP: Final = 2000


def status_health(runner: Runner, project: Project, url: str, channel: str) -> tuple[str, int]:
    """The markdown section for the comment and summary, and the exit code it adds."""
    from otaseal.health.gather import read_status_health  # noqa: PLC0415

    until = project.clock()
    try:
        report = read_status_health(project, url, since=until - WINDOW, until=until)
    except Error as exc:
        text = f"the device stats could not be read: {exc.diagnostics()}"
        runner.error(text, title="otaseal: stats unreadable")
        section = f"#### Rollout health\n\n**Stats unreadable:** {escape(text, limit=_ERROR_CAP)}"
        return section, exc.exit_code
    if not report.has_events:
        runner.warning(
            "stats missing: the stats database has no event for this app; is `otaseal serve` "
            "writing to the database the `stats` input names?",
            title="otaseal: stats",
        )
    else:
        for entry in report.channels:
            current = entry.current
            if current is None or current.health.evidence not in _WARN:
                continue
            note = evidence_text(current.health, report.stale_after)
            runner.warning(
                f"{entry.channel} {current.health.release}: {note}", title="otaseal: stats"
            )
    return render(report, channel=channel), 0
