"""The I/O around the decision: root walks, the verified-manifest cache, the stats writer.

The store is the attack tests' repository simulator; the stats database is a small in-memory
fake here (the real backends have their own contract suite), so failures can be injected.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from otaseal.errors import StoreError
from otaseal.serve.answer import Rejected
from otaseal.serve.db import DeviceFacts, StatsError, StatsEvent
from otaseal.serve.service import (
    AppTrust,
    OverloadedError,
    PresignedUrls,
    PublicUrls,
    ServedUrls,
    Service,
)
from otaseal.serve.wire import ChannelRequest, RequestError
from otaseal.trust import METADATA_MAX_BYTES
from tests.attacks.conftest import NOW, Keys, Repository

from .conftest import APP, DEVICE, request

BETA = "beta"


@dataclass
class FakeStats:
    """In-memory StatsDb; ``fail`` makes the next writes raise."""

    events: list[StatsEvent] = field(default_factory=list)
    channels: dict[tuple[str, str], str] = field(default_factory=dict)
    fail: int = 0
    pruned: list[object] = field(default_factory=list)
    closed: bool = False

    def migrate(self) -> None:
        pass

    def record(self, events):
        if self.fail:
            self.fail -= 1
            raise StatsError("database is locked")
        self.events.extend(events)
        return len(events)

    def device(self, app, device_id):
        return DeviceFacts(channel=self.channels.get((app, device_id)))

    def set_channel(self, app, device_id, channel):
        self.channels[(app, device_id)] = channel

    def counts(self, **_):
        return []

    def prune(self, before):
        if self.fail:
            raise StatsError("database is locked")
        self.pruned.append(before)
        return 3

    def close(self) -> None:
        self.closed = True


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(tmp_path) -> Repository:
    repo = Repository(tmp_path / "repo")
    repo.publish(BETA, label="1.0.0")
    return repo


def make(repo: Repository, **kwargs) -> Service:
    kwargs.setdefault("stats", FakeStats())
    kwargs.setdefault("urls", ServedUrls())
    apps = {APP: AppTrust(APP, repo.root_bytes, "production", frozenset({BETA}))}
    return Service(store=repo.store, apps=apps, clock=lambda: NOW, retry_pause=0, **kwargs)


def test_verified_manifests_are_reused_within_the_ttl(repo):
    tick = Clock()
    service = make(repo, monotonic=tick, cache_ttl=5)
    first = service.view(APP).manifests[BETA]
    repo.publish(BETA, label="1.0.1")
    tick.now = 4.9
    assert service.view(APP).manifests[BETA] is first
    tick.now = 5.0
    assert service.view(APP).manifests[BETA].releases[0].label == "1.0.1"


def test_a_stale_view_is_served_while_one_thread_refreshes_it(repo, monkeypatch):
    tick = Clock()
    service = make(repo, monotonic=tick, cache_ttl=5, background_refresh=True)
    first = service.view(APP).manifests[BETA]
    repo.publish(BETA, label="1.0.1")
    started = threading.Event()
    release = threading.Event()
    fetch = repo.store.fetch

    def slow_fetch(*args, **kwargs):
        started.set()
        release.wait(10)
        return fetch(*args, **kwargs)

    monkeypatch.setattr(repo.store, "fetch", slow_fetch)
    tick.now = 6
    assert service.view(APP).manifests[BETA] is first  # no request waits on the store
    assert started.wait(10)
    assert service.view(APP).manifests[BETA] is first  # one refresh at a time
    release.set()
    for _ in range(200):
        if service.view(APP).manifests[BETA].releases[0].label == "1.0.1":
            break
        time.sleep(0.01)
    assert service.view(APP).manifests[BETA].releases[0].label == "1.0.1"


def test_a_failed_background_refresh_is_logged_and_the_view_kept(repo, monkeypatch, caplog):
    tick = Clock()
    service = make(repo, monotonic=tick, cache_ttl=1, background_refresh=True)
    first = service.view(APP)
    monkeypatch.setattr(service, "_load", lambda *a: (_ for _ in ()).throw(RuntimeError("bug")))
    tick.now = 10
    with caplog.at_level(logging.ERROR, logger="otaseal.serve"):
        assert service.view(APP) is first
        for _ in range(200):
            if "refreshing the manifests" in caplog.text:
                break
            time.sleep(0.01)
    assert "refreshing the manifests of com.example.app failed" in caplog.text


def test_store_outage_keeps_serving_the_verified_view(repo, monkeypatch, caplog):
    tick = Clock()
    service = make(repo, monotonic=tick, cache_ttl=1)
    first = service.view(APP)
    monkeypatch.setattr(
        repo.store, "fetch", lambda *a, **k: (_ for _ in ()).throw(StoreError("down"))
    )
    tick.now = 10
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        assert service.view(APP) is first
    assert "serving the cached view" in caplog.text


def test_root_rotation_is_walked_from_the_store(repo):
    service = make(repo, cache_ttl=0)
    assert service.view(APP).manifests[BETA] is not None
    repo.rotate_root(channel_keys={BETA: [Keys.new_beta], "production": [Keys.production]})
    repo.publish(BETA, label="1.0.1")  # signed by the new beta key
    manifest = service.view(APP).manifests[BETA]
    assert not isinstance(manifest, Rejected)
    assert manifest.releases[0].label == "1.0.1"


def test_a_forged_root_update_rejects_every_channel(repo, caplog):
    service = make(repo, cache_ttl=0)
    forged = repo.make_root(version=2, root_keys=[Keys.attacker])
    repo.put_root(2, repo.sign_root(forged, [Keys.attacker]))
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        manifests = service.view(APP).manifests
    assert all(isinstance(m, Rejected) for m in manifests.values())
    assert "root of com.example.app rejected" in caplog.text


def test_a_rolled_back_manifest_is_rejected(repo):
    service = make(repo, cache_ttl=0)
    old = repo.served[BETA]
    repo.publish(BETA, label="1.0.1")
    assert service.view(APP).manifests[BETA].version == 2
    repo.serve_manifest(old)  # the store serves version 1 again
    assert isinstance(service.view(APP).manifests[BETA], Rejected)


def test_an_oversize_manifest_is_rejected(repo):
    service = make(repo, cache_ttl=0)
    repo.serve(BETA, b" " * (METADATA_MAX_BYTES + 1))
    assert isinstance(service.view(APP).manifests[BETA], Rejected)


def test_unknown_app(repo):
    with pytest.raises(RequestError) as caught:
        make(repo).view("com.example.other")
    assert caught.value.code == "unknown_app"


# --- URLs ---------------------------------------------------------------------------------------
def test_download_url_forms():
    sha = "a" * 64
    assert PublicUrls("https://cdn/x/").url(APP, sha, own_base="http://me") == (
        f"https://cdn/x/{APP}/bundles/{sha}.capgo.zip"
    )
    assert ServedUrls().url(APP, sha, own_base="http://me/") == (
        f"http://me/bundles/{APP}/{sha}.capgo.zip"
    )

    class Signer:
        def presign(self, key: str, expires: int) -> str:
            return f"https://s3/{key}?X-Amz-Expires={expires}"

    assert PresignedUrls(Signer(), 60).url(APP, sha, own_base="") == (
        f"https://s3/{APP}/bundles/{sha}.capgo.zip?X-Amz-Expires=60"
    )


def test_bundles_are_served_only_for_a_folder_store_without_public_url(repo):
    service = make(repo, urls=PublicUrls("https://cdn"))
    with pytest.raises(RequestError):
        service.bundle_path(APP, "a" * 64 + ".capgo.zip")


# --- the stats writer ---------------------------------------------------------------------------
def test_check_events_go_through_the_queue_not_the_request(repo):
    stats = FakeStats()
    service = make(repo, stats=stats)
    service.update_check(request(default_channel=BETA, key_id=""), own_base="http://me")
    assert stats.events == []  # nothing written on the request path
    assert service.flush() == 1
    (event,) = stats.events
    assert (event.action, event.channel, event.device_id) == ("check", BETA, DEVICE)


def test_a_failed_write_is_retried_then_dropped(repo, caplog):
    stats = FakeStats(fail=2)
    service = make(repo, stats=stats)
    service.enqueue(StatsEvent(APP, DEVICE, "set", "1.0.0"))
    service.flush()
    assert len(stats.events) == 1
    stats.fail = 3
    service.enqueue(StatsEvent(APP, DEVICE, "set", "1.0.1"))
    with caplog.at_level(logging.ERROR, logger="otaseal.serve"):
        service.flush()
    assert service.counters.dropped_batches == 1
    assert "dropped a batch" in caplog.text


def test_a_full_queue_is_overload(repo):
    service = make(repo, queue_size=1)
    service.enqueue(StatsEvent(APP, DEVICE, "set", "1.0.0"))
    with pytest.raises(OverloadedError) as caught:
        service.enqueue(StatsEvent(APP, DEVICE, "set", "1.0.0"))
    assert caught.value.retry_after > 0


def test_writer_thread_writes_prunes_and_stops_with_a_flush(repo):
    stats = FakeStats()
    service = make(repo, stats=stats, retention_days=7)
    service.start()
    service.start()  # idempotent
    service.enqueue(StatsEvent(APP, DEVICE, "set", "1.0.0"))
    service.stop()
    assert [e.action for e in stats.events] == ["set"]
    assert stats.pruned == [NOW - timedelta(days=7)]
    assert stats.closed


def test_prune_failure_is_logged(repo, caplog):
    stats = FakeStats(fail=1)
    service = make(repo, stats=stats)
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        service._prune()
    assert "prune failed" in caplog.text


# --- channels -----------------------------------------------------------------------------------
def test_set_channel_needs_a_channel(repo):
    with pytest.raises(RequestError) as caught:
        make(repo).set_channel(ChannelRequest(app_id=APP, device_id=DEVICE))
    assert caught.value.code == "invalid_request"


def test_health_reports_apps_and_queue(repo):
    doc = make(repo).healthy()
    assert (doc["status"], doc["apps"], doc["stats_queue"]) == ("ok", [APP], 0)
