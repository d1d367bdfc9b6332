"""Capgo manifest mode end to end (issue 13 §1): real publishes into a folder store, ``serve`` on
127.0.0.1, and a test device that plays the plugin's manifest steps (``capgo_manifest_device``).

A device moving from one release to the next downloads only the files that changed; a cut
download resumes with ``Range``; the ``.br`` rule and the per-file hashes hold; the store grows
by new files only. Every reply is checked against the contract schema.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from capgo_manifest_device import DeviceFailure
from capgo_manifest_support import VENDOR, Setup, check, make_setup
from serve_support import Client, serve_in_thread, start_serve
from tests.conftest import APP

from otaseal import crypto
from otaseal.formats import capgo_files
from otaseal.formats.capgo import recover_checksum, verify_artifact
from otaseal.serve.app import create_app
from otaseal.serve.service import PresignedUrls, PublicUrls
from otaseal.store import capgo_key

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


@pytest.fixture
def served(setup: Setup) -> Iterator[Client]:
    with serve_in_thread(create_app(setup.service())) as base:
        yield Client(base)


def test_a_device_moving_from_a_to_b_downloads_only_the_new_files(setup, served):
    first = setup.publish(setup.a, "1.0.0")
    device = setup.device()
    reply_a = check(served, setup)
    assert reply_a["version"] == "1.0.0"
    assert len(reply_a["manifest"]) == first.release.files
    got_a = device.apply(reply_a)
    assert sorted(got_a.downloaded) == sorted(
        ["index.html", "assets/app.js", "assets/vendor.js", "assets/empty.css", "assets/small.txt"]
    )
    for path in got_a.downloaded:
        assert (device.bundle("1.0.0") / path).read_bytes() == (setup.a / path).read_bytes()

    setup.publish(setup.b, "1.0.1")
    reply_b = check(served, setup, version_name="1.0.0")
    assert reply_b["version"] == "1.0.1"
    got_b = device.apply(reply_b)
    assert sorted(got_b.downloaded) == ["assets/app.js", "assets/new.js", "index.html"]
    assert sorted(got_b.reused) == ["assets/empty.css", "assets/small.txt", "assets/vendor.js"]
    bundle = device.bundle("1.0.1")
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    expected = sorted(str(p.relative_to(setup.b)) for p in setup.b.rglob("*") if p.is_file())
    assert files == expected
    for path in expected:
        assert (bundle / path).read_bytes() == (setup.b / path).read_bytes()


def test_the_zip_in_the_same_answer_opens_with_the_same_session_key(setup, served):
    release = setup.publish(setup.a, "1.0.0").release
    reply = check(served, setup)
    assert reply["session_key"] == release.capgo.session_key
    zipped = served.session.get(reply["url"], timeout=10).content
    digest = verify_artifact(
        io.BytesIO(zipped),
        public_key=setup.public,
        session_key=reply["session_key"],
        checksum=reply["checksum"],
    )
    assert digest == release.plaintext_sha256


def test_a_cut_download_resumes_with_range_and_appends_the_206(setup, served):
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    entry = next(e for e in reply["manifest"] if e["file_name"] == "assets/vendor.js.br")
    body = served.session.get(entry["download_url"], timeout=10).content
    device = setup.device()
    file_hash = crypto_recover(entry["file_hash"], setup.public)
    partial = device.folder / "partial" / f"{file_hash}_vendor.js"
    partial.write_bytes(body[:100])  # the connection dropped after 100 bytes
    got = device.apply(reply)
    resumed = [r for r in got.requests if r[0] == entry["download_url"]]
    assert resumed == [(entry["download_url"], "bytes=100-", 206)]
    assert (device.bundle("1.0.0") / "assets/vendor.js").read_text() == VENDOR


def crypto_recover(signed: str, public: crypto.CapgoPublicKey) -> str:
    return recover_checksum(signed, public)


@pytest.fixture
def static_store(setup: Setup) -> Iterator[str]:
    """A plain static server over the store folder (no Range support: every GET is a 200)."""
    handler = functools.partial(QuietHandler, directory=str(Path(setup.project.store.describe())))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


def test_public_url_files_and_a_200_to_a_range_request_restarts_the_file(setup, static_store):
    setup.publish(setup.a, "1.0.0")
    with serve_in_thread(create_app(setup.service(urls=PublicUrls(static_store)))) as base:
        reply = check(Client(base), setup)
    entry = next(e for e in reply["manifest"] if e["file_name"] == "assets/vendor.js.br")
    assert entry["download_url"].startswith(f"{static_store}{APP}/capgo-files/")
    device = setup.device()
    file_hash = crypto_recover(entry["file_hash"], setup.public)
    (device.folder / "partial" / f"{file_hash}_vendor.js").write_bytes(b"stale bytes")
    got = device.apply(reply)
    assert (entry["download_url"], "bytes=11-", 200) in got.requests
    assert (device.bundle("1.0.0") / "assets/vendor.js").read_text() == VENDOR


def test_brotli_only_where_it_pays_or_must_and_every_hash_is_the_files(setup, served):
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    names = sorted(e["file_name"] for e in reply["manifest"])
    assert names == [
        "assets/app.js.br",  # 30 KB of text
        "assets/empty.css.br",  # the 3-byte empty Brotli stream: never an empty body
        "assets/small.txt",  # 16 bytes: Brotli would not save an AES block
        "assets/vendor.js.br",
        "index.html.br",  # 52 bytes: Brotli saves a block
    ]
    for entry in reply["manifest"]:
        path = entry["file_name"].removesuffix(".br")
        expected = hashlib.sha256((setup.a / path).read_bytes()).hexdigest()
        assert crypto_recover(entry["file_hash"], setup.public) == expected


def test_storage_grows_by_the_new_files_only(setup):
    setup.publish(setup.a, "1.0.0")
    after_a = setup.objects()
    assert len(after_a) == 5
    setup.publish(setup.b, "1.0.1")
    after_b = setup.objects()
    assert after_a <= after_b
    assert len(after_b - after_a) == 3  # index.html, app.js, new.js


@pytest.mark.parametrize(
    ("plugin_version", "manifest"),
    [
        ("8.51.23", True),
        ("7.0.30", True),
        ("7.0.29", False),
        ("7.0.30-beta.1", False),
        ("6.25.0", True),
        ("6.14.4", False),
        ("5.10.0", False),
        ("", False),
        ("garbage", False),
        ("8", False),
    ],
)
def test_which_plugins_get_the_manifest(setup, served, plugin_version, manifest):
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup, plugin_version=plugin_version)
    assert ("manifest" in reply) is manifest
    assert reply["url"] and reply["checksum"] and reply["session_key"]


def test_no_manifest_option_answers_with_the_zip_only(setup):
    setup.publish(setup.a, "1.0.0")
    with serve_in_thread(create_app(setup.service(manifest_mode=False))) as base:
        reply = check(Client(base), setup)
    assert "manifest" not in reply
    assert reply["version"] == "1.0.0"


def test_a_missing_list_object_is_logged_and_the_zip_is_served(setup, served, caplog):
    release = setup.publish(setup.a, "1.0.0").release
    key = capgo_files.list_key(APP, release.capgo.files.sha256)
    (Path(setup.project.store.describe()) / key).unlink()
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        reply = check(served, setup)
    assert "manifest" not in reply
    assert reply["url"].endswith(capgo_key(APP, release.capgo.sha256).split("/")[-1])
    assert any("answering with the zip only" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "path",
    [
        f"/files/{APP}/{'0' * 64}",
        f"/files/{APP}/../../etc/passwd",
        f"/files/{APP}/{'0' * 63}",
        f"/files/com.example.other/{'0' * 64}",
    ],
)
def test_files_route_serves_only_stored_bodies_of_served_apps(served, path):
    reply = served.call("GET", path, form="error")
    assert reply.status == 404
    assert reply.doc["error"] == "not_found"


def test_files_route_serves_plain_bytes(setup, served):
    setup.publish(setup.a, "1.0.0")
    entry = check(served, setup)["manifest"][0]
    got = served.session.get(entry["download_url"], timeout=10)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in got.headers


def test_real_otaseal_serve_answers_with_a_manifest_the_device_applies(setup, tmp_path):
    setup.publish(setup.a, "1.0.0")
    project_dir = setup.project.config.path.parent
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    server = start_serve(
        "--stats",
        f"sqlite:///{tmp_path / 'serve.sqlite'}",
        cwd=project_dir,
        log=tmp_path / "serve.log",
        env=env,
    )
    try:
        reply = check(Client(server.url), setup)
        got = setup.device().apply(reply)
        assert len(got.downloaded) == 5
    finally:
        server.stop()


def test_the_device_refuses_two_names_for_one_file(setup, served):
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    small = next(e for e in reply["manifest"] if e["file_name"] == "assets/small.txt")
    reply["manifest"].append({**small, "file_name": "assets/small.txt.br"})
    with pytest.raises(DeviceFailure) as failure:
        setup.device().apply(reply)
    assert failure.value.stat == "manifest_path_fail"


def test_on_s3_each_file_is_a_presigned_get_the_device_downloads(tmp_path, moto, moto_bucket):
    setup = make_setup(tmp_path, f"s3://{moto_bucket}/releases", moto.url)
    setup.publish(setup.a, "1.0.0")
    service = setup.service(urls=PresignedUrls(setup.project.store))
    with serve_in_thread(create_app(service)) as base:
        client = Client(base)
        reply = check(client, setup)
        again = check(client, setup)
    assert len(reply["manifest"]) == 5
    for entry in reply["manifest"]:
        url = entry["download_url"]
        assert url.startswith(f"{moto.url}/{moto_bucket}/releases/{APP}/capgo-files/")
        assert "Signature=" in url
    assert again["manifest"] == reply["manifest"]  # signed once, reused for half its life
    got = setup.device().apply(reply)
    assert len(got.downloaded) == 5
