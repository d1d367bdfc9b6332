"""Attacks on publish's delta bases: whoever controls the store swaps what a patch starts from.

``publish`` reads a base release's files from the store (ADR 0010). The store is not trusted:
the bytes must match the digest and plaintext the channel's signed manifest lists, or no patch
is made from them, and nothing the attacker wrote reaches a patch or a release.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import APP, EXAMPLE_WEB, NOW

from otaseal.config import load_config
from otaseal.errors import HashMismatchError
from otaseal.operations import Project, open_store
from otaseal.project import init_project
from otaseal.publishing import publish
from otaseal.store import bundle_key


@pytest.fixture
def project(tmp_path: Path) -> Project:
    init_project(APP, tmp_path / "project", now=NOW)
    config = load_config(tmp_path / "project" / "otaseal.yml")
    return Project(config, open_store(config.store), clock=lambda: NOW)


@pytest.fixture
def web(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_WEB, tmp_path / "web"))


def _edit(web: Path, text: str) -> Path:
    (web / "index.html").write_text(f"<!doctype html><p>{text}</p>\n")
    return web


def test_swapped_base_bundle_in_store(project: Project, web: Path) -> None:
    """The base's ``.cub`` replaced by another valid bundle sealed to the same keys."""
    first = publish(project, web, channel="beta", label="1.0.0").release
    other = publish(project, _edit(web, "other"), channel="production", label="9.0.0").release
    root = Path(project.store.describe())
    shutil.copyfile(root / bundle_key(APP, other.sha256), root / bundle_key(APP, first.sha256))

    notices: list[str] = []
    result = publish(project, _edit(web, "two"), channel="beta", notice=notices.append)
    assert result.release.delta is None  # the default base is skipped, the publish goes on
    assert any(
        "no delta patch from 1.0.0" in n and "does not match its signed digest" in n
        for n in notices
    )

    before = sorted(root.rglob("*"))
    with pytest.raises(HashMismatchError):  # named explicitly, it stops the publish
        publish(project, _edit(web, "three"), channel="beta", delta_from=["1.0.0"])
    assert sorted(root.rglob("*")) == before  # nothing uploaded, nothing signed
