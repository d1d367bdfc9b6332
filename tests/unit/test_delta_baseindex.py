"""The index a device keeps of its installed release (SPEC §19.2): a dictionary, kept quietly."""

from __future__ import annotations

import pytest

from otaseal.delta import baseindex


def test_saved_index_loads_back_and_is_kept_per_channel(tmp_path):
    baseindex.save(tmp_path, "beta", b'{"files": []}')
    baseindex.save(tmp_path, "production", b'{"other": 1}')
    assert baseindex.load(tmp_path, "beta") == b'{"files": []}'
    assert baseindex.path_for(tmp_path, "beta") == tmp_path / "installed" / "beta.index.json"
    baseindex.save(tmp_path, "beta", b'{"files": [1]}')  # replaced whole
    assert baseindex.load(tmp_path, "beta") == b'{"files": [1]}'
    assert baseindex.load(tmp_path, "production") == b'{"other": 1}'
    assert sorted(p.name for p in (tmp_path / "installed").iterdir()) == [
        "beta.index.json",
        "production.index.json",
    ]


def test_removed_or_absent_index_loads_as_none(tmp_path):
    assert baseindex.load(tmp_path, "beta") is None
    baseindex.save(tmp_path, "beta", b"{}")
    baseindex.remove(tmp_path, "beta")
    baseindex.remove(tmp_path, "beta")  # twice: nothing to do
    assert baseindex.load(tmp_path, "beta") is None


def test_a_symlink_a_folder_an_empty_or_oversized_file_is_not_used(tmp_path, monkeypatch):
    kept = baseindex.path_for(tmp_path, "beta")
    kept.parent.mkdir()
    (tmp_path / "elsewhere.json").write_bytes(b"{}")
    kept.symlink_to(tmp_path / "elsewhere.json")
    assert baseindex.load(tmp_path, "beta") is None
    kept.unlink()
    kept.mkdir()
    assert baseindex.load(tmp_path, "beta") is None
    kept.rmdir()
    kept.write_bytes(b"")
    assert baseindex.load(tmp_path, "beta") is None
    monkeypatch.setattr(baseindex, "MAX_INDEX_SIZE", 4)
    kept.write_bytes(b"12345")
    assert baseindex.load(tmp_path, "beta") is None


def test_a_failed_save_leaves_no_stale_index(tmp_path, monkeypatch):
    baseindex.save(tmp_path, "beta", b"old")

    def fail(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(baseindex.os, "fsync", fail)
    baseindex.save(tmp_path, "beta", b"new")  # quiet: the next patch is skipped instead
    assert baseindex.load(tmp_path, "beta") is None
    assert list((tmp_path / "installed").iterdir()) == []


@pytest.mark.parametrize("channel", ["beta", "prod-eu"])
def test_path_stays_inside_the_state_folder(tmp_path, channel):
    assert baseindex.path_for(tmp_path, channel).parent == tmp_path / "installed"
