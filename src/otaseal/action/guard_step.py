"""The Action's ``command: guard``: run the guard once, and say what it did and why.

The sentence goes into the sticky PR comment and the job summary (``ReleaseReport.guard``), a
short form into the deployment status. Missing, empty or stale stats are reported like any other
hold (the comment says the guard refused to advance, and why), then fail the step with exit 2,
so a scheduled run goes red.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from otaseal.guard import StatsUnusableError, open_guard_stats, plan_for, run_guard

if TYPE_CHECKING:
    from otaseal.action.inputs import Inputs
    from otaseal.action.runner import Runner
    from otaseal.errors import Error
    from otaseal.guard import GuardResult
    from otaseal.operations import Project


@dataclass(frozen=True, slots=True)
class GuardNote:
    """What the report says about the guard run; ``error`` fails the step after reporting."""

    result: GuardResult
    error: Error | None = None

    @property
    def text(self) -> str:
        """The comment's and summary's sentence."""
        return self.result.summary()

    @property
    def short(self) -> str:
        """The deployment status description (GitHub keeps 140 characters)."""
        return self.result.short()


def run_guard_step(project: Project, inputs: Inputs, runner: Runner, channel: str) -> GuardNote:
    """Guard ``channel`` once; a stats problem is kept for after the report, not raised."""
    plan_for(project, channel)
    db = open_guard_stats(inputs.stats, lambda text: runner.warning(text, title="otaseal guard"))
    try:
        result = run_guard(project, channel=channel, db=db, dry_run=inputs.dry_run)
    except StatsUnusableError as exc:
        return GuardNote(exc.result, exc)
    finally:
        if db is not None:
            db.close()
    runner.info(result.summary())
    return GuardNote(result)
