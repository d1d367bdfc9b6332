"""Pure: what ``otaseal guard`` does next, from (plan, manifest history, stats snapshot, now).

No clock, store or database here: :mod:`otaseal.guard` gathers the inputs, calls :func:`decide`
once and acts on the value it returns. The rules, in the order they are applied:

1. nothing to guard: the channel serves no release or the builtin build, the current release is
   paused (a person paused it, or the guard did; ``otaseal rollout --resume`` hands it back), or
   it is at 100 % (the plan is done): :class:`Hold`;
2. no stats database, or no report about the current release since its step began: :class:`Hold`
   (missing, empty). Never advance without data;
3. a breach stops the rollout (:class:`Pause`, or :class:`Revert` with ``on_breach: revert``)
   even on stale data, since stopping is the safe direction. A breach is the 95 % Wilson upper
   bound of the failure rate above ``max_failure_rate`` once the step has ``min_installs``
   install attempts (before that the bound is wide for every release, good or bad, and would
   stop them all), or, with any data, the *lower* bound above it: the release is failing beyond
   doubt and waiting for more devices would only hurt them;
4. stats older than ``max_stats_age``: :class:`Hold` (stale);
5. the step has not lasted ``min_hours_per_step`` (from the signed ``issued`` time of the first
   manifest at the current percentage), or has fewer than ``min_installs`` installs: :class:`Hold`;
6. otherwise :class:`Advance` to the plan's next step above the current percentage.

The counts are those of ``status`` (:mod:`otaseal.health.stats`): installs are ``set``
reports, failures the install failures that name the release, rollbacks ``update_fail``; trials
are ``max(installs, rollbacks) + failures`` and the bad ones ``failures + rollbacks``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from otaseal.health.stats import Z_95, wilson_upper
from otaseal.model import FULL_ROLLOUT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otaseal.model import ChannelManifest, Release
    from otaseal.plans import RolloutPlan

HoldKind = Literal[
    "no_release",
    "paused",
    "done",
    "missing_stats",
    "empty_stats",
    "stale_stats",
    "waiting_time",
    "waiting_installs",
]
STATS_HOLDS: frozenset[str] = frozenset({"missing_stats", "empty_stats", "stale_stats"})


@dataclass(frozen=True, slots=True)
class ReleaseStats:
    """Reports about one release on the channel since its current step began."""

    label: str
    installs: int = 0
    failures: int = 0  # install failures that name this release
    rollbacks: int = 0
    newest_event: datetime | None = None  # any report about the release, devices' checks too


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """What the stats database said about a channel over ``[since, until)``."""

    channel: str
    since: datetime
    until: datetime
    releases: tuple[ReleaseStats, ...] = ()

    def release(self, label: str) -> ReleaseStats | None:
        """The stats of the release with this label, if any device reported about it."""
        return next((r for r in self.releases if r.label == label), None)


def wilson_bounds(failures: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``failures / trials``; (0, 1) without trials.

    The upper end is :func:`otaseal.health.stats.wilson_upper`, the number ``status`` shows.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = failures / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z2 / trials)), wilson_upper(failures, trials, z)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a decision rests on, for the PR comment, the deployment status and ``--json``."""

    release: str
    basis_points: int
    step_since: datetime
    hours_at_step: float
    installs: int
    failures: int
    rollbacks: int
    trials: int
    failure_rate: float
    lower_bound: float
    upper_bound: float
    max_failure_rate: float
    newest_event: datetime | None

    def text(self) -> str:
        """One line for people."""
        newest = (
            f"newest report {self.newest_event:%Y-%m-%d %H:%M} UTC"
            if self.newest_event
            else "no report"
        )
        return (
            f"{self.release} at {self.basis_points / 100:g} % for {self.hours_at_step:.1f} h: "
            f"{self.installs} installs, {self.failures} failures, {self.rollbacks} rollbacks; "
            f"failure rate {_pct(self.failure_rate)} (95 % Wilson upper bound "
            f"{_pct(self.upper_bound)}, limit {_pct(self.max_failure_rate)}); {newest}"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "release": self.release,
            "rollout": self.basis_points / 100,
            "step_since": _iso(self.step_since),
            "hours_at_step": round(self.hours_at_step, 2),
            "installs": self.installs,
            "failures": self.failures,
            "rollbacks": self.rollbacks,
            "trials": self.trials,
            "failure_rate": self.failure_rate,
            "failure_rate_upper_95": self.upper_bound,
            "failure_rate_lower_95": self.lower_bound,
            "max_failure_rate": self.max_failure_rate,
            "newest_event": _iso(self.newest_event) if self.newest_event else None,
        }


@dataclass(frozen=True, slots=True)
class Advance:
    """Raise the rollout one step."""

    to_basis_points: int
    evidence: Evidence
    action: str = field(default="advance", init=False)


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop new devices from taking the release (those that have it keep it)."""

    evidence: Evidence
    action: str = field(default="pause", init=False)


@dataclass(frozen=True, slots=True)
class Revert:
    """Serve an earlier release again (``to`` None: the app's builtin build)."""

    to: Release | None
    evidence: Evidence
    action: str = field(default="revert", init=False)


@dataclass(frozen=True, slots=True)
class Hold:
    """Do nothing, and say why."""

    kind: HoldKind
    reason: str
    evidence: Evidence | None = None
    action: str = field(default="hold", init=False)

    @property
    def is_stats_problem(self) -> bool:
        """Missing, empty or stale stats: the run reports an error, not only a notice."""
        return self.kind in STATS_HOLDS


Decision = Advance | Pause | Revert | Hold


def step_started(history: Sequence[ChannelManifest]) -> datetime | None:
    """When the newest manifest's release reached its current percentage (un-paused).

    The earliest manifest of the newest unbroken run serving the same bundle at the same
    basis points, not paused; a re-sign keeps the run, a resume starts a new one.
    """
    if not history or history[-1].current is None:
        return None
    current = history[-1].current
    started = history[-1].issued
    for manifest in reversed(history):
        release = manifest.current
        if (
            release is None
            or release.sha256 != current.sha256
            or release.rollout_bp != current.rollout_bp
            or release.paused
        ):
            break
        started = manifest.issued
    return started


def decide(
    plan: RolloutPlan,
    history: Sequence[ChannelManifest],
    stats: StatsSnapshot | None,
    now: datetime,
) -> Decision:
    """The one thing guard does now (module docstring: the rules and their order)."""
    head = history[-1] if history else None
    idle = _nothing_to_guard(plan, head)
    if idle is not None or head is None or head.current is None:
        return idle or Hold("no_release", f"{plan.channel} serves no release")
    current = head.current
    started = step_started(history) or head.issued
    if stats is None:
        return Hold("missing_stats", "no stats database to judge by; not advancing without data")
    found = stats.release(current.label)
    evidence = _evidence(plan, current, started, found, now)
    if found is None or (evidence.trials == 0 and found.newest_event is None):
        return Hold(
            "empty_stats",
            f"no device reported about {current.label} on {plan.channel} since "
            f"{_iso(started)}; not advancing without data",
            evidence,
        )
    if _breached(plan, evidence):
        if plan.on_breach == "revert":
            return Revert(head.releases[1] if len(head.releases) > 1 else None, evidence)
        return Pause(evidence)
    return _wait_or_advance(plan, found, evidence, now)


def _nothing_to_guard(plan: RolloutPlan, head: ChannelManifest | None) -> Hold | None:
    current = head.current if head else None
    if current is None:
        served = "the app's builtin build" if head and head.builtin else "no release"
        return Hold("no_release", f"{plan.channel} serves {served}; nothing to roll out")
    if current.paused:
        return Hold(
            "paused",
            f"{current.label} is paused at {current.rollout_bp / 100:g} %; the guard leaves a "
            f"paused rollout alone (`otaseal rollout --channel {plan.channel} --resume` hands "
            "it back)",
        )
    if current.rollout_bp >= FULL_ROLLOUT:
        return Hold("done", f"{current.label} is at 100 %; the plan is done")
    return None


def _wait_or_advance(
    plan: RolloutPlan, found: ReleaseStats, evidence: Evidence, now: datetime
) -> Decision:
    label, percent = evidence.release, f"{evidence.basis_points / 100:g} %"
    age = now - found.newest_event if found.newest_event else None
    if age is None or age > plan.max_stats_age:
        seen = f"{age.total_seconds() / 3600:.1f} h old" if age else "missing"
        return Hold(
            "stale_stats",
            f"the newest report about {label} is {seen}, older than max_stats_age "
            f"({plan.max_stats_age.total_seconds() / 3600:g} h); not advancing on stale data "
            "(is `otaseal serve` recording stats?)",
            evidence,
        )
    if now - evidence.step_since < timedelta(hours=plan.min_hours_per_step):
        return Hold(
            "waiting_time",
            f"{label} has been at {percent} for "
            f"{evidence.hours_at_step:.1f} h of {plan.min_hours_per_step:g} h",
            evidence,
        )
    if evidence.installs < plan.min_installs:
        return Hold(
            "waiting_installs",
            f"{label} has {evidence.installs} installs at this step, {plan.min_installs} needed",
            evidence,
        )
    nxt = plan.next_step(evidence.basis_points)
    return Advance(FULL_ROLLOUT if nxt is None else nxt, evidence)


def _breached(plan: RolloutPlan, evidence: Evidence) -> bool:
    above = evidence.upper_bound > plan.max_failure_rate
    enough = evidence.trials >= plan.min_installs
    beyond_doubt = evidence.lower_bound > plan.max_failure_rate
    return (above and enough) or beyond_doubt


def _evidence(
    plan: RolloutPlan,
    current: Release,
    started: datetime,
    found: ReleaseStats | None,
    now: datetime,
) -> Evidence:
    installs = found.installs if found else 0
    failures = found.failures if found else 0
    rollbacks = found.rollbacks if found else 0
    bad = failures + rollbacks
    trials = max(installs, rollbacks) + failures
    lower, upper = wilson_bounds(bad, trials)
    return Evidence(
        release=current.label,
        basis_points=current.rollout_bp,
        step_since=started,
        hours_at_step=max(0.0, (now - started).total_seconds() / 3600),
        installs=installs,
        failures=failures,
        rollbacks=rollbacks,
        trials=trials,
        failure_rate=bad / trials if trials else 0.0,
        lower_bound=lower,
        upper_bound=upper,
        max_failure_rate=plan.max_failure_rate,
        newest_event=found.newest_event if found else None,
    )


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
