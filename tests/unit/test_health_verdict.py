"""The guard's verdict, row by row: (plan, manifest history, stats snapshot, now) -> decision.

No store, clock or database: manifests and snapshots are built here, the clock is a literal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from otaseal.health.verdict import (
    Advance,
    Hold,
    Pause,
    ReleaseStats,
    Revert,
    StatsSnapshot,
    decide,
    step_started,
    wilson_bounds,
)
from otaseal.model import ChannelManifest, Release
from otaseal.plans import RolloutPlan

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PLAN = RolloutPlan(
    channel="production",
    steps=(100, 1000, 5000, 10000),
    min_hours_per_step=24,
    min_installs=200,
    max_failure_rate=0.02,
    on_breach="pause",
    max_stats_age=timedelta(hours=6),
)


def release(label: str, bp: int, *, paused: bool = False, digit: str = "a") -> Release:
    return Release(
        label=label,
        counter=1,
        sha256=digit * 64,
        length=100,
        plaintext_sha256="f" * 64,
        plaintext_length=90,
        files=3,
        unpacked_size=300,
        published=T0,
        rollout_bp=bp,
        paused=paused,
    )


OLD = release("1.0.0", 10000, digit="0")


def manifest(
    version: int, issued: datetime, *releases: Release, builtin: bool = False
) -> ChannelManifest:
    return ChannelManifest(
        app="com.example.app",
        channel="production",
        version=version,
        issued=issued,
        expires=issued + timedelta(days=30),
        releases=releases,
        builtin=builtin,
    )


def history(*steps: tuple[int, int, bool]) -> list[ChannelManifest]:
    """(hours after T0, basis points of 1.1.0, paused) per manifest, after 1.0.0 at 100 %."""
    out = [manifest(1, T0 - 48 * HOUR, OLD)]
    for hours, bp, paused in steps:
        out.append(
            manifest(len(out) + 1, T0 + hours * HOUR, release("1.1.0", bp, paused=paused), OLD)
        )
    return out


def stats(
    installs: int,
    failures: int = 0,
    rollbacks: int = 0,
    *,
    newest: datetime | None = T0 + 30 * HOUR,
    label: str = "1.1.0",
) -> StatsSnapshot:
    return StatsSnapshot(
        channel="production",
        since=T0,
        until=T0 + 30 * HOUR,
        releases=(ReleaseStats(label, installs, failures, rollbacks, newest),),
    )


NOW = T0 + 30 * HOUR
AT_1 = history((0, 100, False))  # 1.1.0 at 1 % since T0


# --- advancing -----------------------------------------------------------------------------------
def test_a_healthy_step_advances_one_step() -> None:
    decision = decide(PLAN, AT_1, stats(400), NOW)
    assert isinstance(decision, Advance)
    assert decision.to_basis_points == 1000
    assert decision.evidence.installs == 400
    assert decision.evidence.upper_bound < 0.02


def test_advance_goes_only_to_the_next_step_from_a_percentage_between_steps() -> None:
    decision = decide(PLAN, history((0, 2500, False)), stats(400), NOW)
    assert isinstance(decision, Advance)
    assert decision.to_basis_points == 5000


def test_the_last_step_goes_to_100() -> None:
    decision = decide(PLAN, history((0, 5000, False)), stats(400), NOW)
    assert isinstance(decision, Advance)
    assert decision.to_basis_points == 10000


def test_advances_at_exactly_the_minimum_time_and_installs() -> None:
    exact = T0 + 24 * HOUR
    decision = decide(PLAN, AT_1, stats(200, newest=exact), exact)
    assert isinstance(decision, Advance)


# --- holding -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("snapshot", "now", "kind"),
    [
        (stats(400), T0 + 24 * HOUR - timedelta(seconds=1), "waiting_time"),
        (stats(199), NOW, "waiting_installs"),
        (None, NOW, "missing_stats"),
        (StatsSnapshot("production", T0, NOW), NOW, "empty_stats"),
        (stats(400, label="1.0.0"), NOW, "empty_stats"),
        (stats(0, newest=None), NOW, "empty_stats"),
        (stats(400, newest=NOW - 6 * HOUR - timedelta(seconds=1)), NOW, "stale_stats"),
        (stats(400, newest=None), NOW, "stale_stats"),
    ],
    ids=["time", "installs", "missing", "empty", "other-release", "no-events", "stale", "undated"],
)
def test_holds_and_says_why(snapshot: StatsSnapshot | None, now: datetime, kind: str) -> None:
    decision = decide(PLAN, AT_1, snapshot, now)
    assert isinstance(decision, Hold)
    assert decision.kind == kind
    assert decision.reason
    assert decision.is_stats_problem is (kind.endswith("_stats"))


def test_stats_exactly_max_age_old_are_fresh() -> None:
    decision = decide(PLAN, AT_1, stats(400, newest=NOW - 6 * HOUR), NOW)
    assert isinstance(decision, Advance)


def test_never_advances_on_missing_empty_or_stale_stats_however_long_it_waits() -> None:
    later = T0 + 1000 * HOUR
    for snapshot in (None, StatsSnapshot("production", T0, later), stats(10**6, newest=T0)):
        assert isinstance(decide(PLAN, AT_1, snapshot, later), Hold)


@pytest.mark.parametrize(
    ("steps", "kind"),
    [
        ((), "no_release"),
        (((0, 100, True),), "paused"),
        (((0, 10000, False),), "done"),
    ],
)
def test_nothing_to_guard(steps: tuple[tuple[int, int, bool], ...], kind: str) -> None:
    hist = history(*steps) if steps else []
    decision = decide(PLAN, hist, stats(10**4, failures=10**4), NOW)
    assert isinstance(decision, Hold)
    assert decision.kind == kind


def test_a_channel_serving_the_builtin_build_is_held() -> None:
    decision = decide(PLAN, [manifest(1, T0, OLD, builtin=True)], stats(400), NOW)
    assert isinstance(decision, Hold)
    assert "builtin" in decision.reason


def test_a_paused_rollout_is_held_and_the_reason_says_how_to_resume() -> None:
    decision = decide(PLAN, history((0, 100, True)), stats(400), NOW)
    assert isinstance(decision, Hold)
    assert "--resume" in decision.reason


# --- the step clock comes from the signed history ------------------------------------------------
def test_step_starts_when_the_current_percentage_was_first_signed() -> None:
    hist = history((0, 100, False), (10, 1000, False), (20, 1000, False))  # v4 is a re-sign
    assert step_started(hist) == T0 + 10 * HOUR
    decision = decide(PLAN, hist, stats(400), T0 + 33 * HOUR)
    assert isinstance(decision, Hold)
    assert decision.kind == "waiting_time"
    assert isinstance(
        decide(PLAN, hist, stats(400, newest=T0 + 34 * HOUR), T0 + 34 * HOUR), Advance
    )


def test_a_resume_restarts_the_step_clock() -> None:
    hist = history((0, 100, False), (5, 100, True), (20, 100, False))
    assert step_started(hist) == T0 + 20 * HOUR


def test_a_new_release_at_the_same_percentage_starts_its_own_step() -> None:
    hist = history((0, 100, False))
    hist.append(manifest(3, T0 + 10 * HOUR, release("1.2.0", 100, digit="b"), OLD))
    assert step_started(hist) == T0 + 10 * HOUR


def test_no_step_without_a_release() -> None:
    assert step_started([]) is None
    assert step_started([manifest(1, T0, OLD, builtin=True)]) is None


# --- stopping ------------------------------------------------------------------------------------
def test_upper_bound_over_the_limit_with_enough_evidence_pauses() -> None:
    decision = decide(PLAN, AT_1, stats(300, failures=6), NOW)  # 2 %: bound ~3.9 %
    assert isinstance(decision, Pause)
    assert decision.evidence.upper_bound > 0.02
    assert decision.evidence.failures == 6


def test_the_same_bound_on_thin_evidence_waits_for_installs() -> None:
    decision = decide(PLAN, AT_1, stats(50, failures=1), NOW)
    assert isinstance(decision, Hold)
    assert decision.kind == "waiting_installs"


def test_a_release_failing_beyond_doubt_stops_before_min_installs() -> None:
    decision = decide(PLAN, AT_1, stats(20, rollbacks=10), T0 + HOUR)
    assert isinstance(decision, Pause)
    assert decision.evidence.lower_bound > 0.02


def test_a_breach_stops_even_on_stale_stats() -> None:
    assert isinstance(decide(PLAN, AT_1, stats(300, failures=60, newest=T0), NOW), Pause)


def test_revert_plan_reverts_to_the_previous_release() -> None:
    plan = replace(PLAN, on_breach="revert")
    decision = decide(plan, AT_1, stats(300, rollbacks=30), NOW)
    assert isinstance(decision, Revert)
    assert decision.to == OLD


def test_revert_with_no_earlier_release_goes_to_the_builtin_build() -> None:
    plan = replace(PLAN, on_breach="revert")
    hist = [manifest(1, T0, release("1.1.0", 100))]
    decision = decide(plan, hist, stats(300, rollbacks=30), NOW)
    assert isinstance(decision, Revert)
    assert decision.to is None


def test_rollbacks_count_against_the_release() -> None:
    decision = decide(PLAN, AT_1, stats(400, rollbacks=20), NOW)
    assert isinstance(decision, Pause)
    assert decision.evidence.trials == 400
    assert decision.evidence.failure_rate == pytest.approx(0.05)


# --- the interval ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failures", "trials", "lower", "upper"),
    [
        (0, 0, 0.0, 1.0),
        (0, 200, 0.0, 0.018845),  # z² / (n + z²): a clean 200 is under 2 %, a clean 188 is not
        (0, 188, 0.0, 0.020024),
        (1, 10, 0.017876, 0.404150),
        (10, 10, 0.722467, 1.0),
        (5, 1000, 0.002138, 0.011651),
    ],
)
def test_wilson_bounds(failures: int, trials: int, lower: float, upper: float) -> None:
    low, high = wilson_bounds(failures, trials)
    assert low == pytest.approx(lower, abs=1e-6)
    assert high == pytest.approx(upper, abs=1e-6)


def test_evidence_reads_for_people_and_as_json() -> None:
    decision = decide(PLAN, AT_1, stats(1000, failures=2, rollbacks=1), NOW)
    assert isinstance(decision, Advance)
    text = decision.evidence.text()
    assert "1.1.0 at 1 % for 30.0 h: 1000 installs, 2 failures, 1 rollbacks" in text
    assert "Wilson" in text
    doc = decision.evidence.to_dict()
    assert doc["rollout"] == 1
    assert doc["step_since"] == "2026-11-01T12:00:00Z"
    assert doc["trials"] == 1002
