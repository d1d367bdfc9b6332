"""Applying a checked patch to an installed tree (SPEC §19.3 D7-D8), without the store."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat

import pytest
import zstandard

from otaseal.archive import Index, pack
from otaseal.delta import apply as apply_module
from otaseal.delta.apply import apply_patch
from otaseal.errors import DeltaError, InputError
from otaseal.formats import delta

BASE, TARGET = "b" * 64, "c" * 64
OLD = {
    "index.html": b"<p>one</p>\n" * 20,
    "assets/app.js": b"export const a = 1;\n" * 400,
    "assets/lib.js": b"lib\n" * 100,
}
NEW = {
    "index.html": b"<p>two</p>\n" + b"<p>one</p>\n" * 19,
    "assets/app.js": b"export const a = 2;\n" + b"export const a = 1;\n" * 399,
    "assets/lib.js": OLD["assets/lib.js"],
    "deep/er/new.txt": b"new\n",
}


def _write(root, files):
    for name, data in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def world(tmp_path):
    """An installed tree (``base``), and the patch to NEW as a file with its header and index."""
    base = _write(tmp_path / "base", OLD)
    target = _write(tmp_path / "target", NEW)
    index_json = pack(target, io.BytesIO(), workers=1).index.to_json()
    base_index = pack(base, io.BytesIO(), workers=1).index.to_json()
    made = delta.make_patch(
        base, target, index_json, base_bundle=BASE, target_bundle=TARGET, base_index=base_index
    )
    patch = tmp_path / "patch.bin"
    patch.write_bytes(made.plaintext)
    header = delta.read_header(io.BytesIO(made.plaintext), made.length, base_index=base_index)
    return base, patch, header, Index.from_json(index_json)


def _apply(world, staging, **kwargs):
    base, patch, header, index = world
    apply_patch(patch, header, index, base_dir=base, staging=staging, **kwargs)


@pytest.mark.parametrize("workers", [1, 3])
def test_apply_builds_the_new_tree_with_plain_files(world, tmp_path, workers):
    _apply(world, tmp_path / "new", workers=workers)
    assert _tree(tmp_path / "new") == NEW
    for path in (tmp_path / "new").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o133 == 0  # 0644 at most
    assert _tree(world[0]) == OLD  # the installed tree is only read


def test_a_staging_folder_that_exists_is_refused(world, tmp_path):
    (tmp_path / "new").mkdir()
    with pytest.raises(InputError, match="cannot write the patched build"):
        _apply(world, tmp_path / "new")


def test_a_base_fifo_is_refused_without_blocking(world, tmp_path):
    (world[0] / "assets/lib.js").unlink()
    os.mkfifo(world[0] / "assets/lib.js")
    with pytest.raises(DeltaError, match="is not a regular file"):
        _apply(world, tmp_path / "new")


def test_a_base_file_of_another_size_is_refused_before_it_is_read(world, tmp_path):
    (world[0] / "assets/lib.js").write_bytes(b"lib\n" * 101)
    with pytest.raises(DeltaError, match=r"installed assets/lib.js is 404 bytes"):
        _apply(world, tmp_path / "new")


def test_a_dictionary_above_the_cap_is_refused(world, tmp_path, monkeypatch):
    monkeypatch.setattr(apply_module, "MAX_DICT_SIZE", 100)
    with pytest.raises(DeltaError, match="as a dictionary"):
        _apply(world, tmp_path / "new")


def test_a_missing_install_folder_is_a_delta_error(world, tmp_path):
    _, patch, header, index = world
    with pytest.raises(DeltaError, match="cannot be opened"):
        apply_patch(patch, header, index, base_dir=tmp_path / "gone", staging=tmp_path / "new")


def test_a_frame_that_is_not_zstd_is_refused(world, tmp_path):
    _, patch, header, _ = world
    at, _ = next(
        span for op, span in zip(header.ops, header.payloads(), strict=True) if op.op == "zstd"
    )
    data = bytearray(patch.read_bytes())
    data[at : at + 4] = b"junk"
    patch.write_bytes(bytes(data))
    with pytest.raises(DeltaError, match="does not decompress"):
        _apply(world, tmp_path / "new")


def test_a_short_result_is_refused(world, tmp_path):
    """A frame of fewer bytes than the index says (the payload was swapped for a shorter one)."""
    _, patch, header, _ = world
    spans = {op.path: span for op, span in zip(header.ops, header.payloads(), strict=True)}
    at, length = spans["deep/er/new.txt"]
    short = zstandard.ZstdCompressor().compress(b"ne")
    assert len(short) <= length
    data = bytearray(patch.read_bytes())
    data[at : at + length] = short + b"\0" * (length - len(short))  # a skippable-free tail
    patch.write_bytes(bytes(data))
    with pytest.raises(DeltaError):
        _apply(world, tmp_path / "new")


@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
def test_every_result_is_hashed(world, tmp_path, monkeypatch, link):
    """A base file of the right size but other bytes makes a copy whose hash is refused.

    ``assets/lib.js`` is not listed in the patch: an implicit copy is checked like any file,
    whether it is hard-linked into staging or written out.
    """
    if not link:
        monkeypatch.setattr(os, "link", _no_link)
    (world[0] / "assets/lib.js").write_bytes(b"LIB\n" * 100)
    with pytest.raises(DeltaError) as caught:
        _apply(world, tmp_path / "new")
    wrong = hashlib.sha256(b"LIB\n" * 100).hexdigest()[:16]
    made = "the installed assets/lib.js has" if link else "the patch makes assets/lib.js with"
    assert f"{made} SHA-256 {wrong}" in caught.value.diagnostics()


def _no_link(*args, **kwargs):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_checked_copies_are_hard_links_and_the_rest_are_new_files(world, tmp_path):
    """Linking skips the write of an unchanged file; what is linked is the file that was hashed."""
    base = world[0]
    _apply(world, tmp_path / "new")
    lib = tmp_path / "new/assets/lib.js"
    assert lib.stat().st_ino == (base / "assets/lib.js").stat().st_ino
    assert (tmp_path / "new/index.html").stat().st_nlink == 1  # patched: written out


def test_a_base_file_with_a_wider_mode_is_copied_not_linked(world, tmp_path):
    (world[0] / "assets/lib.js").chmod(0o755)
    _apply(world, tmp_path / "new")
    lib = tmp_path / "new/assets/lib.js"
    assert lib.stat().st_ino != (world[0] / "assets/lib.js").stat().st_ino
    assert stat.S_IMODE(lib.stat().st_mode) == 0o644


def test_without_links_the_copies_are_written_and_the_tree_is_the_same(
    world, tmp_path, monkeypatch
):
    monkeypatch.setattr(os, "link", _no_link)
    _apply(world, tmp_path / "new")
    assert _tree(tmp_path / "new") == NEW
    assert (tmp_path / "new/assets/lib.js").stat().st_nlink == 1
