"""The I/O around :func:`otaseal.serve.answer.answer_update`: trust pins, store, stats db, clock.

Manifests enter the cache only through ``trust.verify_channel_manifest`` (a failure is logged
with its reason and the channel answers ``misconfigured_channel``); expiry is re-checked on every
request by the decision. Stats never sit on the update check's path: events go into a bounded
queue that one background thread writes in batches; a full queue answers 429.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from otaseal import client, trust
from otaseal.errors import Error, NotFoundError, StoreError
from otaseal.formats.capgo_files import file_key, list_key, parse_list
from otaseal.model import APP_ID_RE, SHA256_RE
from otaseal.serve.answer import AppView, Offer, Rejected, answer_update, resolve_channel
from otaseal.serve.db import DeviceFacts, StatsError, StatsEvent
from otaseal.serve.wire import ManifestEntry, RequestError, UpdateReply
from otaseal.store import capgo_key, pointer_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from otaseal.formats.capgo_files import FileList
    from otaseal.model import CapgoFiles, ChannelManifest, Root
    from otaseal.serve.db import StatsDb
    from otaseal.serve.wire import ChannelRequest, InfoObject, Reply, StatsIn, UpdateRequest
    from otaseal.store import Storage

log = logging.getLogger("otaseal.serve")

#: How long a verified manifest is served before the store is read again.
DEFAULT_CACHE_TTL = 5.0
#: Events waiting for the stats writer; beyond this the server answers 429.
DEFAULT_QUEUE_SIZE = 50_000
BATCH_SIZE = 1000
#: Seconds a device is told to wait when the stats writer is behind.
RETRY_AFTER = 30
#: Lifetime of a presigned S3 download URL.
PRESIGN_SECONDS = 3600
#: Seconds before a file list that could not be read or verified is tried again.
LIST_RETRY = 60.0
#: Manifests (per list and server address) kept ready to send.
MANIFEST_CACHE = 64


class OverloadedError(RequestError):
    """The stats queue is full: 429 with ``Retry-After``."""

    def __init__(self) -> None:
        super().__init__("too_many_requests")
        self.retry_after = RETRY_AFTER


@dataclass(frozen=True, slots=True)
class AppTrust:
    """One app served: its pinned root.json, default channel and self-assignable channels."""

    app: str
    root: bytes
    default_channel: str = ""
    self_assignable: frozenset[str] = frozenset()


class BundleUrls(Protocol):
    """Where a device downloads a Capgo artifact and, in manifest mode, each file body."""

    def url(self, app: str, sha256: str, *, own_base: str) -> str:
        """Absolute URL of ``<app>/bundles/<sha256>.capgo.zip``."""
        ...

    def file_url(self, app: str, sha256: str, *, own_base: str) -> str:
        """Absolute URL of the file body ``<app>/capgo-files/<sha256>`` (SPEC §17.1)."""
        ...


@dataclass(frozen=True, slots=True)
class PublicUrls:
    """``--public-url``: a CDN or bucket website in front of the store."""

    base: str

    def url(self, app: str, sha256: str, *, own_base: str) -> str:  # noqa: ARG002 - Protocol
        """``BASE/<app>/bundles/<sha>.capgo.zip``."""
        return f"{self.base.rstrip('/')}/{capgo_key(app, sha256)}"

    def file_url(self, app: str, sha256: str, *, own_base: str) -> str:  # noqa: ARG002 - Protocol
        """``BASE/<app>/capgo-files/<sha>``."""
        return f"{self.base.rstrip('/')}/{file_key(app, sha256)}"


@dataclass(frozen=True, slots=True)
class ServedUrls:
    """A folder store without a public URL: serve hands the artifact out itself."""

    def url(self, app: str, sha256: str, *, own_base: str) -> str:
        """``<this server>/bundles/<app>/<sha>.capgo.zip``."""
        return f"{own_base.rstrip('/')}/bundles/{app}/{sha256}.capgo.zip"

    def file_url(self, app: str, sha256: str, *, own_base: str) -> str:
        """``<this server>/files/<app>/<sha>``."""
        return f"{own_base.rstrip('/')}/files/{app}/{sha256}"


class Presigner(Protocol):
    """A store that can sign GET URLs (the S3 store)."""

    def presign(self, key: str, expires: int) -> str:
        """A GET URL valid for ``expires`` seconds."""
        ...


@dataclass(frozen=True, slots=True)
class PresignedUrls:
    """An S3 store without a public URL: short-lived presigned GET URLs."""

    store: Presigner
    seconds: int = PRESIGN_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _signed: dict[str, tuple[str, float]] = field(default_factory=dict, compare=False)

    def url(self, app: str, sha256: str, *, own_base: str) -> str:  # noqa: ARG002 - Protocol
        """A presigned URL of the artifact's key."""
        return self.store.presign(capgo_key(app, sha256), self.seconds)

    def file_url(self, app: str, sha256: str, *, own_base: str) -> str:  # noqa: ARG002 - Protocol
        """A presigned URL of the file body, reused for half its life.

        A manifest names every file of the bundle; signing each one on every check would cost
        more than the rest of the answer.
        """
        key = file_key(app, sha256)
        now = self.monotonic()
        cached = self._signed.get(key)
        if cached is not None and now - cached[1] < self.seconds / 2:
            return cached[0]
        if len(self._signed) > 100_000:  # noqa: PLR2004 - a bound, not a tuning knob
            self._signed.clear()
        url = self.store.presign(key, self.seconds)
        self._signed[key] = (url, now)
        return url


def wall_clock() -> datetime:
    """The server's reference time for one request."""
    return datetime.now(UTC)


@dataclass
class _Cached:
    view: AppView
    root: Root
    root_bytes: bytes
    loaded: float


@dataclass
class _Counters:
    dropped_batches: int = 0
    written: int = 0


@dataclass
class Service:
    """Everything ``app.py`` calls; thread-safe, no per-request writes."""

    store: Storage
    apps: dict[str, AppTrust]
    stats: StatsDb
    urls: BundleUrls
    clock: Callable[[], datetime] = wall_clock
    monotonic: Callable[[], float] = time.monotonic
    cache_ttl: float = DEFAULT_CACHE_TTL
    queue_size: int = DEFAULT_QUEUE_SIZE
    retention_days: int = 90
    retry_pause: float = 0.5  # seconds, times the attempt number, between stats write attempts
    background_refresh: bool = False  # re-read a stale view off the request path
    manifest_mode: bool = True  # answer plugins that take it with the per-file manifest
    _cache: dict[str, _Cached] = field(default_factory=dict, init=False)
    _seen: dict[tuple[str, str], int] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _refreshing: set[str] = field(default_factory=set, init=False)
    _refreshing_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _queue: queue.Queue[StatsEvent] = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _writer: threading.Thread | None = field(default=None, init=False)
    counters: _Counters = field(default_factory=_Counters, init=False)
    _lists: dict[str, FileList | float] = field(default_factory=dict, init=False)
    _manifests: dict[tuple[str, str], tuple[ManifestEntry, ...]] = field(
        default_factory=dict, init=False
    )

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=self.queue_size)

    # --- manifests -----------------------------------------------------------------------------
    def app_trust(self, app: str) -> AppTrust:
        """The served app, or ``unknown_app``."""
        found = self.apps.get(app)
        if found is None:
            raise RequestError("unknown_app")
        return found

    def view(self, app: str) -> AppView:
        """The app's verified manifests, read from the store at most once per TTL.

        With ``background_refresh`` (what ``otaseal serve`` runs), a stale view keeps being
        served while one thread re-reads the store, so no request waits on S3 after the first.
        A TTL of 0 means "read the store on every request", in the request. Expiry is still
        checked on every request by the decision.
        """
        pinned = self.app_trust(app)
        cached = self._cache.get(app)
        if cached is not None and self.monotonic() - cached.loaded < self.cache_ttl:
            return cached.view
        if cached is not None and self.background_refresh and self.cache_ttl > 0:
            self._refresh_later(pinned)
            return cached.view
        return self._refresh(pinned)

    def _refresh(self, pinned: AppTrust) -> AppView:
        with self._lock:
            cached = self._cache.get(pinned.app)
            if cached is not None and self.monotonic() - cached.loaded < self.cache_ttl:
                return cached.view  # another thread refreshed it while this one waited
            try:
                fresh = self._load(pinned, cached)
            except StoreError as exc:
                if cached is None:
                    raise
                # Keep serving what was verified (expiry is still checked per request).
                log.warning(
                    "store unavailable for %s, serving the cached view: %s", pinned.app, exc
                )
                cached.loaded = self.monotonic()
                return cached.view
            self._cache[pinned.app] = fresh
            return fresh.view

    def _refresh_later(self, pinned: AppTrust) -> None:
        """Start one refresh thread per app unless one is already running."""
        with self._refreshing_lock:
            if pinned.app in self._refreshing:
                return
            self._refreshing.add(pinned.app)

        def run() -> None:
            try:
                self._refresh(pinned)
            except Exception:
                log.exception("refreshing the manifests of %s failed", pinned.app)
            finally:
                with self._refreshing_lock:
                    self._refreshing.discard(pinned.app)

        threading.Thread(target=run, name=f"otaseal-refresh-{pinned.app}", daemon=True).start()

    def _load(self, pinned: AppTrust, cached: _Cached | None) -> _Cached:
        now = self.clock()
        trusted = trust.verify_trusted_root(pinned.root, app=pinned.app)
        start, start_bytes = (cached.root, cached.root_bytes) if cached else (trusted, pinned.root)
        try:
            root, root_bytes = client.update_root(self.store, start, start_bytes, now)
        except StoreError:
            raise
        except Error as exc:
            log.warning("root of %s rejected: %s", pinned.app, exc.diagnostics())
            reason = exc.diagnostics()
            view = AppView(
                pinned.app,
                {c: Rejected(reason) for c in start.channels()},
                pinned.default_channel,
            )
            return _Cached(view, start, start_bytes, self.monotonic())
        for role in trust.rotated_roles(start, root):
            self._seen.pop((pinned.app, role.removeprefix("channel:")), None)
        manifests: dict[str, ChannelManifest | Rejected | None] = {
            channel: self._channel(root, channel, now) for channel in root.channels()
        }
        if self.manifest_mode:
            for manifest in manifests.values():
                if manifest is not None and not isinstance(manifest, Rejected):
                    self._warm_lists(manifest)
        view = AppView(pinned.app, manifests, pinned.default_channel)
        return _Cached(view, root, root_bytes, self.monotonic())

    def _channel(
        self, root: Root, channel: str, now: datetime
    ) -> ChannelManifest | Rejected | None:
        key = pointer_key(root.app, channel)
        try:
            data = client.fetch_metadata(self.store, key, f"{channel} manifest")
        except NotFoundError:
            return None
        except StoreError:
            raise
        except Error as exc:  # oversize
            log.warning("%s/%s manifest rejected: %s", root.app, channel, exc.diagnostics())
            return Rejected(exc.diagnostics())
        seen = self._seen.get((root.app, channel))
        try:
            manifest = trust.verify_channel_manifest(
                root, data, channel=channel, now=now, trusted_version=seen
            )
        except Error as exc:
            log.warning("%s/%s manifest rejected: %s", root.app, channel, exc.diagnostics())
            return Rejected(exc.diagnostics())
        self._seen[(root.app, channel)] = manifest.version
        return manifest

    # --- manifest mode's file lists (SPEC §17.1) --------------------------------------------------
    def _warm_lists(self, manifest: ChannelManifest) -> None:
        """Read the lists of a verified manifest's releases now, off the request path."""
        for release in manifest.releases:
            if release.capgo is not None and release.capgo.files is not None:
                self.file_list(manifest.app, release.capgo.files)

    def file_list(self, app: str, files: CapgoFiles) -> FileList | None:
        """The release's list object, once it matches the signed pointer and its bodies are stored.

        Bodies are checked with one listing of ``<app>/capgo-files/``. Lists are immutable and
        named by digest, so a verified one is kept for good. Anything else is logged and gives
        None (the caller answers with the zip alone); it is tried again after
        :data:`LIST_RETRY` seconds.
        """
        cached = self._lists.get(files.sha256)
        if cached is not None and not isinstance(cached, float):
            return cached
        if cached is not None and self.monotonic() - cached < LIST_RETRY:
            return None
        key = list_key(app, files.sha256)
        try:
            data = self.store.fetch(key, max_bytes=files.length)
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != files.length or digest != files.sha256:
                log.warning(
                    "%s: not the signed file list (%d bytes, SHA-256 %s; signed: %d bytes, %s); "
                    "answering with the zip only",
                    key,
                    len(data),
                    digest,
                    files.length,
                    files.sha256,
                )
                self._lists[files.sha256] = self.monotonic()
                return None
            found = parse_list(data, count=files.count)
            stored = set(self.store.list(file_key(app, "")))
        except Error as exc:
            log.warning("%s: %s; answering with the zip only", key, exc.diagnostics())
            self._lists[files.sha256] = self.monotonic()
            return None
        missing = [f.path for f in found.files if file_key(app, f.body_sha256) not in stored]
        if missing:
            # A device in manifest mode fails the whole update on one missing body (no zip).
            log.warning(
                "%s: %d file bodies are not in the store (first: %s); answering with the zip only",
                key,
                len(missing),
                missing[0],
            )
            self._lists[files.sha256] = self.monotonic()
            return None
        self._lists[files.sha256] = found
        return found

    def _manifest(self, app: str, files: CapgoFiles, own_base: str) -> tuple[ManifestEntry, ...]:
        """The reply's ``manifest``: every listed file with its absolute URL; () without a list."""
        cache_key = (files.sha256, own_base)
        ready = self._manifests.get(cache_key)
        if ready is not None:
            return ready
        listed = self.file_list(app, files)
        if listed is None:
            return ()
        url = self.urls.file_url
        entries = tuple(
            ManifestEntry(f.file_name, f.file_hash, url(app, f.body_sha256, own_base=own_base))
            for f in listed.files
        )
        if not isinstance(self.urls, PresignedUrls):  # presigned URLs age
            if len(self._manifests) >= MANIFEST_CACHE:
                self._manifests.clear()
            self._manifests[cache_key] = entries
        return entries

    # --- the update check -----------------------------------------------------------------------
    def facts(self, app: str, device_id: str) -> DeviceFacts:
        """The device's channel override and failed versions (one indexed read)."""
        return self.stats.device(app, device_id.lower())

    def update_check(self, request: UpdateRequest, *, own_base: str) -> Reply:
        """Gather the inputs, decide once, add the download URL, queue the ``check`` event."""
        view = self.view(request.app_id)
        facts = self.facts(request.app_id, request.device_id)
        now = self.clock()
        decision = answer_update(view, request, facts, now=now)
        self.enqueue(
            StatsEvent(
                app=request.app_id,
                device_id=request.device_id.lower(),
                action="check",
                version_name=request.version_name,
                platform=request.platform,
                channel=resolve_channel(view, request, facts),
                version_build=request.version_build,
                received_ms=int(now.timestamp() * 1000),
            )
        )
        if isinstance(decision, Offer):
            capgo = decision.release.capgo
            assert capgo is not None  # noqa: S101 - answer_update offers only releases with one
            manifest: tuple[ManifestEntry, ...] = ()
            if decision.manifest and self.manifest_mode and capgo.files is not None:
                manifest = self._manifest(request.app_id, capgo.files, own_base)
            return UpdateReply(
                version=decision.release.label,
                url=self.urls.url(request.app_id, capgo.sha256, own_base=own_base),
                checksum=capgo.checksum,
                session_key=capgo.session_key,
                manifest=manifest,
            )
        return decision

    # --- stats ---------------------------------------------------------------------------------
    def enqueue(self, event: StatsEvent) -> None:
        """Hand an event to the writer thread; a full queue is overload (429)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            raise OverloadedError from None

    def record(self, events: Sequence[StatsIn]) -> None:
        """Queue a stats batch (already checked by ``wire.parse_stats``)."""
        if not events:
            return
        app = events[0].app_id
        pinned = self.app_trust(app)
        received = int(self.clock().timestamp() * 1000)
        if self._queue.qsize() + len(events) > self.queue_size:
            raise OverloadedError
        for event in events:
            self.enqueue(
                StatsEvent(
                    app=app,
                    device_id=event.device_id.lower(),
                    action=event.action,
                    version_name=event.version_name,
                    old_version_name=event.old_version_name,
                    platform=event.platform,
                    # The plugin sends a self-assigned channel as defaultChannel; "" means the
                    # app's default (no database read on the stats path).
                    channel=event.default_channel or pinned.default_channel,
                    version_build=event.version_build,
                    timestamp_ms=event.timestamp,
                    received_ms=received,
                )
            )

    def start(self) -> None:
        """Start the stats writer thread."""
        if self._writer is None:
            self._stop.clear()
            self._writer = threading.Thread(
                target=self._write_loop, name="otaseal-stats-writer", daemon=True
            )
            self._writer.start()

    def stop(self) -> None:
        """Flush what is queued, stop the writer, close the database."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
            self._writer = None
        self.flush()
        self.stats.close()

    def flush(self) -> int:
        """Write what is queued, wait for the writer's batch; return how many this call wrote."""
        taken = 0
        while True:
            batch = self._take(block=False)
            if not batch:
                self._queue.join()
                return taken
            taken += len(batch)
            self._write(batch)

    def _take(self, *, block: bool) -> list[StatsEvent]:
        batch: list[StatsEvent] = []
        try:
            if block:
                batch.append(self._queue.get(timeout=0.2))
            while len(batch) < BATCH_SIZE:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _write(self, batch: list[StatsEvent]) -> None:
        try:
            for attempt in range(3):
                try:
                    self.counters.written += self.stats.record(batch)
                except StatsError as exc:
                    log.warning(
                        "stats write failed (attempt %d): %s", attempt + 1, exc.diagnostics()
                    )
                    time.sleep(self.retry_pause * (attempt + 1))
                else:
                    return
            self.counters.dropped_batches += 1
            log.error("dropped a batch of %d stats events after 3 attempts", len(batch))
        finally:
            for _ in batch:
                self._queue.task_done()

    def _write_loop(self) -> None:
        next_prune = 0.0
        while not self._stop.is_set():
            batch = self._take(block=True)
            if batch:
                self._write(batch)
            if self.monotonic() >= next_prune:
                next_prune = self.monotonic() + 3600
                self._prune()

    def _prune(self) -> None:
        try:
            removed = self.stats.prune(self.clock() - timedelta(days=self.retention_days))
        except StatsError as exc:
            log.warning("stats prune failed: %s", exc.diagnostics())
        else:
            if removed:
                log.info("pruned %d stats events older than %d days", removed, self.retention_days)

    # --- channels ------------------------------------------------------------------------------
    def _channel_names(self, app: str) -> list[str]:
        return sorted(self.view(app).manifests)

    def set_channel(self, request: ChannelRequest) -> str:
        """``POST /channel_self``: only a self-assignable channel the app has."""
        pinned = self.app_trust(request.app_id)
        channel = request.channel
        if not channel:
            raise RequestError("invalid_request", "Missing field: channel")
        if channel not in self._channel_names(request.app_id):
            raise RequestError("channel_not_self_assignable", f"The app has no channel {channel!r}")
        if channel not in pinned.self_assignable:
            raise RequestError("channel_not_self_assignable")
        self.stats.set_channel(request.app_id, request.device_id.lower(), channel)
        return channel

    def get_channel(self, request: InfoObject) -> tuple[str, str, bool]:
        """``PUT /channel_self``: (channel, ``override`` | ``default``, may the device set one)."""
        pinned = self.app_trust(request.app_id)
        view = self.view(request.app_id)
        facts = self.facts(request.app_id, request.device_id)
        channel = resolve_channel(view, request, facts)
        status = "override" if facts.channel and facts.channel == channel else "default"
        return channel, status, bool(pinned.self_assignable)

    def list_channels(self, app: str) -> list[tuple[int, str, bool]]:
        """``GET /channel_self``: the self-assignable channels the app has, with stable ids."""
        pinned = self.app_trust(app)
        names = self._channel_names(app)
        return [
            (index + 1, name, name == pinned.default_channel)
            for index, name in enumerate(names)
            if name in pinned.self_assignable
        ]

    # --- bundles served by this process (folder store, no public URL) ---------------------------
    def bundle_path(self, app: str, name: str) -> Path:
        """The file behind ``/bundles/<app>/<sha>.capgo.zip``, or ``not_found``."""
        sha = name.removesuffix(".capgo.zip")
        if not name.endswith(".capgo.zip"):
            raise RequestError("not_found")
        return self._served(app, sha, capgo_key, "No such bundle")

    def file_path(self, app: str, name: str) -> Path:
        """The body behind ``/files/<app>/<sha>`` (manifest mode), or ``not_found``."""
        return self._served(app, name, file_key, "No such file")

    def _served(self, app: str, sha: str, key: Callable[[str, str], str], missing: str) -> Path:
        """A stored object this process serves itself (folder store, no public URL)."""
        root = getattr(self.store, "root", None)
        if (
            root is None
            or not isinstance(self.urls, ServedUrls)
            or app not in self.apps
            or not APP_ID_RE.fullmatch(app)
            or not SHA256_RE.fullmatch(sha)
        ):
            raise RequestError("not_found")
        path: Path = root.joinpath(*key(app, sha).split("/"))
        if not path.is_file():
            raise RequestError("not_found", missing)
        return path

    def healthy(self) -> dict[str, object]:
        """``GET /healthz``: the apps served and the stats queue depth."""
        return {
            "status": "ok",
            "apps": sorted(self.apps),
            "stats_queue": self._queue.qsize(),
            "dropped_batches": self.counters.dropped_batches,
        }
