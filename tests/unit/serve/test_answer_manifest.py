"""Manifest mode in the decision and the reply: which plugins take it, what the JSON looks like.

Pure, like ``test_answer``: the decision only says whether the release and the plugin allow a
manifest; ``service`` adds the verified list (tests/integration/test_capgo_manifest.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from otaseal.model import CapgoFiles
from otaseal.serve.answer import AppView, Offer, answer_update, takes_manifest
from otaseal.serve.wire import ManifestEntry, UpdateReply
from tests.attacks.conftest import NOW

from .conftest import APP, NO_FACTS, capgo, release, request

FILES = CapgoFiles(sha256=hashlib.sha256(b"list").hexdigest(), length=400, count=3)


@pytest.mark.parametrize(
    ("version", "takes"),
    [
        ("8.51.23", True),
        ("8.0.0", True),
        ("10.0.0", True),  # the old-crypto 10.x still takes manifests; its key check refuses it
        ("8.0.0-alpha.1", True),
        ("7.0.30", True),
        ("7.1.0", True),
        ("7.0.30-rc.1", False),
        ("7.0.29", False),
        ("6.25.0", True),
        ("6.24.9", False),
        ("6.14.5", False),
        ("5.10.0", False),
        ("4.99.99", False),
        ("", False),
        ("latest", False),
        ("8", False),
        ("8.51", False),
        ("08.1.1", False),
        (" 8.51.23", False),
        ("8.51.23\n", False),
        ("9" * 20 + ".0.0", False),
    ],
)
def test_takes_manifest_by_plugin_version(version, takes):
    assert takes_manifest(version) is takes


def test_offer_names_a_manifest_only_when_the_release_has_a_file_list(signed):
    with_files = release("1.0.1", 2, capgo=replace(capgo("1.0.1"), files=FILES))
    for rel, expected in ((with_files, True), (release("1.0.1", 2), False)):
        view = AppView(APP, {"production": signed("production", (rel,))}, "production")
        decision = answer_update(view, request(), NO_FACTS, now=NOW)
        assert isinstance(decision, Offer)
        assert decision.manifest is expected


def test_an_old_plugin_is_offered_the_zip(signed):
    rel = release("1.0.1", 2, capgo=replace(capgo("1.0.1"), files=FILES))
    view = AppView(APP, {"production": signed("production", (rel,))}, "production")
    decision = answer_update(view, request(plugin_version="6.14.4"), NO_FACTS, now=NOW)
    assert isinstance(decision, Offer)
    assert decision.manifest is False


def test_reply_json_carries_the_manifest_after_the_zip_fields():
    entry = ManifestEntry("a.js.br", "ab" * 256, "https://cdn.example.com/app/capgo-files/x")
    reply = UpdateReply("1.0.1", "https://h/z", "cd" * 256, "AA==:BB==", manifest=(entry,))
    doc = json.loads(reply.to_json())
    assert doc == {
        "version": "1.0.1",
        "url": "https://h/z",
        "checksum": "cd" * 256,
        "session_key": "AA==:BB==",
        "manifest": [
            {
                "file_name": "a.js.br",
                "file_hash": "ab" * 256,
                "download_url": "https://cdn.example.com/app/capgo-files/x",
            }
        ],
    }
    assert "manifest" not in json.loads(replace(reply, manifest=()).to_json())
