"""StatsDb on the standard library's sqlite3: the default, embedded, nothing to start.

One writer connection, used under a lock, runs every write in ``BEGIN IMMEDIATE``; each reading
thread has its own connection. WAL is on, so reads (``device()`` on every update check) never wait
for a write. Several processes (``serve --workers``) may share the file: SQLite's own lock
serialises their writers, and ``busy_timeout`` makes one wait for the other instead of failing.
Open it in each process after any fork; a connection must not cross one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from otaseal.serve import events as ev
from otaseal.serve import migrations, rollup
from otaseal.serve.db import DeviceFacts, HourlyDevices, ReleaseCounts, StatsError
from otaseal.serve.known import KnownDevices

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime
    from pathlib import Path

    from otaseal.serve.db import StatsEvent

BUSY_TIMEOUT_S = 10.0
PRUNE_CHUNK = 10_000

# A whole batch is one statement over a JSON array of rows: ``executemany`` releases and retakes
# the GIL for every row, and under load the event loop then starves the writer (about 5,000
# events/s instead of tens of thousands; docs/BENCHMARKS.md, "Update endpoint load").
_INSERT_EVENTS = (
    "INSERT INTO events (event_id, app, device_id, action, version_name, release,"
    " old_version_name, platform, channel, version_build, timestamp_ms, received_ms, at_ms)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    " json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'),"
    " json_extract(value, '$[8]'), json_extract(value, '$[9]'), json_extract(value, '$[10]'),"
    " json_extract(value, '$[11]'), json_extract(value, '$[12]')"
    " FROM json_each(?) WHERE true ON CONFLICT (event_id) DO NOTHING"
)
_INSERT_FAILURE = (
    "INSERT INTO device_failures (app, device_id, version, reported_ms) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_DEVICE = (
    "SELECT 1, channel FROM device_channels WHERE app = ?1 AND device_id = ?2"
    " UNION ALL SELECT 2, version FROM device_failures WHERE app = ?1 AND device_id = ?2"
)
_CHANGED_SINCE = (
    "SELECT app, device_id FROM device_channels WHERE updated_ms >= ?1"
    " UNION SELECT app, device_id FROM device_failures WHERE reported_ms >= ?1"
)
_COUNT_ACTIONS = (
    "SELECT app, channel, release, action, count(*) FROM events"
    " WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR app = ?3)"
    " GROUP BY app, channel, release, action"
)
_COUNT_DEVICES = (
    "SELECT app, channel, release, count(DISTINCT device_id) FROM events"
    " WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR app = ?3)"
    " GROUP BY app, channel, release"
)

# One row per device and hour (its last check there), then devices per hour and version.
_ADOPTION = (
    "SELECT hour, version_name, count(*) FROM (SELECT at_ms / 3600000 AS hour, version_name,"
    " row_number() OVER (PARTITION BY at_ms / 3600000, device_id"
    " ORDER BY at_ms DESC, event_id DESC) AS nth FROM events"
    " WHERE app = ?1 AND channel = ?2 AND action = 'check'"
    " AND at_ms >= ?3 AND at_ms < ?4) AS last_checks"
    " WHERE nth = 1 GROUP BY hour, version_name ORDER BY hour, version_name"
)
_NEWEST = (
    "SELECT channel, release, max(at_ms) FROM events WHERE app = ?1 AND at_ms < ?2"
    " GROUP BY channel, release"
)


class SqliteStatsDb:
    """The stats database in one SQLite file (see the module docstring for the threading)."""

    def __init__(
        self, path: Path, *, create: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._clock = clock
        if not create and not path.is_file():
            raise StatsError(
                f"there is no stats database at {path}",
                expected="the SQLite file `otaseal serve --stats` writes",
                fix="pass --stats with the URL the server uses",
            )
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StatsError(
                    f"cannot make the folder of the stats database {path} ({exc.strerror})",
                    fix="choose a --stats path in a folder this user can write",
                ) from None
        self._lock = threading.Lock()
        self._recent = ev.RecentKeys()
        self._known = KnownDevices(self._changed_since, clock=clock)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        with self._errors("opening"):
            self._writer = self._connect()
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._writer.execute("PRAGMA synchronous=NORMAL")
        if str(mode).lower() != "wal":
            self._writer.close()
            raise StatsError(
                f"the stats database {path} cannot use write-ahead logging (journal mode {mode})",
                expected="a file on a local filesystem",
                fix="put the SQLite file on a local disk, or use PostgreSQL",
            )

    # --- connections ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StatsError(f"the stats database {self.path} is closed")
            with self._errors("opening"):
                conn = self._connect()
                conn.execute("PRAGMA query_only=1")
            with self._lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StatsError(
                f"{what} the SQLite stats database {self.path} failed ({exc})",
                fix="check that the file and its folder are readable and writable, and the "
                "disk has room",
            ) from exc

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """The writer in one ``BEGIN IMMEDIATE`` transaction, committed or rolled back."""
        with self._lock, self._errors(what):
            if self._closed:
                raise StatsError(f"the stats database {self.path} is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- StatsDb ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply missing migrations, one transaction each; refuse a newer database."""
        steps = migrations.load("sqlite")
        latest = steps[-1].number
        current = self._version(self._reader())
        migrations.check_not_newer(current, latest, str(self.path))
        if current == latest:
            return
        with self._lock, self._errors("migrating"):
            self._writer.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
            )
        for step in steps:
            with self._write("migrating") as conn:
                current = self._version(conn)
                migrations.check_not_newer(current, latest, str(self.path))
                if current >= step.number:
                    continue
                for statement in migrations.sqlite_statements(step.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)",
                    (step.number, step.name, self._now_ms()),
                )

    def _version(self, conn: sqlite3.Connection) -> int:
        with self._errors("reading the schema version of"):
            table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if table is None:
                return 0
            return int(
                conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            )

    def record(self, events: Sequence[StatsEvent]) -> int:
        """Insert a batch idempotently (by ``event_id``); return how many were new."""
        if not events:
            return 0
        now = self._now_ms()
        rows = [ev.row(e, now_ms=now) for e in events]
        failures = [(r[1], r[2], r[5], r[11]) for r in rows if r[3] == rollup.ROLLBACK]
        with self._write("recording events in") as conn:
            fresh = self._recent.fresh(rows)
            before = conn.total_changes
            if fresh:
                conn.execute(_INSERT_EVENTS, (json.dumps(fresh),))
            new = conn.total_changes - before
            if failures:
                conn.executemany(_INSERT_FAILURE, failures)
        self._recent.remember(fresh)
        for app, device_id, _, _ in failures:
            self._known.add(app, device_id)
        return new

    def device(self, app: str, device_id: str) -> DeviceFacts:
        """The device's channel override and failed versions: one indexed query, if any."""
        if not self._known.may_have_facts(app, device_id):
            return DeviceFacts()
        conn = self._reader()
        with self._errors("reading a device from"):
            found = conn.execute(_DEVICE, (app, device_id)).fetchall()
        if not found:
            return DeviceFacts()
        channel = None
        failed = []
        for kind, value in found:
            if kind == 1:
                channel = value
            else:
                failed.append(value)
        return DeviceFacts(channel=channel, failed=frozenset(failed))

    def set_channel(self, app: str, device_id: str, channel: str | None) -> None:
        """Set (or with None clear) the device's self-assigned channel."""
        self._known.add(app, device_id)  # before the write: a reader never misses it
        with self._write("setting a device channel in") as conn:
            if channel is None:
                conn.execute(
                    "DELETE FROM device_channels WHERE app = ? AND device_id = ?", (app, device_id)
                )
            else:
                conn.execute(
                    "INSERT INTO device_channels (app, device_id, channel, updated_ms)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (app, device_id) DO UPDATE"
                    " SET channel = excluded.channel, updated_ms = excluded.updated_ms",
                    (app, device_id, channel, self._now_ms()),
                )

    def _changed_since(self, since_ms: int | None) -> list[tuple[str, str]]:
        """Devices whose facts changed at or after ``since_ms`` (None: every device with facts)."""
        conn = self._reader()
        with self._errors("reading device facts from"):
            rows = conn.execute(_CHANGED_SINCE, (-1 if since_ms is None else since_ms,))
            return [(str(app), str(device)) for app, device in rows.fetchall()]

    def counts(
        self, *, since: datetime, until: datetime, app: str | None = None
    ) -> list[ReleaseCounts]:
        """Counts per app, channel and release for events in ``[since, until)``."""
        params = (ev.to_ms(since), ev.to_ms(until), app)
        conn = self._reader()
        with self._errors("counting events in"):
            conn.execute("BEGIN")  # one snapshot for both queries
            try:
                actions = conn.execute(_COUNT_ACTIONS, params).fetchall()
                devices = conn.execute(_COUNT_DEVICES, params).fetchall()
            finally:
                conn.execute("COMMIT")
        return rollup.fold(actions, devices)

    def adoption(
        self, app: str, channel: str, *, since: datetime, until: datetime
    ) -> list[HourlyDevices]:
        """Per clock hour in ``[since, until)``: devices checking on ``channel``, by version run."""
        params = (app, channel, ev.to_ms(since), ev.to_ms(until))
        conn = self._reader()
        with self._errors("reading adoption from"):
            rows = conn.execute(_ADOPTION, params).fetchall()
        return [HourlyDevices(ev.hour_of(int(h)), str(v), int(n)) for h, v, n in rows]

    def newest(self, app: str, *, until: datetime) -> dict[tuple[str, str], datetime]:
        """When the newest event before ``until`` happened, per (channel, release)."""
        conn = self._reader()
        with self._errors("reading the newest events from"):
            rows = conn.execute(_NEWEST, (app, ev.to_ms(until))).fetchall()
        return {(str(c), str(r)): ev.from_ms(int(at)) for c, r, at in rows}

    def prune(self, before: datetime) -> int:
        """Delete events received before ``before``, in chunks so writes interleave."""
        cutoff = ev.to_ms(before)
        total = 0
        while True:
            with self._write("pruning") as conn:
                gone = conn.execute(
                    "DELETE FROM events WHERE event_id IN (SELECT event_id FROM events"
                    " WHERE received_ms < ? LIMIT ?)",
                    (cutoff, PRUNE_CHUNK),
                ).rowcount
            total += gone
            if gone < PRUNE_CHUNK:
                return total

    def close(self) -> None:
        """Close the writer and every reader connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            readers, self._readers = self._readers, []
            self._writer.close()
        for conn in readers:
            conn.close()
