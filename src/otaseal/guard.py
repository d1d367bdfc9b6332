"""``otaseal guard``: gather (plan, manifest history, stats snapshot, now), decide once, act.

The decision is :func:`otaseal.health.verdict.decide` (pure); this module does the I/O around it.
Each change is a newly signed manifest made by the ordinary operations (``set_rollout`` to
advance or pause, ``revert``), pinned to the manifest version the inputs were read at: if anyone
signed a newer version meanwhile (another guard, a publish, a person), the change is refused with
nothing signed, so two guard runs never take two steps at once. ``dry_run`` decides and signs
nothing. Missing, empty or stale stats raise :class:`StatsUnusableError` (exit 2) after the
decision is known: a scheduled run goes red instead of quietly doing nothing forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from otaseal.errors import InputError
from otaseal.health.stats import release_health
from otaseal.health.verdict import (
    Advance,
    Decision,
    Hold,
    Pause,
    ReleaseStats,
    Revert,
    StatsSnapshot,
    decide,
    step_started,
)
from otaseal.operations import history, revert, set_rollout

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from otaseal.model import ChannelManifest
    from otaseal.operations import Change, Project
    from otaseal.plans import RolloutPlan
    from otaseal.serve.db import ReleaseCounts, StatsDb


class StatsUnusableError(InputError):
    """The stats are missing, empty or stale: the guard holds and says so (nothing signed)."""

    def __init__(self, result: GuardResult) -> None:
        hold = result.decision
        reason = hold.reason if isinstance(hold, Hold) else ""
        super().__init__(
            f"guard on {result.channel} did not act: {reason}",
            expected="fresh device reports about the current release since its step began, "
            "recorded by `otaseal serve` in the database --stats names",
            fix="check that devices reach `otaseal serve` and that --stats names its database; "
            "the guard never advances without data",
        )
        self.result = result


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What the guard decided, and the change it signed (None: held or a dry run)."""

    channel: str
    plan: RolloutPlan
    decision: Decision
    read_version: int  # the manifest version the inputs were read at
    change: Change | None
    dry_run: bool

    @property
    def acted(self) -> bool:
        """Whether a new manifest was signed."""
        return self.change is not None and not self.change.noop

    def summary(self) -> str:
        """One sentence: what was done (or would be), on what evidence."""
        decision, would = self.decision, "would " if self.dry_run else ""
        if isinstance(decision, Hold):
            return f"guard held {self.channel}: {decision.reason}"
        evidence = decision.evidence
        if isinstance(decision, Advance):
            done = (
                f"{'would advance' if self.dry_run else 'advanced'} {evidence.release} on "
                f"{self.channel} from {evidence.basis_points / 100:g} % to "
                f"{decision.to_basis_points / 100:g} %"
            )
        elif isinstance(decision, Pause):
            done = f"{would}{'pause' if self.dry_run else 'paused'} {evidence.release} on "
            done += f"{self.channel} at {evidence.basis_points / 100:g} %"
        else:
            target = decision.to.label if decision.to else "the app's builtin build"
            done = f"{would}{'revert' if self.dry_run else 'reverted'} {self.channel} from "
            done += f"{evidence.release} to {target}"
        return f"guard {done}; evidence: {evidence.text()}"

    def short(self) -> str:
        """At most 140 characters (a GitHub deployment status description)."""
        decision = self.decision
        if isinstance(decision, Hold):
            return f"guard held: {decision.kind.replace('_', ' ')}"[:140]
        e = decision.evidence
        facts = (
            f"{e.installs} installs, {e.failures + e.rollbacks} failed, "
            f"upper {e.upper_bound * 100:.2f} % vs {e.max_failure_rate * 100:g} %"
        )
        return f"guard {decision.action} {e.release}: {facts}"[:140]

    def to_dict(self) -> dict[str, object]:
        """JSON form (``--json``)."""
        decision = self.decision
        doc: dict[str, object] = {
            "channel": self.channel,
            "action": decision.action,
            "dry_run": self.dry_run,
            "acted": self.acted,
            "read_version": self.read_version,
            "manifest_version": self.change.manifest.version if self.change else None,
            "summary": self.summary(),
        }
        if isinstance(decision, Hold):
            doc |= {"hold": decision.kind, "reason": decision.reason}
        if isinstance(decision, Advance):
            doc["to_rollout"] = decision.to_basis_points / 100
        if isinstance(decision, Revert):
            doc["to_release"] = decision.to.label if decision.to else "builtin"
        evidence = decision.evidence
        doc["evidence"] = evidence.to_dict() if evidence is not None else None
        return doc


def open_guard_stats(url: str | None, notice: Callable[[str], None]) -> StatsDb | None:
    """The stats database (serve's default without ``url``), or None when it cannot be read.

    None makes the guard hold on missing stats and say so; ``notice`` hears why it is missing.
    """
    from otaseal.serve.db import StatsError, open_stats  # noqa: PLC0415 - drivers load late
    from otaseal.serve.run import default_stats_url  # noqa: PLC0415

    db = None
    try:
        db = open_stats(url or default_stats_url(), create=False)
        db.migrate()
    except StatsError as exc:
        notice(f"no stats: {exc.diagnostics()}")
        if db is not None:
            db.close()
        return None
    return db


def plan_for(project: Project, channel: str) -> RolloutPlan:
    """The channel's rollout plan, or an error that shows how to write one."""
    project.config.check_channel(channel)
    plan = project.config.rollout_plans.get(channel)
    if plan is None:
        raise InputError(
            f"{project.config.path.name} has no rollout plan for {channel}",
            expected=f"rollout_plans.{channel} with steps, min_hours_per_step, min_installs and "
            "max_failure_rate",
            fix="add a plan (README, 'Staged rollouts'), or pick a channel that has one",
        )
    return plan


def snapshot(
    db: StatsDb,
    project: Project,
    plan: RolloutPlan,
    manifests: list[ChannelManifest],
    now: datetime,
) -> StatsSnapshot:
    """Counts about the channel's releases since the current step began, and their newest report."""
    head = manifests[-1] if manifests else None
    since = step_started(manifests) or (head.issued if head else now)
    channel, app = plan.channel, project.app
    until = now + timedelta(seconds=1)  # the clock has whole seconds: this second's reports count
    rows: dict[str, ReleaseCounts] = {
        row.version: row
        for row in db.counts(since=since, until=until, app=app)
        if row.channel == channel and row.app == app
    }
    newest = {
        release: at for (ch, release), at in db.newest(app, until=until).items() if ch == channel
    }
    labels = sorted(set(rows) | {r for r, at in newest.items() if at >= since})
    releases = []
    for label in labels:
        health = release_health(
            rows.get(label),
            release=label,
            channel=channel,
            newest=newest.get(label),
            now=now,
            stale_after=plan.max_stats_age,
        )
        releases.append(
            ReleaseStats(
                label,
                installs=health.installs,
                failures=health.failures,
                rollbacks=health.rollbacks,
                newest_event=newest.get(label),
            )
        )
    return StatsSnapshot(channel, since, now, tuple(releases))


def run_guard(
    project: Project, *, channel: str, db: StatsDb | None, dry_run: bool = False
) -> GuardResult:
    """Decide once on the inputs read now; act unless holding or dry; raise on unusable stats."""
    plan = plan_for(project, channel)
    now = project.clock()
    manifests = history(project, channel)
    read_version = manifests[-1].version if manifests else 0
    stats = snapshot(db, project, plan, manifests, now) if db is not None else None
    decision = decide(plan, manifests, stats, now)
    result = GuardResult(channel, plan, decision, read_version, None, dry_run)
    if isinstance(decision, Hold):
        if decision.is_stats_problem:
            raise StatsUnusableError(result)
        return result
    if dry_run:
        return result
    note = "guard: " + decision.evidence.text()
    change: Change
    if isinstance(decision, Advance):
        change = set_rollout(
            project,
            channel=channel,
            percent=decision.to_basis_points / 100,
            expect_version=read_version,
            note=note,
        )
    elif isinstance(decision, Pause):
        change = set_rollout(
            project, channel=channel, pause=True, expect_version=read_version, note=note
        )
    else:
        change = revert(
            project,
            channel=channel,
            to=decision.to.sha256 if decision.to else "builtin",
            expect_version=read_version,
            note=note,
        )
    return GuardResult(channel, plan, decision, read_version, change, dry_run)
