"""A device report as stored: its idempotency key, when it happened, and the release it counts for.

Pure: both stats backends turn a :class:`StatsEvent` into the same row with :func:`row`, so SQLite
and PostgreSQL dedupe and window events identically.

The key (:func:`event_id`) is a hash of what the device sent, so a batch the plugin re-sends
after a timeout or a 503 (its queue is re-queued whole, §3.5 of the Capgo reference) maps to the
same keys and is stored once:

- queued events carry the device's ``timestamp`` (ms): the key is (app, device_id, action,
  version_name, old_version_name, timestamp). Two reports equal in all of these are the same
  report.
- single-object worker events ([A] ``DownloadService``, ``rate_limit_reached``) and the server's
  own ``check`` events have no ``timestamp``: the key uses the server's receive time rounded down
  to the minute instead. A retry within the same minute is not counted twice; a retry that
  crosses a minute boundary is (these sends are fire-and-forget, so that is rare), and repeated
  identical checks of one device within a minute count once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otaseal.serve.db import StatsEvent

MINUTE_MS = 60_000
# The plugin persists its queue across restarts, so reports can arrive days late; a device
# timestamp older than this, or ahead of the server, is a wrong clock and the receive time is used.
MAX_LATE_MS = 30 * 24 * 3600 * 1000

# Manifest (delta) failures name "<version>:<file>" (reference §2.2 step 7).
MANIFEST_FILE_ACTIONS = frozenset(
    {
        "download_manifest_file_fail",
        "download_manifest_checksum_fail",
        "download_manifest_brotli_fail",
        "manifest_path_fail",
    }
)

_SURROGATE = re.compile("[\ud800-\udfff]")

Row = tuple[str, str, str, str, str, str, str, str, str, str, int | None, int, int]
"""The ``events`` columns in schema order (see ``schema/*/0001_events.sql``)."""


def event_id(
    *,
    app: str,
    device_id: str,
    action: str,
    version_name: str,
    old_version_name: str,
    timestamp_ms: int | None,
    received_ms: int,
) -> str:
    """The idempotency key of one report (see the module docstring for the choice)."""
    clock = f"t{timestamp_ms}" if timestamp_ms is not None else f"m{received_ms // MINUTE_MS}"
    fields = [app, device_id, action, version_name, old_version_name, clock]
    data = json.dumps(fields, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def occurred_ms(timestamp_ms: int | None, received_ms: int) -> int:
    """When the report happened: the device's time if plausible, else the server's."""
    if timestamp_ms is None or not received_ms - MAX_LATE_MS <= timestamp_ms <= received_ms:
        return received_ms
    return timestamp_ms


def release_of(action: str, version_name: str) -> str:
    """The release a report counts for: ``version_name``, without a manifest failure's ``:file``."""
    if action in MANIFEST_FILE_ACTIONS:
        return version_name.partition(":")[0]
    return version_name


def keyed(event: StatsEvent, *, now_ms: int) -> StatsEvent:
    """The event with its receive time and key filled in when the caller left them empty."""
    received = event.received_ms or now_ms
    if event.event_id and received == event.received_ms:
        return event
    key = event.event_id or event_id(
        app=event.app,
        device_id=event.device_id,
        action=event.action,
        version_name=event.version_name,
        old_version_name=event.old_version_name,
        timestamp_ms=event.timestamp_ms,
        received_ms=received,
    )
    return replace(event, received_ms=received, event_id=key)


def text(value: str) -> str:
    """``value`` as both databases can store it: no NUL, no lone surrogate (else U+FFFD).

    PostgreSQL refuses NUL in ``text`` and neither driver encodes a lone surrogate (which a JSON
    parser may let through from an escaped half of a surrogate pair); one such device string
    must not fail the batch it arrived with.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    return value


def row(event: StatsEvent, *, now_ms: int) -> Row:
    """The stored row of one event (keyed first, device strings made storable)."""
    e = keyed(event, now_ms=now_ms)
    return (
        text(e.event_id),
        text(e.app),
        text(e.device_id),
        text(e.action),
        text(e.version_name),
        text(release_of(e.action, e.version_name)),
        text(e.old_version_name),
        text(e.platform),
        text(e.channel),
        text(e.version_build),
        e.timestamp_ms,
        e.received_ms,
        occurred_ms(e.timestamp_ms, e.received_ms),
    )


class RecentKeys:
    """Keys this process stored lately, so that known duplicates never reach the database.

    A device checks for updates many times a minute under load, and its ``check`` events within
    one minute share a key: the database would drop them by ``ON CONFLICT`` only after a B-tree
    lookup inside the writer's transaction, which was most of the writer's time
    (docs/BENCHMARKS.md, "Update endpoint load"). Only a cache: forgetting a key (past ``limit``,
    or in another worker process) just leaves the duplicate to the database's constraint.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def fresh(self, rows: list[Row]) -> list[Row]:
        """The rows whose key is not known yet, each key once."""
        seen = self._seen
        out: list[Row] = []
        batch: set[str] = set()
        for r in rows:
            if r[0] not in seen and r[0] not in batch:
                batch.add(r[0])
                out.append(r)
        return out

    def remember(self, rows: list[Row]) -> None:
        """Note keys the database now holds (call after the commit)."""
        if len(self._seen) + len(rows) > self._limit:
            self._seen.clear()
        self._seen.update(r[0] for r in rows)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


HOUR_MS = 3_600_000


def hour_of(hour_index: int) -> datetime:
    """The start of the ``hour_index``-th hour since the epoch (the adoption query's bucket)."""
    return datetime.fromtimestamp(hour_index * HOUR_MS / 1000, tz=UTC)


def from_ms(ms: int) -> datetime:
    """A stored millisecond time as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
