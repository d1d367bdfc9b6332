"""``otaseal serve`` over HTTP: a real uvicorn on 127.0.0.1, the real SQLite stats database, the
attack tests' repository simulator as the store. Every reply is checked against the contract in
``tests/contracts/``; every item of the issue's "Bad input" list is a named test after which the
server still answers another device.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from serve_support import (
    DEVICE,
    OTHER_DEVICE,
    Client,
    check_reply,
    plugin_info,
    publish_capgo,
    serve_in_thread,
    stat,
)
from tests.attacks.conftest import NOW, Keys, Repository

from otaseal.serve.app import create_app
from otaseal.serve.db import StatsError, open_stats
from otaseal.serve.service import AppTrust, PublicUrls, ServedUrls, Service
from otaseal.serve.wire import MAX_BODY

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

APP = "com.example.app"


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = Repository(tmp_path / "repo")
    publish_capgo(repo, "production", "1.0.0")
    publish_capgo(repo, "beta", "1.0.0")
    publish_capgo(repo, "beta", "1.0.1")
    return repo


@pytest.fixture
def stats(tmp_path: Path):
    db = open_stats(f"sqlite:///{tmp_path / 'stats.sqlite'}")
    db.migrate()
    return db


def make_service(repo: Repository, stats, **kwargs) -> Service:
    apps = {APP: AppTrust(APP, repo.root_bytes, "production", frozenset({"beta"}))}
    kwargs.setdefault("urls", ServedUrls())
    kwargs.setdefault("cache_ttl", 0.0)
    return Service(store=repo.store, apps=apps, stats=stats, clock=lambda: NOW, **kwargs)


@pytest.fixture
def service(repo: Repository, stats) -> Service:
    return make_service(repo, stats)


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with serve_in_thread(create_app(service)) as base:
        yield Client(base)


def still_serves(client: Client) -> None:
    """Another device still gets its update after the bad request."""
    reply = client.check(device_id=OTHER_DEVICE, defaultChannel="beta")
    assert reply.status == 200
    assert reply.doc["version"] == "1.0.1"


# --- the update check -----------------------------------------------------------------------------
def test_update_check_offers_the_capgo_artifact_with_a_url_this_server_serves(client, repo):
    reply = client.check(defaultChannel="beta")
    assert reply.status == 200
    release = repo.served["beta"].releases[0]
    assert reply.doc == {
        "version": "1.0.1",
        "url": f"{client.base}/bundles/{APP}/{release.capgo.sha256}.capgo.zip",
        "checksum": release.capgo.checksum,
        "session_key": release.capgo.session_key,
    }
    got = client.session.get(reply.doc["url"], timeout=10)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in got.headers
    assert len(got.content) == release.capgo.length


def test_bundle_download_resumes_with_range(client, repo):
    url = client.check(defaultChannel="beta").doc["url"]
    full = client.session.get(url, timeout=10).content
    part = client.session.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-{len(full) - 1}/{len(full)}"
    assert part.content == full[100:]
    assert "content-encoding" not in part.headers


@pytest.mark.parametrize(
    "path",
    [
        f"/bundles/{APP}/{'0' * 64}.capgo.zip",
        f"/bundles/{APP}/../../etc/passwd",
        f"/bundles/{APP}/{'0' * 64}.cub",
        f"/bundles/com.example.other/{'0' * 64}.capgo.zip",
    ],
)
def test_bundle_route_serves_only_capgo_artifacts_of_served_apps(client, path):
    reply = client.call("GET", path, form="error")
    assert reply.status == 404
    assert reply.doc["error"] == "not_found"


def test_public_url_builds_app_bundles_sha_capgo_zip(repo, stats):
    service = make_service(repo, stats, urls=PublicUrls("https://cdn.example.com/updates/"))
    with serve_in_thread(create_app(service)) as base:
        reply = Client(base).check(defaultChannel="beta")
    sha = repo.served["beta"].releases[0].capgo.sha256
    assert reply.doc["url"] == f"https://cdn.example.com/updates/{APP}/bundles/{sha}.capgo.zip"


def test_nothing_new_for_a_device_on_the_current_release(client):
    reply = client.check(version_name="1.0.1", defaultChannel="beta")
    assert reply.doc == {
        "error": "no_new_version_available",
        "message": "No new version available",
        "kind": "up_to_date",
    }


def test_capgo_probe_shape_is_answered(client):
    probe = {
        "app_id": APP,
        "device_id": "00000000-0000-0000-0000-000000000000",
        "version_name": "builtin",
        "version_build": "1.2.0",
        "is_emulator": False,
        "is_prod": False,
        "platform": "android",
        "plugin_version": "8.51.23",
        "defaultChannel": "beta",
    }
    assert client.call("POST", "/updates", probe).doc["version"] == "1.0.1"


def test_a_new_publish_is_served_within_the_cache_ttl(client, repo):
    assert client.check(defaultChannel="beta").doc["version"] == "1.0.1"
    publish_capgo(repo, "beta", "1.0.2")
    assert client.check(defaultChannel="beta").doc["version"] == "1.0.2"


def test_every_update_check_is_recorded_as_a_check_event(client, service, stats):
    client.check(defaultChannel="beta")
    client.check(device_id=OTHER_DEVICE)
    service.flush()
    counts = {
        (c.channel, c.version): c.checks
        for c in stats.counts(since=NOW.replace(year=2000), until=NOW.replace(year=2100))
    }
    assert counts[("beta", "1.2.0")] == 1
    assert counts[("production", "1.2.0")] == 1


# --- stats ----------------------------------------------------------------------------------------
def test_stats_accept_a_queue_array_and_a_worker_object(client, service, stats):
    batch = [stat("set", "1.0.1", defaultChannel="beta"), stat("app_launch_ready", "1.0.1")]
    assert client.stats(batch).doc == {"status": "ok"}
    assert client.stats(stat("download_zip_start", "1.0.1", timestamp=None)).doc == {"status": "ok"}
    assert client.stats([]).doc == {"status": "ok"}
    # unknown actions are opaque, not refused
    assert client.stats([stat("some_future_action", "1.0.1")]).status == 200
    service.flush()
    (beta,) = [
        c
        for c in stats.counts(since=NOW.replace(year=2000), until=NOW.replace(year=2100))
        if c.channel == "beta"
    ]
    assert beta.installs == 1


def test_a_resent_stats_batch_is_not_counted_twice(client, service, stats):
    batch = [stat("set", "1.0.1", defaultChannel="beta")]
    client.stats(batch)
    client.stats(batch)
    service.flush()
    (beta,) = [
        c
        for c in stats.counts(since=NOW.replace(year=2000), until=NOW.replace(year=2100))
        if c.channel == "beta"
    ]
    assert beta.installs == 1


def test_update_fail_stops_the_version_being_offered_to_that_device(client, service):
    assert client.check(defaultChannel="beta").doc["version"] == "1.0.1"
    client.stats([stat("update_fail", "1.0.1", defaultChannel="beta")])
    service.flush()
    reply = client.check(defaultChannel="beta")
    assert reply.doc["version"] == "1.0.0"  # the older beta release, never 1.0.1 again
    assert client.check(version_name="1.0.0", defaultChannel="beta").doc["kind"] == "up_to_date"
    still_serves(client)  # another device still gets 1.0.1


# --- channel self-assignment ----------------------------------------------------------------------
def test_device_assigns_itself_to_a_self_assignable_channel(client):
    body = plugin_info(channel="beta")
    assert client.call("POST", "/channel_self", body).doc == {"status": "ok", "channel": "beta"}
    assert client.check().doc["version"] == "1.0.1"  # the override beats the app default
    got = client.call("PUT", "/channel_self", plugin_info()).doc
    assert got == {"channel": "beta", "status": "override", "allowSet": True}


def test_get_channel_without_override_is_the_default(client):
    got = client.call("PUT", "/channel_self", plugin_info()).doc
    assert got == {"channel": "production", "status": "default", "allowSet": True}


def test_list_channels_has_only_self_assignable_channels_with_numeric_ids(client):
    params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in plugin_info().items()}
    reply = client.call("GET", "/channel_self", params=params)
    assert reply.doc == [{"id": 1, "name": "beta", "public": False, "allow_self_set": True}]


def test_channel_self_assignment_to_a_channel_that_is_not_self_assignable(client):
    reply = client.call("POST", "/channel_self", plugin_info(channel="production"))
    assert reply.status == 400
    assert reply.doc["error"] == "channel_not_self_assignable"
    still_serves(client)


def test_channel_self_assignment_to_a_channel_the_app_does_not_have(client):
    reply = client.call("POST", "/channel_self", plugin_info(channel="nightly"))
    assert reply.status == 400
    assert reply.doc["error"] == "channel_not_self_assignable"
    assert "nightly" in reply.doc["message"]
    still_serves(client)


# --- Bad input (issue 9): a JSON error the plugin understands, then the server keeps serving ------
@pytest.mark.parametrize("path", ["/updates", "/stats", "/channel_self"])
def test_malformed_json(client, path):
    reply = client.call("POST", path, raw=b'{"app_id": "com.example.app",', form="error")
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (
        400,
        "invalid_request",
        "failed",
    )
    still_serves(client)


def test_wrong_json_types(client):
    reply = client.call("POST", "/updates", plugin_info(version_code=7, is_prod="yes"))
    assert (reply.status, reply.doc["error"]) == (400, "invalid_request")
    reply = client.stats([stat("set", "1.0.1", timestamp="yesterday")])
    assert (reply.status, reply.doc["error"]) == (400, "invalid_request")
    still_serves(client)


def test_missing_fields(client):
    info = plugin_info()
    del info["app_id"]
    reply = client.call("POST", "/updates", info)
    assert (reply.status, reply.doc["error"]) == (400, "invalid_request")
    assert "app_id" in reply.doc["message"]
    reply = client.stats({"app_id": APP, "device_id": DEVICE})
    assert (reply.status, reply.doc["error"]) == (400, "invalid_request")
    still_serves(client)


def test_unknown_app(client):
    reply = client.check(app_id="com.example.unknown")
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (200, "unknown_app", "failed")
    reply = client.stats([stat("set", "1.0.0", app_id="com.example.unknown")])
    assert reply.doc["error"] == "unknown_app"
    still_serves(client)


def test_unknown_channel(client):
    reply = client.check(defaultChannel="nightly")
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (200, "no_channel", "failed")
    assert "url" not in reply.doc
    still_serves(client)


@pytest.mark.parametrize("device_id", ["not-a-uuid", "", "12345"])
def test_device_id_that_is_not_a_uuid(client, device_id):
    reply = client.check(device_id=device_id)
    assert reply.status == 400
    assert reply.doc["error"] in {"invalid_device_id", "invalid_request"}
    reply = client.stats([stat("set", "1.0.1", device_id=device_id)])
    assert reply.status == 400
    still_serves(client)


def test_body_over_64_kib(client):
    big = plugin_info(custom_id="x" * MAX_BODY)
    reply = client.call("POST", "/updates", big)
    assert (reply.status, reply.doc["error"]) == (413, "payload_too_large")
    # without a Content-Length (chunked), the cap still holds while reading
    for path in ("/stats", "/updates"):
        chunks = (b"[" + b" " * 8192 for _ in range(10))
        response = client.session.post(client.base + path, data=chunks, timeout=10)
        assert response.status_code == 413
        check_reply("error", response.json())
    still_serves(client)


def test_stats_batch_that_mixes_apps(client):
    batch = [stat("set", "1.0.1"), stat("set", "1.0.1", app_id="com.example.other")]
    reply = client.stats(batch)
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (400, "mixed_apps", "failed")
    still_serves(client)


def test_channel_self_assignment_to_a_channel_not_self_assignable(client):
    reply = client.call("POST", "/channel_self", plugin_info(channel="production"))
    assert reply.doc["error"] == "channel_not_self_assignable"
    still_serves(client)


def test_store_whose_manifests_fail_verification_gets_nothing_new(client, repo, caplog):
    # The store now serves a beta manifest signed by the attacker, naming a new release.
    forged = publish_capgo(repo, "beta", "6.6.6")
    repo.serve_manifest(repo.served["beta"], signers=[Keys.attacker])
    with caplog.at_level("WARNING", logger="otaseal.serve"):
        reply = client.check(defaultChannel="beta")
    assert reply.doc["kind"] == "failed"
    assert reply.doc["error"] == "misconfigured_channel"
    assert "version" not in reply.doc and "url" not in reply.doc
    assert forged.label not in reply.raw.decode()
    assert any("beta manifest rejected" in r.getMessage() for r in caplog.records)
    assert client.check().doc["version"] == "1.0.0"  # production still verifies and serves


def test_expired_manifest_is_not_served(repo, stats):
    service = make_service(repo, stats)
    service.clock = lambda: NOW.replace(year=NOW.year + 1)
    with serve_in_thread(create_app(service)) as base:
        reply = Client(base).check(defaultChannel="beta")
    assert (reply.doc["error"], reply.doc["kind"]) == ("misconfigured_channel", "failed")


# --- the error table: every row's status and body -------------------------------------------------
def test_unknown_route_is_a_json_404(client):
    reply = client.call("GET", "/nope", form="error")
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (404, "not_found", "failed")


def test_wrong_method_is_a_json_405(client):
    reply = client.call("GET", "/updates", form="error")
    assert (reply.status, reply.doc["error"]) == (405, "method_not_allowed")
    reply = client.call("DELETE", "/channel_self", form="error")
    assert reply.status == 405


def test_unexpected_failure_is_a_json_500_without_traceback(repo, stats, monkeypatch):
    service = make_service(repo, stats)

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr(service, "update_check", explode)
    with serve_in_thread(create_app(service)) as base:
        client = Client(base)
        reply = client.check()
        assert (reply.status, reply.doc["error"]) == (500, "server_error")
        assert "secret internals" not in reply.raw.decode()
        assert client.call("GET", "/healthz").status == 200


def test_stats_database_down_is_a_503_the_device_retries(repo, stats, monkeypatch):
    service = make_service(repo, stats)

    def down(*args, **kwargs):
        raise StatsError("the stats database is gone")

    monkeypatch.setattr(stats, "device", down)
    with serve_in_thread(create_app(service)) as base:
        reply = Client(base).check()
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (
        503,
        "service_unavailable",
        "failed",
    )


def test_store_down_on_first_load_is_a_503(repo, stats, monkeypatch):
    from otaseal.errors import StoreError

    service = make_service(repo, stats)

    def down(*args, **kwargs):
        raise StoreError("disk on fire")

    monkeypatch.setattr(repo.store, "fetch", down)
    with serve_in_thread(create_app(service)) as base:
        reply = Client(base).check()
    assert (reply.status, reply.doc["error"]) == (503, "service_unavailable")


def test_overload_is_a_429_with_a_numeric_retry_after(repo, stats):
    service = make_service(repo, stats, queue_size=2)
    service.start = lambda: None  # no writer: the queue only fills
    with serve_in_thread(create_app(service)) as base:
        client = Client(base)
        client.check()
        client.check()
        reply = client.check()
        assert (reply.status, reply.doc["error"]) == (429, "too_many_requests")
        assert reply.headers["retry-after"].isdigit()
        reply = client.stats([stat("set", "1.0.1")])
        assert reply.status == 429
        assert reply.headers["retry-after"].isdigit()


def test_healthz(client):
    reply = client.call("GET", "/healthz")
    assert reply.doc["status"] == "ok"
    assert reply.doc["apps"] == [APP]


def test_stats_writer_flushes_in_the_background(client, stats):
    client.stats([stat("set", "1.0.1", defaultChannel="beta")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [
            c
            for c in stats.counts(since=NOW.replace(year=2000), until=NOW.replace(year=2100))
            if c.installs
        ]
        if found:
            break
        time.sleep(0.05)
    assert found


@pytest.mark.parametrize(
    "case",
    [
        ("input", 400, "invalid_request"),
        ("metadata", 500, "server_error"),
    ],
)
def test_our_error_families_map_to_json(repo, stats, monkeypatch, case):
    from otaseal.errors import InputError, MetadataError

    error, status, code = case
    service = make_service(repo, stats)
    exc = InputError("bad") if error == "input" else MetadataError("odd")

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(service, "update_check", fail)
    with serve_in_thread(create_app(service)) as base:
        reply = Client(base).check()
    assert (reply.status, reply.doc["error"], reply.doc["kind"]) == (status, code, "failed")


def test_one_server_answers_several_apps_from_one_store(repo, stats, tmp_path):
    other = Repository(repo.path, app="com.example.other")  # same store folder, its own root
    publish_capgo(other, "production", "7.0.0")
    service = make_service(repo, stats)
    service.apps["com.example.other"] = AppTrust(
        "com.example.other", other.root_bytes, "production"
    )
    with serve_in_thread(create_app(service)) as base:
        client = Client(base)
        assert client.check().doc["version"] == "1.0.0"
        reply = client.check(app_id="com.example.other")
        assert reply.doc["version"] == "7.0.0"
        assert "/bundles/com.example.other/" in reply.doc["url"]
        mixed = [stat("set", "1.0.0"), stat("set", "7.0.0", app_id="com.example.other")]
        assert client.stats(mixed).doc["error"] == "mixed_apps"


def test_otaseal_serve_child_process_with_two_workers(tmp_path):
    from datetime import UTC, datetime

    from serve_support import start_serve

    repo = Repository(tmp_path / "repo", now=datetime.now(UTC))  # the child reads the real clock
    publish_capgo(repo, "beta", "1.0.0")
    publish_capgo(repo, "beta", "1.0.1")
    root = tmp_path / "root.json"
    root.write_bytes(repo.root_bytes)
    server = start_serve(
        "--store",
        str(repo.store.root),
        "--root",
        f"{APP}={root}",
        "--workers",
        "2",
        "--stats",
        f"sqlite:///{tmp_path / 'stats.sqlite'}",
        "--public-url",
        "https://cdn.example.com",
        cwd=tmp_path,
        log=tmp_path / "serve.log",
    )
    try:
        client = Client(server.url)
        for _ in range(6):  # spread over both workers
            reply = client.check(defaultChannel="beta")
            assert reply.doc["version"] == "1.0.1"
            assert reply.doc["url"].startswith("https://cdn.example.com/com.example.app/bundles/")
        assert client.stats([stat("set", "1.0.1")]).doc == {"status": "ok"}
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    assert "serving com.example.app" in log


def test_the_reply_contract_is_a_valid_schema():
    import jsonschema
    from serve_support import SCHEMA

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    check_reply(
        "updates", {"error": "no_new_version_available", "message": "m", "kind": "up_to_date"}
    )
    with pytest.raises(jsonschema.ValidationError):  # never a message on an update
        check_reply("updates", {"version": "1", "url": "https://x/y", "message": "hi"})
    with pytest.raises(jsonschema.ValidationError):  # never without kind
        check_reply("updates", {"error": "no_new_version_available", "message": "m"})
