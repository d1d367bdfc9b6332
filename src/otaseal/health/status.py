"""Pure: ``otaseal status --stats``: per channel and release, rollout and health, as text and JSON.

:func:`status_health` joins what the signed manifests say (which releases, rollout %, paused)
with what devices reported (:class:`~otaseal.serve.db.ReleaseCounts`, the newest event per
release, devices per hour); the CLI and the Action gather those inputs and render the result.
A release with no evidence gets words, never a 0 % failure rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Final

from otaseal.health.stats import (
    DEFAULT_STALE_AFTER,
    AdoptionPoint,
    Evidence,
    ReleaseHealth,
    adoption,
    hours_between,
    release_health,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from otaseal.model import ChannelManifest
    from otaseal.serve.db import HourlyDevices, ReleaseCounts

METHOD: Final = "Wilson score interval, 95 % two-sided, upper end"
RATE_DEFINITION: Final = (
    "(install failures naming the release + rollbacks) / (installs + install failures)"
)
_MINUTE: Final = 60
_HOUR: Final = 3600
_DAY: Final = 86400


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """A release the channel's manifest lists, with its rollout and health."""

    health: ReleaseHealth
    rollout_percent: float
    paused: bool
    current: bool  # the channel's preferred (first) release


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """One channel: what it serves and how each listed release is doing."""

    channel: str
    error: str | None  # the manifest could not be read
    builtin: bool  # the channel serves the app's builtin build
    releases: tuple[ReleaseRow, ...]
    adoption: tuple[AdoptionPoint, ...]  # the current release's share, one point per hour
    active_devices: int  # distinct (device, hour) checks in the window, any version
    newest_age: timedelta | None  # the newest event on the channel, any release

    @property
    def current(self) -> ReleaseRow | None:
        """The release the channel prefers, if it serves one."""
        return next((r for r in self.releases if r.current), None)


@dataclass(frozen=True, slots=True)
class StatusHealth:
    """Everything ``status --stats`` shows, for one app and one time window."""

    app: str
    stats: str  # where the stats came from (no password)
    since: datetime
    until: datetime
    stale_after: timedelta
    channels: tuple[ChannelHealth, ...]

    @property
    def has_events(self) -> bool:
        """Whether any channel has any event at all."""
        return any(c.newest_age is not None for c in self.channels)


def status_health(
    *,
    app: str,
    stats: str,
    channels: Sequence[tuple[str, ChannelManifest | None, str | None]],
    counts: Sequence[ReleaseCounts],
    newest: Mapping[tuple[str, str], datetime],
    hourly: Mapping[str, Sequence[HourlyDevices]],
    since: datetime,
    until: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> StatusHealth:
    """Join (channel, manifest, error) rows with the stats of ``[since, until)``, as of until."""
    by_release = {(c.channel, c.version): c for c in counts if c.app == app}
    hours = hours_between(since, until)
    out = []
    for channel, manifest, error in channels:
        releases = manifest.releases if manifest is not None and not manifest.builtin else ()
        rows = tuple(
            ReleaseRow(
                release_health(
                    by_release.get((channel, r.label)),
                    release=r.label,
                    channel=channel,
                    newest=newest.get((channel, r.label)),
                    now=until,
                    stale_after=stale_after,
                ),
                rollout_percent=r.rollout_bp / 100,
                paused=r.paused,
                current=i == 0,
            )
            for i, r in enumerate(releases)
        )
        seen = [at for (ch, _), at in newest.items() if ch == channel]
        per_hour = hourly.get(channel, ())
        points = adoption(per_hour, rows[0].health.release, hours) if rows else ()
        out.append(
            ChannelHealth(
                channel=channel,
                error=error,
                builtin=manifest is not None and manifest.builtin,
                releases=rows,
                adoption=tuple(points),
                active_devices=sum(h.devices for h in per_hour),
                newest_age=max(until - max(seen), timedelta(0)) if seen else None,
            )
        )
    return StatusHealth(app, stats, since, until, stale_after, tuple(out))


# --- words ---------------------------------------------------------------------------------------
def age_text(age: timedelta | None) -> str:
    """``45 s``, ``12 min``, ``5 h``, ``3 d`` ago, or ``never``."""
    if age is None:
        return "never"
    seconds = int(age.total_seconds())
    if seconds < _MINUTE:
        return f"{seconds} s ago"
    if seconds < _HOUR:
        return f"{seconds // _MINUTE} min ago"
    if seconds < _DAY:
        return f"{seconds // _HOUR} h ago"
    return f"{seconds // _DAY} d ago"


def percent_text(share: float) -> str:
    """A share in percent with one decimal (``0.0 %`` only for a measured zero)."""
    return f"{share * 100:.1f} %"


def rate_text(h: ReleaseHealth) -> str:
    """The failure rate with its bound, or why there is none."""
    if h.rate is None:
        return "no failure rate: no install attempt reported"
    return (
        f"failure rate {percent_text(h.rate)} ({h.bad} of {h.trials}), "
        f"95 % upper bound {percent_text(h.upper)} (Wilson)"
    )


def evidence_text(h: ReleaseHealth, stale_after: timedelta) -> str | None:
    """A plain sentence when the numbers rest on missing, empty or stale stats."""
    if h.evidence is Evidence.MISSING:
        return "stats missing: no device has reported anything about this release"
    if h.evidence is Evidence.STALE:
        return (
            f"stats stale: the newest event is {age_text(h.newest_age)}, older than "
            f"{age_text(stale_after).removesuffix(' ago')}"
        )
    if h.evidence is Evidence.EMPTY:
        return "stats empty: devices reported, but no install attempt yet"
    return None


def adoption_text(channel: ChannelHealth) -> str:
    """The newest hour with data, and the first, as one line."""
    known = [p for p in channel.adoption if p.share is not None]
    if not known:
        return "adoption: no device checked in during the window"
    last, first = known[-1], known[0]
    text = (
        f"adoption: {percent_text(last.devices / last.active)} of {last.active} devices "
        f"checking in the hour from {last.hour.astimezone(UTC):%Y-%m-%d %H}:00Z"
    )
    if first is not last:
        text += f" (from {percent_text(first.devices / first.active)} at {first.hour:%m-%d %H}:00Z)"
    return text


def failures_text(h: ReleaseHealth) -> str:
    """Failures by kind, or ``none``."""
    return ", ".join(f"{kind}={n}" for kind, n in h.failures_by_kind) or "none"


def text(report: StatusHealth) -> list[str]:
    """Lines for people, after the channel lines ``status`` already prints."""
    lines = [
        f"device stats from {iso(report.since)} to {iso(report.until)} ({report.stats})",
    ]
    if not report.has_events:
        lines.append("  stats missing: the stats database has no event for this app")
    for channel in report.channels:
        head = f"  {channel.channel}"
        if channel.error is not None:
            lines.append(f"{head}: manifest unreadable, no health shown")
            continue
        if not channel.releases:
            what = "the app's builtin build" if channel.builtin else "no release"
            lines.append(f"{head}: serves {what}; newest event {age_text(channel.newest_age)}")
            continue
        lines.append(
            f"{head}: newest event {age_text(channel.newest_age)}; {adoption_text(channel)}"
        )
        for row in channel.releases:
            h = row.health
            rollout = f"rollout {row.rollout_percent:g} %" + (" paused" if row.paused else "")
            mark = " (current)" if row.current else ""
            lines.append(f"    {h.release}{mark}: {rollout}")
            lines.append(
                f"      devices {h.devices}, checks {h.checks}, downloads {h.downloads}, "
                f"installs {h.installs}, rollbacks {h.rollbacks}, failures {failures_text(h)}"
            )
            lines.append(f"      {rate_text(h)}; newest event {age_text(h.newest_age)}")
            note = evidence_text(h, report.stale_after)
            if note:
                lines.append(f"      {note.upper()[:1]}{note[1:]}")
    return lines


def to_json(report: StatusHealth) -> dict[str, object]:
    """The ``health`` object of ``status --stats --json``."""
    return {
        "stats": report.stats,
        "since": iso(report.since),
        "until": iso(report.until),
        "stale_after_seconds": int(report.stale_after.total_seconds()),
        "method": METHOD,
        "rate": RATE_DEFINITION,
        "channels": {
            c.channel: {
                "error": c.error,
                "builtin": c.builtin,
                "newest_event_age_seconds": _seconds(c.newest_age),
                "releases": [_release_json(r) for r in c.releases],
                "adoption": [
                    {
                        "hour": iso(p.hour),
                        "devices": p.devices,
                        "active": p.active,
                        "share": p.share,
                    }
                    for p in c.adoption
                ],
            }
            for c in report.channels
        },
    }


def _release_json(row: ReleaseRow) -> dict[str, object]:
    h = row.health
    return {
        "label": h.release,
        "current": row.current,
        "rollout": row.rollout_percent,
        "paused": row.paused,
        "devices": h.devices,
        "checks": h.checks,
        "downloads": h.downloads,
        "installs": h.installs,
        "install_failures": h.failures,
        "rollbacks": h.rollbacks,
        "failures": dict(h.failures_by_kind),
        "trials": h.trials,
        "failure_rate": h.rate,
        "failure_rate_upper": h.upper if h.rate is not None else None,
        "newest_event_age_seconds": _seconds(h.newest_age),
        "evidence": str(h.evidence),
    }


def _seconds(age: timedelta | None) -> int | None:
    return int(age.total_seconds()) if age is not None else None


def iso(moment: datetime) -> str:
    """UTC, to the second, with ``Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
