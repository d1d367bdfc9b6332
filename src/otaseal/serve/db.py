"""The stats database seam: what ``serve``, ``stats`` and (later) ``guard`` need, nothing more.

Two backends implement :class:`StatsDb`: ``sqlite`` (default, embedded) and ``postgres`` (fleets).
The database holds device reports only; what to serve always comes from signed metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from otaseal.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime


class StatsError(StoreError):
    """The stats database failed (driver errors stop at the backend as this)."""


@dataclass(frozen=True, slots=True)
class StatsEvent:
    """One device report (``POST statsUrl``), as stored."""

    app: str
    device_id: str
    action: str
    version_name: str
    old_version_name: str = ""
    platform: str = ""
    channel: str = ""  # the device's defaultChannel when it reported, "" if unknown
    version_build: str = ""
    timestamp_ms: int | None = None  # the device's clock; None for worker-side single objects
    received_ms: int = 0  # the server's clock
    event_id: str = ""  # idempotency key: a re-sent batch is not counted twice


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the database knows about one device that changes what it is offered."""

    channel: str | None = None  # its self-assigned channel override
    failed: frozenset[str] = field(default_factory=frozenset)  # versions it reported update_fail


@dataclass(frozen=True, slots=True)
class ReleaseCounts:
    """Per app, channel and release counts over a time window (``otaseal stats``)."""

    app: str
    channel: str
    version: str
    checks: int = 0
    downloads: int = 0
    installs: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # action -> count
    rollbacks: int = 0
    devices: int = 0


@dataclass(frozen=True, slots=True)
class HourlyDevices:
    """How many devices ran ``version`` in one clock hour (``status``'s adoption chart).

    A device counts once per hour, under the version of its last update check in that hour.
    """

    hour: datetime  # the hour's start, UTC
    version: str
    devices: int


class StatsDb(Protocol):
    """Domain methods, not a query API; each backend writes its own SQL."""

    def migrate(self) -> None:
        """Apply missing numbered migrations; refuse a database newer than the code."""
        ...

    def record(self, events: Sequence[StatsEvent]) -> int:
        """Insert a batch idempotently (by ``event_id``); return how many were new."""
        ...

    def device(self, app: str, device_id: str) -> DeviceFacts:
        """The device's channel override and failed versions."""
        ...

    def set_channel(self, app: str, device_id: str, channel: str | None) -> None:
        """Set (or with None clear) the device's self-assigned channel."""
        ...

    def counts(
        self, *, since: datetime, until: datetime, app: str | None = None
    ) -> list[ReleaseCounts]:
        """Counts per app, channel and release for events in ``[since, until)``."""
        ...

    def adoption(
        self, app: str, channel: str, *, since: datetime, until: datetime
    ) -> list[HourlyDevices]:
        """Per clock hour in ``[since, until)``: devices checking on ``channel``, by version run."""
        ...

    def newest(self, app: str, *, until: datetime) -> dict[tuple[str, str], datetime]:
        """When the newest event before ``until`` happened, per (channel, release)."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete events received before ``before``; return how many."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_stats(url: str, *, create: bool = True) -> StatsDb:
    """The backend ``--stats URL`` names, not migrated yet (forms: ``serve/stats_url.py``)."""
    from otaseal.serve.stats_url import open_stats as open_url  # noqa: PLC0415

    return open_url(url, create=create)
