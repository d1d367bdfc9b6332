"""Which devices have any facts at all, kept in memory so most update checks skip the database.

A device has facts when it self-assigned a channel or reported ``update_fail`` for a version
(:class:`otaseal.serve.db.DeviceFacts`). Almost no device has either, yet every update check
asked the database, and that one query was a fifth of a worker's event loop under load
(docs/BENCHMARKS.md, "Update endpoint load"). Now a check asks only for a device in this set.

The set is a superset, so an answer is never wrong for long: this worker's own writes add a
device at once; other workers' (and other hosts') writes are read back every ``refresh_s`` as
the rows changed since the last read, less a margin for clocks and transactions still open; a
cleared channel leaves the device in the set and costs one query per check, which is correct.
Another worker's channel assignment therefore reaches this one within about ``refresh_s``.
Memory: one set entry per device that has facts (about 200 bytes each in CPython), read whole
once at start; devices without facts cost nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

REFRESH_S = 1.0
MARGIN_MS = 60_000


class KnownDevices:
    """The (app, device id) pairs that may have facts; see the module docstring."""

    def __init__(
        self,
        changed_since: Callable[[int | None], Iterable[tuple[str, str]]],
        *,
        clock: Callable[[], float],
        refresh_s: float = REFRESH_S,
        margin_ms: int = MARGIN_MS,
    ) -> None:
        self._changed_since = changed_since
        self._clock = clock
        self._refresh_s = refresh_s
        self._margin_ms = margin_ms
        self._devices: set[tuple[str, str]] = set()
        self._read_ms: int | None = None  # server time of the last read; None: never read
        self._next = 0.0
        self._refreshing = threading.Lock()

    def may_have_facts(self, app: str, device_id: str) -> bool:
        """Whether the database may hold facts for the device (reads changes when due)."""
        now = self._clock()
        if now >= self._next and self._refreshing.acquire(blocking=False):
            try:
                self._refresh(now)
            finally:
                self._refreshing.release()
        return (app, device_id) in self._devices

    def add(self, app: str, device_id: str) -> None:
        """Note a device this worker just wrote facts for."""
        self._devices.add((app, device_id))

    def _refresh(self, now: float) -> None:
        since = None if self._read_ms is None else self._read_ms - self._margin_ms
        read_ms = int(now * 1000)
        self._devices.update(self._changed_since(since))
        self._read_ms = read_ms
        self._next = now + self._refresh_s
