"""Pure: the failure rate of a release, its Wilson upper bound, and adoption shares.

The failure rate (SPEC-free; what ``status`` and ``guard`` hold against a release):

- an *install attempt* of release R ends either in ``set`` (R was activated) or in a failure
  that names R as the bundle being installed (:func:`otaseal.serve.rollup.install_failures`:
  ``set_fail``, ``decrypt_fail``, manifest file failures, ...);
- a *rollback* (``update_fail``) comes after a ``set``: R was activated, never called
  ``notifyAppReady()``, and the device went back;
- so ``rate = (install failures + rollbacks) / (installs + install failures)``. When lost or
  out-of-window ``set`` reports leave fewer installs than rollbacks, the rollbacks stand in for
  the installs (``trials = max(installs, rollbacks) + install failures``), so the rate stays in
  [0, 1]. Failures that name the release a device *runs* (``download_fail``, ``unzip_fail``, ...)
  are shown by kind but are not held against R.

The upper bound is the upper end of the two-sided 95 % **Wilson score interval** (z = 1.959964):
with few trials it stays high, so a release is not called healthy on thin evidence. With no trial
at all the bound is 1.0 and the rate is None: no evidence is never a 0 % failure rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from otaseal.serve import rollup

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from otaseal.serve.db import HourlyDevices, ReleaseCounts

Z_95: Final = 1.959964
"""The two-sided 95 % normal quantile."""
DEFAULT_STALE_AFTER: Final = timedelta(hours=6)
"""A release whose newest event is older than this has stale stats (``status --stale-after``)."""


def wilson_upper(failures: int, trials: int, z: float = Z_95) -> float:
    """Upper end of the Wilson score interval for ``failures`` out of ``trials`` (1.0 if none)."""
    if trials < 0 or failures < 0 or failures > trials:
        msg = f"need 0 <= failures <= trials, got {failures} of {trials}"
        raise ValueError(msg)
    if failures == trials:  # includes 0 of 0; exact, where the formula rounds to 0.999…
        return 1.0
    p = failures / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return min(1.0, (centre + spread) / (1 + z2 / trials))


def failure_rate(failures: int, trials: int) -> float | None:
    """``failures / trials``, or None when there was no trial (no evidence, not 0 %)."""
    if trials < 0 or failures < 0 or failures > trials:
        msg = f"need 0 <= failures <= trials, got {failures} of {trials}"
        raise ValueError(msg)
    return failures / trials if trials else None


class Evidence(StrEnum):
    """How much a release's numbers can be trusted, said plainly next to them."""

    OK = "ok"
    MISSING = "missing"  # no event names the release at all
    EMPTY = "empty"  # events, but no install attempt: no rate
    STALE = "stale"  # the newest event is older than the staleness limit


@dataclass(frozen=True, slots=True)
class ReleaseHealth:
    """One release's health on one channel, from a stats window (all counts in that window)."""

    release: str  # the release label (the version devices report)
    channel: str
    installs: int  # ``set`` reports
    failures: int  # install failures that name this release (rollup.install_failures)
    rollbacks: int  # ``update_fail`` reports
    rate: float | None  # (failures + rollbacks) / trials; None without a trial
    upper: float  # Wilson 95 % upper bound of the rate; 1.0 without a trial
    devices: int  # distinct devices with any report naming the release
    newest_age: timedelta | None  # how old its newest event is; None: no event ever
    checks: int = 0  # update checks from devices running it
    downloads: int = 0  # ``download_complete`` reports
    failures_by_kind: tuple[tuple[str, int], ...] = ()  # every failure action, sorted
    evidence: Evidence = Evidence.MISSING

    @property
    def trials(self) -> int:
        """Install attempts: ``max(installs, rollbacks) + failures``."""
        return max(self.installs, self.rollbacks) + self.failures

    @property
    def bad(self) -> int:
        """Install attempts that failed or rolled back."""
        return self.failures + self.rollbacks


def release_health(
    counts: ReleaseCounts | None,
    *,
    release: str,
    channel: str,
    newest: datetime | None,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> ReleaseHealth:
    """The health of ``release`` from its counts (None: no event in the window) and newest event."""
    installs = counts.installs if counts else 0
    rollbacks = counts.rollbacks if counts else 0
    failures = rollup.install_failures(counts) if counts else 0
    trials = max(installs, rollbacks) + failures
    bad = failures + rollbacks
    age = max(now - newest, timedelta(0)) if newest is not None else None
    if newest is None and counts is None:
        evidence = Evidence.MISSING
    elif age is not None and age > stale_after:
        evidence = Evidence.STALE
    elif trials == 0:
        evidence = Evidence.EMPTY
    else:
        evidence = Evidence.OK
    return ReleaseHealth(
        release=release,
        channel=channel,
        installs=installs,
        failures=failures,
        rollbacks=rollbacks,
        rate=failure_rate(bad, trials),
        upper=wilson_upper(bad, trials),
        devices=counts.devices if counts else 0,
        newest_age=age,
        checks=counts.checks if counts else 0,
        downloads=counts.downloads if counts else 0,
        failures_by_kind=tuple(sorted(counts.failures.items())) if counts else (),
        evidence=evidence,
    )


@dataclass(frozen=True, slots=True)
class AdoptionPoint:
    """The share of active devices on a release in one hour (None: no device checked)."""

    hour: datetime
    devices: int  # devices on the release
    active: int  # devices that checked in that hour, on any version

    @property
    def share(self) -> float | None:
        """``devices / active``, or None when nobody checked (no data, not 0 %)."""
        return self.devices / self.active if self.active else None


def adoption(
    rows: Iterable[HourlyDevices], release: str, hours: Sequence[datetime]
) -> list[AdoptionPoint]:
    """One point per hour in ``hours``: devices on ``release`` among the devices checking."""
    active: dict[datetime, int] = {}
    on: dict[datetime, int] = {}
    for row in rows:
        active[row.hour] = active.get(row.hour, 0) + row.devices
        if row.version == release:
            on[row.hour] = on.get(row.hour, 0) + row.devices
    return [AdoptionPoint(h, on.get(h, 0), active.get(h, 0)) for h in hours]


def hours_between(since: datetime, until: datetime) -> list[datetime]:
    """The starts of the clock hours (UTC) that overlap ``[since, until)``."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while start < until:
        out.append(start)
        start += timedelta(hours=1)
    return out
