"""Pure: which counter a report's ``action`` feeds, and grouped database rows -> ReleaseCounts.

What counts (actions of plugin 8.51.23, reference §3.5):

- checks: ``check``, the event ``serve`` records for each update check (``version_name`` = what
  the device runs, ``channel`` = the channel it was answered from). It carries no device
  timestamp, so unless ``serve`` gives it its own ``event_id`` the key is the receive minute
  (:mod:`otaseal.serve.events`): a device polling in a loop counts once a minute;
- downloads: ``download_complete`` only. Both platforms send it once the bundle is downloaded,
  verified and unpacked, *after* the worker's ``download_zip_complete`` /
  ``download_manifest_complete`` for the same download, so counting those too would count every
  download twice; they are kept as events but feed no counter;
- installs: ``set`` (the bundle was activated);
- rollbacks: ``update_fail`` (the device rolled back a bundle that never called
  ``notifyAppReady()``); it names the failed release;
- failures, by action: every action ending in ``_fail`` except ``update_fail``, plus
  ``checksum_required``, ``session_key_required`` and ``insufficient_disk_space``.

A failure is counted under the release its report names, which is not always the one that failed:
``download_fail`` and the path/unzip failures usually name the release the device *runs* (a
``kind: failed`` reply makes the plugin send a ``download_fail`` for its current bundle). They stay
under their own action name; :func:`install_failures` sums only the actions that name their
target, which is what a health check may hold against a release.
Distinct devices are the devices with any report naming the release in the window (a check
from a device running it, or any action about it). Unknown actions are opaque: stored, and
counted in no column but distinct devices.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from otaseal.serve.db import ReleaseCounts

if TYPE_CHECKING:
    from collections.abc import Iterable

CHECK = "check"
DOWNLOAD = "download_complete"
INSTALL = "set"
ROLLBACK = "update_fail"
FAILURES_WITHOUT_SUFFIX = frozenset(
    {"checksum_required", "session_key_required", "insufficient_disk_space"}
)
# Failures whose version_name is the release being installed on both platforms (reference §3.5).
TARGET_FAILURES = frozenset(
    {
        "set_fail",
        "finish_download_fail",
        "decrypt_fail",
        "download_manifest_file_fail",
        "download_manifest_checksum_fail",
        "download_manifest_brotli_fail",
        "manifest_path_fail",
    }
)

ActionRow = tuple[str, str, str, str, int]
"""(app, channel, release, action, events) from ``GROUP BY app, channel, release, action``."""
DeviceRow = tuple[str, str, str, int]
"""(app, channel, release, distinct devices) from ``GROUP BY app, channel, release``."""


class Counter(StrEnum):
    """The column of :class:`ReleaseCounts` an action feeds."""

    CHECKS = "checks"
    DOWNLOADS = "downloads"
    INSTALLS = "installs"
    ROLLBACKS = "rollbacks"
    FAILURES = "failures"
    NONE = "none"


_FIXED = {
    CHECK: Counter.CHECKS,
    DOWNLOAD: Counter.DOWNLOADS,
    INSTALL: Counter.INSTALLS,
    ROLLBACK: Counter.ROLLBACKS,
}


def counter_of(action: str) -> Counter:
    """Which counter one action feeds."""
    fixed = _FIXED.get(action)
    if fixed is not None:
        return fixed
    if action.endswith("_fail") or action in FAILURES_WITHOUT_SUFFIX:
        return Counter.FAILURES
    return Counter.NONE


def install_failures(counts: ReleaseCounts) -> int:
    """Failures that name the release being installed (not the one the device runs)."""
    return sum(n for action, n in counts.failures.items() if action in TARGET_FAILURES)


def fold(actions: Iterable[ActionRow], devices: Iterable[DeviceRow]) -> list[ReleaseCounts]:
    """Per (app, channel, release) counts, sorted; a group with only opaque actions still shows."""
    tallies: dict[tuple[str, str, str], dict[str, int]] = {}
    failures: dict[tuple[str, str, str], dict[str, int]] = {}
    for app, channel, release, action, n in actions:
        key = (app, channel, release)
        tally = tallies.setdefault(key, {})
        fails = failures.setdefault(key, {})
        counter = counter_of(action)
        if counter is Counter.FAILURES:
            fails[action] = fails.get(action, 0) + n
        elif counter is not Counter.NONE:
            tally[counter] = tally.get(counter, 0) + n
    seen: dict[tuple[str, str, str], int] = {}
    for app, channel, release, n in devices:
        seen[(app, channel, release)] = seen.get((app, channel, release), 0) + n
        tallies.setdefault((app, channel, release), {})
    return [
        ReleaseCounts(
            app=key[0],
            channel=key[1],
            version=key[2],
            checks=tally.get(Counter.CHECKS, 0),
            downloads=tally.get(Counter.DOWNLOADS, 0),
            installs=tally.get(Counter.INSTALLS, 0),
            failures=dict(sorted(failures.get(key, {}).items())),
            rollbacks=tally.get(Counter.ROLLBACKS, 0),
            devices=seen.get(key, 0),
        )
        for key, tally in sorted(tallies.items())
    ]
