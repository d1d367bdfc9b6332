"""health/stats.py: the Wilson bound, the failure rate, ReleaseHealth and adoption, row by row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otaseal.health.stats import (
    AdoptionPoint,
    Evidence,
    adoption,
    failure_rate,
    hours_between,
    release_health,
    wilson_upper,
)
from otaseal.serve.db import HourlyDevices, ReleaseCounts

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)


@pytest.mark.parametrize(
    ("failures", "trials", "upper"),
    [
        (0, 0, 1.0),  # no evidence: the bound says nothing
        (0, 1, 0.7934506882),
        (0, 10, 0.2775328030),
        (1, 100, 0.0544861967),  # published: 0.0545
        (5, 100, 0.1117504699),  # published: 0.1118
        (0, 200, 0.0188453267),
        (2, 200, 0.0357217620),
        (1, 2, 0.9054687954),
        (10, 10, 1.0),
    ],
)
def test_wilson_upper_known_values(failures: int, trials: int, upper: float) -> None:
    assert wilson_upper(failures, trials) == pytest.approx(upper, abs=1e-9)


def test_wilson_upper_takes_another_z() -> None:
    assert wilson_upper(0, 10, z=1.0) == pytest.approx(1 / 11)
    assert wilson_upper(1, 100, z=2.575829) > wilson_upper(1, 100)


@pytest.mark.parametrize(("failures", "trials"), [(-1, 10), (11, 10), (0, -1)])
def test_impossible_counts_are_a_programming_error(failures: int, trials: int) -> None:
    with pytest.raises(ValueError, match="failures <= trials"):
        wilson_upper(failures, trials)
    with pytest.raises(ValueError, match="failures <= trials"):
        failure_rate(failures, trials)


def test_failure_rate_without_trials_is_none_not_zero() -> None:
    assert failure_rate(0, 0) is None
    assert failure_rate(0, 4) == 0.0
    assert failure_rate(1, 4) == 0.25


def counts(**kw: object) -> ReleaseCounts:
    return ReleaseCounts("com.example.app", "production", "1.1", **kw)  # type: ignore[arg-type]


def test_rate_is_install_failures_naming_the_release_plus_rollbacks_over_attempts() -> None:
    h = release_health(
        counts(
            checks=40,
            downloads=100,
            installs=95,
            rollbacks=3,
            devices=99,
            # set_fail and decrypt_fail name 1.1; download_fail names what the device runs
            failures={"decrypt_fail": 1, "download_fail": 7, "set_fail": 1},
        ),
        release="1.1",
        channel="production",
        newest=NOW - timedelta(minutes=5),
        now=NOW,
        stale_after=SIX_HOURS,
    )
    assert (h.installs, h.failures, h.rollbacks, h.trials, h.bad) == (95, 2, 3, 97, 5)
    assert h.rate == pytest.approx(5 / 97)
    assert h.upper == pytest.approx(wilson_upper(5, 97))
    assert h.failures_by_kind == (("decrypt_fail", 1), ("download_fail", 7), ("set_fail", 1))
    assert (h.checks, h.downloads, h.devices) == (40, 100, 99)
    assert h.newest_age == timedelta(minutes=5)
    assert h.evidence is Evidence.OK


def test_more_rollbacks_than_installs_stand_in_for_the_installs() -> None:
    h = release_health(
        counts(installs=1, rollbacks=3),
        release="1.1",
        channel="production",
        newest=NOW,
        now=NOW,
        stale_after=SIX_HOURS,
    )
    assert (h.trials, h.bad, h.rate, h.upper) == (3, 3, 1.0, 1.0)


@pytest.mark.parametrize(
    ("given", "newest", "evidence", "rate"),
    [
        (None, None, Evidence.MISSING, None),
        (counts(checks=5, devices=5), NOW, Evidence.EMPTY, None),
        (counts(installs=10), NOW - timedelta(hours=7), Evidence.STALE, 0.0),
        (counts(installs=10), NOW - SIX_HOURS, Evidence.OK, 0.0),
        (None, NOW - timedelta(days=3), Evidence.STALE, None),  # events, all before the window
        (None, NOW - timedelta(hours=1), Evidence.EMPTY, None),
    ],
)
def test_evidence_is_said_plainly(
    given: ReleaseCounts | None, newest: datetime | None, evidence: Evidence, rate: float | None
) -> None:
    h = release_health(
        given, release="1.1", channel="production", newest=newest, now=NOW, stale_after=SIX_HOURS
    )
    assert h.evidence is evidence
    assert h.rate == rate
    if rate is None:
        assert h.upper == 1.0


def test_a_newest_event_after_now_has_age_zero() -> None:
    h = release_health(
        counts(installs=1),
        release="1.1",
        channel="production",
        newest=NOW + timedelta(seconds=3),
        now=NOW,
        stale_after=SIX_HOURS,
    )
    assert h.newest_age == timedelta(0)


def test_adoption_is_the_share_of_devices_checking_per_hour() -> None:
    h0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    h1, h2 = h0 + timedelta(hours=1), h0 + timedelta(hours=2)
    rows = [
        HourlyDevices(h0, "1.0", 3),
        HourlyDevices(h0, "1.1", 1),
        HourlyDevices(h2, "1.1", 2),
    ]
    points = adoption(rows, "1.1", [h0, h1, h2])
    assert points == [AdoptionPoint(h0, 1, 4), AdoptionPoint(h1, 0, 0), AdoptionPoint(h2, 2, 2)]
    assert [p.share for p in points] == [0.25, None, 1.0]  # no device: no data, not 0 %
    assert [p.share for p in adoption(rows, "1.0", [h0, h2])] == [0.75, 0.0]


def test_hours_between_covers_every_overlapping_clock_hour() -> None:
    since = datetime(2026, 11, 23, 9, 40, tzinfo=UTC)
    assert hours_between(since, since + timedelta(hours=2)) == [
        datetime(2026, 11, 23, 9, tzinfo=UTC),
        datetime(2026, 11, 23, 10, tzinfo=UTC),
        datetime(2026, 11, 23, 11, tzinfo=UTC),
    ]
    exact = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert len(hours_between(exact, exact + timedelta(hours=24))) == 24
