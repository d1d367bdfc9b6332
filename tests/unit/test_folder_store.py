from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from otaseal.errors import ConflictError, LengthError, NotFoundError, StoreError
from otaseal.store.folder import FolderStore


def test_create_is_create_only_and_links_or_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderStore(tmp_path / "store")
    src = tmp_path / "bundle"
    src.write_bytes(b"x" * 10)
    assert store.create_from_file("app/bundles/a.cub", src)
    assert not store.create_from_file("app/bundles/a.cub", src)

    real_link = os.link

    def cross_device(source: Path, target: Path) -> None:
        if not Path(source).name.startswith(".tmp-"):  # the bundle lives on another filesystem
            raise OSError(errno.EXDEV, "cross-device link")
        real_link(source, target)

    monkeypatch.setattr(os, "link", cross_device)
    assert store.create_from_file("app/bundles/b.cub", src)
    assert store.fetch("app/bundles/b.cub", max_bytes=10) == b"x" * 10
    monkeypatch.undo()
    assert store.create("app/x.json", b"1")
    assert not store.create("app/x.json", b"2")
    assert store.read("app/x.json")[0] == b"1"
    assert store.list("app") == ["app/bundles/a.cub", "app/bundles/b.cub", "app/x.json"]
    assert store.list("nothing") == []


def test_cas_and_caps(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    etag = store.replace("p.json", b"1", etag=None)
    with pytest.raises(ConflictError):
        store.replace("p.json", b"2", etag=None)
    store.replace("p.json", b"2", etag=etag)
    with pytest.raises(LengthError):
        store.fetch("p.json", max_bytes=0)
    with pytest.raises(NotFoundError):
        store.read("missing")
    with pytest.raises(NotFoundError):
        store.fetch("missing", max_bytes=1)


def test_unwritable_store_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="not writable"):
        FolderStore(blocker / "store").create("k", b"1")


def test_head_reads_the_first_bytes_only(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.create("app/bundles/x.cub", b"header" + b"segments" * 100)
    assert store.head("app/bundles/x.cub", length=6) == b"header"
    with pytest.raises(NotFoundError):
        store.head("app/bundles/missing.cub", length=6)
    (tmp_path / "app" / "bundles" / "dir.cub").mkdir()
    with pytest.raises(StoreError):
        store.head("app/bundles/dir.cub", length=6)
