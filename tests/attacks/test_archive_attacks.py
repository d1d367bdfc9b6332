"""Hostile zips against ``archive.extract``: one named test per attack.

Each test crafts the zip with stdlib :mod:`zipfile` (patching header bytes where zipfile will not
write the hostile field), asserts the error type, that nothing is left in the destination, and
that nothing was written anywhere else.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING

import pytest

from otaseal.archive import INDEX_PATH, FileEntry, Index, extract, extraction
from otaseal.errors import ArchiveError

if TYPE_CHECKING:
    from pathlib import Path

GOOD = {"index.html": b"<!doctype html>", "app.js": b"console.log(1)\n" * 20}
BUDGET = 10 * 1024 * 1024
# Enough files that extraction spreads them over several threads in several batches; the names
# sort before "index.html", so an attack on index.html lands in the last batch.
CROWD = {**GOOD, **{f"assets/chunk{i:03}.js": b"export default %d;\n" % i for i in range(150)}}


def index_of(files: dict[str, bytes]) -> bytes:
    entries = sorted(files.items(), key=lambda item: item[0].encode())
    return Index(
        tuple(FileEntry(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in entries)
    ).to_json()


def write_zip(
    path: Path,
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    prefix: bytes = b"",
) -> Path:
    """Write ``entries`` in order, deflated unless the ZipInfo says otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; that is the point
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    if prefix:
        path.write_bytes(prefix + path.read_bytes())
    return path


def bundle(
    tmp_path: Path,
    files: dict[str, bytes],
    *,
    listed: dict[str, bytes] | None = None,
    extra: list[tuple[str | zipfile.ZipInfo, bytes]] = (),  # type: ignore[assignment]
) -> Path:
    """A zip whose index lists ``listed`` (default: ``files``), then ``files`` and ``extra``."""
    index = index_of(files if listed is None else listed)
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(INDEX_PATH, index)]
    entries += sorted(files.items(), key=lambda item: item[0].encode())
    entries += list(extra)
    return write_zip(tmp_path / "bundle.zip", entries)


def patch_entry(path: Path, name: str, **fields: int | bytes) -> None:
    """Overwrite header fields of entry ``name`` in both its local and central headers."""
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack_from("<HII", data, end + 10)
    at = start
    offsets = {
        "flags": (8, 6),
        "method": (10, 8),
        "crc": (16, 14),
        "compressed": (20, 18),
        "size": (24, 22),
    }
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        (local,) = struct.unpack_from("<I", data, at + 42)
        if data[at + 46 : at + 46 + name_len] == name.encode():
            for field, value in fields.items():
                if field == "local_name":
                    assert isinstance(value, bytes)
                    data[local + 30 : local + 30 + len(value)] = value
                    continue
                central_at, local_at = offsets[field]
                fmt = "<H" if field in {"flags", "method"} else "<I"
                struct.pack_into(fmt, data, at + central_at, value)
                struct.pack_into(fmt, data, local + local_at, value)
        at += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in root.rglob("*")
    }


def assert_refused(
    zip_path: Path,
    tmp_path: Path,
    match: str,
    *,
    existing_dest: bool = False,
    max_total_size: int = BUDGET,
    workers: int | None = None,
) -> None:
    """Extraction fails with ArchiveError, leaves dest as it was, and writes nothing elsewhere."""
    dest = tmp_path / "staging" / "release"
    if existing_dest:
        dest.mkdir(parents=True)
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match=match) as caught:
        extract(zip_path, dest, max_total_size=max_total_size, workers=workers)
    assert snapshot(tmp_path) == before
    if existing_dest:
        assert dest.is_dir()
        assert not any(dest.iterdir())
    else:
        assert not (tmp_path / "staging").exists()
    assert "do not install" in caught.value.diagnostics() or "again" in caught.value.diagnostics()


# --- paths ----------------------------------------------------------------------------------------
def test_zip_slip_dotdot_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, {**GOOD, "../../evil.txt": b"pwned"})
    assert_refused(zip_path, tmp_path, r"'\.\./\.\./evil\.txt'.*'\.\.' segment")
    assert not (tmp_path / "evil.txt").exists()


def test_dot_segment_entry_refused(tmp_path: Path):
    assert_refused(bundle(tmp_path, {**GOOD, "./index.js": b"x"}), tmp_path, "'.' or '..'")


def test_absolute_path_entry_refused(tmp_path: Path):
    target = tmp_path / "absolute-evil.txt"
    assert_refused(bundle(tmp_path, {**GOOD, str(target): b"pwned"}), tmp_path, "absolute path")
    assert not target.exists()


@pytest.mark.parametrize("name", ["C:/Windows/evil.dll", "c:evil.js"])
def test_drive_letter_entry_refused(tmp_path: Path, name: str):
    assert_refused(bundle(tmp_path, {**GOOD, name: b"x"}), tmp_path, "drive letter")


def test_backslash_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, {**GOOD, "..\\..\\evil.txt": b"x"})
    assert_refused(zip_path, tmp_path, "backslash")


def test_empty_segment_entry_refused(tmp_path: Path):
    assert_refused(bundle(tmp_path, {**GOOD, "assets//app.js": b"x"}), tmp_path, "empty segment")


def test_directory_entry_refused(tmp_path: Path):
    assert_refused(bundle(tmp_path, {**GOOD, "assets/": b""}), tmp_path, "empty segment")


def test_nul_byte_entry_refused(tmp_path: Path):
    info = zipfile.ZipInfo("x")
    info.filename = "evil.js\x00.png"  # zipfile truncates at NUL on read; the raw name keeps it
    assert_refused(bundle(tmp_path, GOOD, extra=[(info, b"x")]), tmp_path, "NUL byte")


def test_control_character_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, {**GOOD, "evil\r\nSet-Cookie.js": b"x"})
    assert_refused(zip_path, tmp_path, "control character")


def test_reserved_otaseal_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, {**GOOD, ".OTASEAL/index.json": b"{}"})
    assert_refused(zip_path, tmp_path, "reserved")


# --- entry types and features --------------------------------------------------------------------
def test_symlink_entry_refused(tmp_path: Path):
    link = zipfile.ZipInfo("app.js")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [(INDEX_PATH, index_of(GOOD)), (link, b"/etc/passwd"), ("index.html", GOOD["index.html"])],
    )
    assert_refused(zip_path, tmp_path, "is a symlink")


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFDIR, stat.S_IFSOCK])
def test_non_regular_mode_entry_refused(tmp_path: Path, kind: int):
    special = zipfile.ZipInfo("app.js")
    special.external_attr = (kind | 0o644) << 16
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [(INDEX_PATH, index_of(GOOD)), (special, GOOD["app.js"]), ("index.html", b"x")],
    )
    assert_refused(zip_path, tmp_path, "not a regular file")


def test_dos_directory_attribute_entry_refused(tmp_path: Path):
    folder = zipfile.ZipInfo("app.js")
    folder.external_attr = 0x10
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [(INDEX_PATH, index_of(GOOD)), (folder, GOOD["app.js"]), ("index.html", b"x")],
    )
    assert_refused(zip_path, tmp_path, "not a regular file")


def test_encrypted_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    patch_entry(zip_path, "app.js", flags=0x0001)
    assert_refused(zip_path, tmp_path, "is encrypted")


def test_unsupported_zip_flags_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    patch_entry(zip_path, "app.js", flags=0x0020)  # "compressed patched data"
    assert_refused(zip_path, tmp_path, "unsupported zip flags")


def test_unsupported_compression_method_refused(tmp_path: Path):
    bz = zipfile.ZipInfo("app.js")
    bz.compress_type = zipfile.ZIP_BZIP2
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [(INDEX_PATH, index_of(GOOD)), (bz, GOOD["app.js"]), ("index.html", GOOD["index.html"])],
    )
    assert_refused(zip_path, tmp_path, "compression method 12")


# --- names that collide --------------------------------------------------------------------------
def test_duplicate_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD, extra=[("app.js", b"alert('second copy wins')")])
    assert_refused(zip_path, tmp_path, "more than once")


def test_duplicate_index_entry_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD, extra=[(INDEX_PATH, index_of({"index.html": b"x"}))])
    assert_refused(zip_path, tmp_path, "more than once")


def test_case_colliding_entries_refused(tmp_path: Path):
    files = {**GOOD, "App.js": b"alert('shadow')"}
    assert_refused(bundle(tmp_path, files), tmp_path, "collide")


def test_unicode_normalization_colliding_entries_refused(tmp_path: Path):
    files = {**GOOD, "caf\u00e9.js": b"1", "cafe\u0301.js": b"2"}
    assert_refused(bundle(tmp_path, files), tmp_path, "collide")


def test_file_and_directory_colliding_entries_refused(tmp_path: Path):
    files = {**GOOD, "Assets": b"1", "assets/app.js": b"2"}
    assert_refused(bundle(tmp_path, files), tmp_path, "collide")


# --- the index -----------------------------------------------------------------------------------
def test_index_missing_refused(tmp_path: Path):
    zip_path = write_zip(tmp_path / "bundle.zip", list(GOOD.items()))
    assert_refused(zip_path, tmp_path, "is missing")


def test_index_not_first_refused(tmp_path: Path):
    entries = [("app.js", GOOD["app.js"]), (INDEX_PATH, index_of(GOOD))]
    zip_path = write_zip(tmp_path / "bundle.zip", [*entries, ("index.html", GOOD["index.html"])])
    assert_refused(zip_path, tmp_path, "not the first entry")


def test_data_before_the_zip_refused(tmp_path: Path):
    entries = [(INDEX_PATH, index_of(GOOD)), *GOOD.items()]
    zip_path = write_zip(tmp_path / "bundle.zip", entries, prefix=b"#!/bin/sh\nexit 0\n")
    assert_refused(zip_path, tmp_path, "data precedes the zip")


def test_malformed_index_refused(tmp_path: Path):
    zip_path = write_zip(tmp_path / "b.zip", [(INDEX_PATH, b"{'files': []}"), *GOOD.items()])
    assert_refused(zip_path, tmp_path, "malformed")


def test_index_bomb_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(extraction, "MAX_INDEX_SIZE", 4096)
    padded = index_of(GOOD) + b" " * (1 << 20)  # valid JSON, just very long
    zip_path = write_zip(tmp_path / "b.zip", [(INDEX_PATH, padded), *GOOD.items()])
    assert_refused(zip_path, tmp_path, "larger than 4096 bytes")


def test_file_not_in_index_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, {**GOOD, "inject.js": b"steal()"}, listed=GOOD)
    assert_refused(zip_path, tmp_path, "'inject.js' is not in the index")


def test_index_file_missing_from_zip_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD, listed={**GOOD, "security-patch.js": b"fix()"})
    assert_refused(zip_path, tmp_path, "'security-patch.js' is in the index but not in the zip")


def test_per_file_hash_mismatch_refused(tmp_path: Path):
    files = {**GOOD, "assets/app.css": b"body{}"}  # written before index.html, then removed
    listed = {**files, "index.html": b"<!doctype html>"[::-1]}  # same size, other bytes
    zip_path = bundle(tmp_path, files, listed=listed)
    assert_refused(zip_path, tmp_path, "does not match the SHA-256", existing_dest=True)


@pytest.mark.parametrize("existing_dest", [False, True])
def test_hash_mismatch_on_a_worker_thread_removes_what_every_thread_wrote(
    tmp_path: Path, existing_dest: bool
):
    listed = {**CROWD, "index.html": b"<!doctype html>"[::-1]}
    zip_path = bundle(tmp_path, CROWD, listed=listed)
    assert_refused(
        zip_path, tmp_path, "does not match the SHA-256", existing_dest=existing_dest, workers=3
    )


def test_file_larger_than_its_index_entry_refused(tmp_path: Path):
    listed = {**GOOD, "index.html": b"<!doctype"}
    zip_path = bundle(tmp_path, GOOD, listed=listed)
    assert_refused(
        zip_path, tmp_path, "15 bytes by the zip's directory, 9 by the index", existing_dest=True
    )


def test_file_smaller_than_its_index_entry_refused(tmp_path: Path):
    listed = {**GOOD, "index.html": GOOD["index.html"] + b"<script>"}
    assert_refused(
        bundle(tmp_path, GOOD, listed=listed), tmp_path, "15 bytes by the zip's directory"
    )


# --- sizes and bombs -----------------------------------------------------------------------------
def zero_bomb(size_mib: int) -> bytes:
    """Raw DEFLATE of ``size_mib`` MiB of zeros, about 1 KiB per MiB, built in milliseconds."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(b"\0" * (1 << 20)) + comp.flush(zlib.Z_SYNC_FLUSH)
    again = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=b"\0" * 32768)
    repeat = again.compress(b"\0" * (1 << 20)) + again.flush(zlib.Z_SYNC_FLUSH)
    return piece + repeat * (size_mib - 1) + b"\x03\x00"  # an empty final block ends the stream


def bomb_zip(
    tmp_path: Path, *, listed_size: int, size_mib: int, files: dict[str, bytes] = GOOD
) -> Path:
    """``bomb.bin`` inflates to ``size_mib`` MiB; the index and the zip claim ``listed_size``."""
    listed = {**files, "bomb.bin": b"\0" * listed_size}
    stored = zipfile.ZipInfo("bomb.bin")
    stored.compress_type = zipfile.ZIP_STORED  # written as is, then relabelled as deflate
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [
            (INDEX_PATH, index_of(listed)),
            *sorted(files.items(), key=lambda item: item[0].encode()),
            (stored, zero_bomb(size_mib)),
        ],
    )
    patch_entry(zip_path, "bomb.bin", method=zipfile.ZIP_DEFLATED, size=listed_size)
    return zip_path


@pytest.mark.parametrize("files", [GOOD, CROWD], ids=["alone", "among-many-on-threads"])
def test_zip_bomb_beyond_signed_size_stops_early(
    tmp_path: Path, monkeypatch, files: dict[str, bytes]
):
    zip_path = bomb_zip(tmp_path, listed_size=1024, size_mib=4000, files=files)  # 4 GB from 4 MB
    assert zip_path.stat().st_size < 8 << 20
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: int) -> None:
            self._inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    monkeypatch.setattr(zipfile.zlib, "decompressobj", Counting)

    assert_refused(
        zip_path,
        tmp_path,
        "unpacks to more than the 1024 bytes",
        existing_dest=True,
        workers=2,
    )
    assert sum(inflated) < 1 << 20  # stopped after about one read, not 4 GiB


def test_total_size_above_budget_refused_before_writing(tmp_path: Path):
    zip_path = bomb_zip(tmp_path, listed_size=2 << 20, size_mib=2)
    assert_refused(zip_path, tmp_path, "unpacks to 2097", max_total_size=1 << 20)


def test_lying_header_size_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    patch_entry(zip_path, "app.js", size=10)  # the headers claim 10 bytes; the data inflates to 300
    assert_refused(zip_path, tmp_path, "10 bytes by the zip's directory, 300 by the index")


def test_crc_mismatch_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    patch_entry(zip_path, "index.html", crc=0xDEADBEEF)
    assert_refused(zip_path, tmp_path, "does not match its CRC-32", existing_dest=True)


def test_corrupted_deflate_stream_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    data = bytearray(zip_path.read_bytes())
    at = data.find(b"index.html") + len(b"index.html")  # first local header with that name
    data[at : at + 8] = b"\xff" * 8
    zip_path.write_bytes(bytes(data))
    assert_refused(zip_path, tmp_path, "not a readable zip")


def test_local_header_name_differing_from_central_directory_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    patch_entry(zip_path, "index.html", local_name=b"../dx.html")
    assert_refused(
        zip_path, tmp_path, "local header that does not match the directory", existing_dest=True
    )


def test_local_header_name_differing_on_a_worker_thread_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, CROWD)
    patch_entry(zip_path, "index.html", local_name=b"../dx.html")
    assert_refused(zip_path, tmp_path, "local header that does not match the directory", workers=2)
    assert not (tmp_path / "dx.html").exists()


def test_deflate_stream_cut_short_refused(tmp_path: Path):
    data = GOOD["app.js"]
    cut = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = cut.compress(data) + cut.flush(zlib.Z_SYNC_FLUSH)  # all the bytes, no final block
    stored = zipfile.ZipInfo("app.js")
    stored.compress_type = zipfile.ZIP_STORED
    entries = [(INDEX_PATH, index_of(GOOD)), (stored, stream), ("index.html", GOOD["index.html"])]
    zip_path = write_zip(tmp_path / "bundle.zip", entries)
    patch_entry(zip_path, "app.js", method=zipfile.ZIP_DEFLATED, size=len(data))
    assert_refused(zip_path, tmp_path, "deflate stream that ends too early")


def test_entry_reaching_past_the_end_of_the_bundle_refused(tmp_path: Path):
    big = {**GOOD, "index.html": os.urandom(600 << 10)}  # stored, longer than one read
    zip_path = write_zip(
        tmp_path / "bundle.zip",
        [(INDEX_PATH, index_of(big)), ("app.js", big["app.js"]), ("index.html", big["index.html"])],
    )
    patch_entry(zip_path, "index.html", compressed=(600 << 10) + (1 << 20))
    assert_refused(zip_path, tmp_path, "past the end of the bundle", workers=2)


def test_truncated_zip_refused(tmp_path: Path):
    zip_path = bundle(tmp_path, GOOD)
    zip_path.write_bytes(zip_path.read_bytes()[:-40])
    assert_refused(zip_path, tmp_path, "not a readable zip")
