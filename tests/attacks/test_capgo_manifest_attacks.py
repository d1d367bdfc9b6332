"""Attacks on Capgo manifest mode (SPEC §17.1): whoever can write the store, but not sign.

The list object is trusted only through the digest signed in the release (``capgo.files``), so
``serve`` refuses a changed or swapped list and answers with the zip alone; each file body is
trusted only through its signed ``file_hash``, so the device refuses a changed or swapped body.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from capgo_manifest_device import DeviceFailure
from capgo_manifest_support import Setup, check, make_setup
from serve_support import Client, serve_in_thread
from tests.conftest import APP

from otaseal.formats import capgo_files
from otaseal.serve.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator


REFUSED_BODY = {"download_manifest_checksum_fail", "download_manifest_brotli_fail"}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path)


@pytest.fixture
def served(setup: Setup) -> Iterator[Client]:
    with serve_in_thread(create_app(setup.service())) as base:
        yield Client(base)


def _entry(reply: dict, path: str) -> dict:
    return next(e for e in reply["manifest"] if e["file_name"].removesuffix(".br") == path)


def _store(setup: Setup) -> Path:
    return Path(setup.project.store.describe())


def _list_path(setup: Setup, release) -> Path:
    return _store(setup) / capgo_files.list_key(APP, release.capgo.files.sha256)


def _body_path(setup: Setup, url: str) -> Path:
    return _store(setup) / capgo_files.file_key(APP, url.rsplit("/", 1)[-1])


def test_tampered_file_body(setup, served):
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    entry = _entry(reply, "index.html")
    body = _body_path(setup, entry["download_url"])
    data = bytearray(body.read_bytes())
    data[0] ^= 1  # CBC: garbles the first block, the padding still checks
    body.write_bytes(bytes(data))
    with pytest.raises(DeviceFailure) as failure:
        setup.device().apply(reply)
    assert failure.value.stat in REFUSED_BODY  # index.html's body is Brotli: may not even decode
    assert not (setup.device().bundle("1.0.0") / "index.html").exists()


def test_swapped_file_body(setup, served):
    """Another file's genuine body (same key and IV) under this file's digest name."""
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    index = _entry(reply, "index.html")
    small = _entry(reply, "assets/small.txt")
    _body_path(setup, index["download_url"]).write_bytes(
        _body_path(setup, small["download_url"]).read_bytes()
    )
    with pytest.raises(DeviceFailure) as failure:
        setup.device().apply(reply)
    assert failure.value.stat in REFUSED_BODY


def test_tampered_list_object(setup, served, caplog):
    """A list that points a file at an attacker's body: serve never sends it."""
    release = setup.publish(setup.a, "1.0.0").release
    path = _list_path(setup, release)
    doc = json.loads(path.read_bytes())
    doc["files"][0]["object"] = "0" * 64
    path.write_bytes(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        reply = check(served, setup)
    assert "manifest" not in reply
    assert reply["version"] == "1.0.0"  # the signed zip is still served
    assert any("not the signed file list" in r.getMessage() for r in caplog.records)


def test_list_object_of_another_release(setup, served):
    """Release A's genuine list put where release B's should be: the digest tells them apart."""
    a = setup.publish(setup.a, "1.0.0").release
    b = setup.publish(setup.b, "1.0.1").release
    _list_path(setup, b).write_bytes(_list_path(setup, a).read_bytes())
    reply = check(served, setup, version_name="1.0.0")
    assert reply["version"] == "1.0.1"
    assert "manifest" not in reply


def test_oversized_list_object(setup, served):
    """A list grown past its signed length is not read past that length."""
    release = setup.publish(setup.a, "1.0.0").release
    path = _list_path(setup, release)
    path.write_bytes(path.read_bytes() + b" " * (1 << 20))
    reply = check(served, setup)
    assert "manifest" not in reply


def test_manifest_with_path_traversal(setup, served):
    """A hostile server's entry that escapes the bundle folder: the device refuses it all."""
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    reply["manifest"][0] = {**reply["manifest"][0], "file_name": "../../escape.js"}
    with pytest.raises(DeviceFailure) as failure:
        setup.device().apply(reply)
    assert failure.value.stat == "canonical_path_fail"
    assert not (setup.tmp / "escape.js").exists()


def test_manifest_with_a_file_hash_of_another_file(setup, served):
    """Swapping two entries' signed hashes: each body now fails its hash."""
    setup.publish(setup.a, "1.0.0")
    reply = check(served, setup)
    first, second = reply["manifest"][0], reply["manifest"][1]
    first["file_hash"], second["file_hash"] = second["file_hash"], first["file_hash"]
    with pytest.raises(DeviceFailure) as failure:
        setup.device().apply(reply)
    assert failure.value.stat == "download_manifest_checksum_fail"


def test_deleted_file_body(setup, served, caplog):
    """A body removed from the store: serve answers with the zip, not a manifest that must fail."""
    setup.publish(setup.a, "1.0.0")
    objects = sorted((_store(setup) / APP / "capgo-files").iterdir())
    objects[0].unlink()
    with caplog.at_level(logging.WARNING, logger="otaseal.serve"):
        reply = check(served, setup)
    assert "manifest" not in reply
    assert reply["version"] == "1.0.0"
    assert any("not in the store" in r.getMessage() for r in caplog.records)
