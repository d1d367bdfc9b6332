"""Release counter claims: each number goes to one publish, whichever channel it writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from otaseal.counters import claim_counter, highest_claimed
from otaseal.errors import StoreError
from otaseal.operations import publish
from otaseal.store import counter_key
from otaseal.store.folder import FolderStore

if TYPE_CHECKING:
    from pathlib import Path

    from otaseal.operations import Project

from tests.conftest import NOW

APP = "com.example.app"
SHA = "ab" * 32


def test_a_number_another_publisher_claimed_is_skipped(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    assert store.create(counter_key(APP, 4), b"someone else\n")
    got = claim_counter(store, APP, above=3, channel="beta", sha256=SHA, now=NOW)
    assert got == 5
    note = json.loads(store.read(counter_key(APP, 5))[0])
    assert note == {"channel": "beta", "bundle_sha256": SHA, "claimed": "2026-11-23T12:00:00Z"}


def test_claims_start_above_the_highest_claim_and_the_manifests(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    assert highest_claimed(store, APP) == 0
    store.create(counter_key(APP, 9), b"{}\n")
    store.create(f"{APP}/counters/notes.txt", b"ignored\n")
    assert highest_claimed(store, APP) == 9
    assert claim_counter(store, APP, above=2, channel="beta", sha256=SHA, now=NOW) == 10
    assert claim_counter(store, APP, above=20, channel="beta", sha256=SHA, now=NOW) == 21


def test_giving_up_after_the_claim_limit_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("otaseal.counters.MAX_CLAIMS", 3)
    store = FolderStore(tmp_path)
    monkeypatch.setattr(store, "create", lambda _key, _data: False)
    with pytest.raises(StoreError, match="after 3 attempts") as caught:
        claim_counter(store, APP, above=0, channel="beta", sha256=SHA, now=NOW)
    assert caught.value.exit_code == 5


def test_publishes_to_two_channels_claim_distinct_counters(project: Project, web: Path) -> None:
    beta = publish(project, web, channel="beta", label="1.0.0").release
    (web / "index.html").write_text("<p>two</p>\n")
    production = publish(project, web, channel="production", label="1.0.1").release
    assert (beta.counter, production.counter) == (1, 2)
    listed = project.store.list(f"{APP}/counters/")
    assert listed == [f"{APP}/counters/1", f"{APP}/counters/2"]
