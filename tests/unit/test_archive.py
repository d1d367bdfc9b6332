"""The plaintext bundle: determinism, index, hygiene, readback and extraction of good bundles."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import random
import shutil
import socket
import stat
import subprocess
import threading
import time
import zipfile
from typing import TYPE_CHECKING

import pytest

from otaseal import archive
from otaseal.archive import (
    INDEX_PATH,
    FileEntry,
    Index,
    IndexDiff,
    extract,
    extraction,
    hygiene,
    pack,
    packing,
    paths,
)
from otaseal.errors import ArchiveError, HygieneError, InputError

if TYPE_CHECKING:
    from pathlib import Path

PEM = (
    b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oW2MmMk=\n"
    b"-----END EC PRIVATE KEY-----\n"
)
APP = {
    "index.html": b"<!doctype html><script src=assets/app.js></script>",
    "assets/app.js": b"console.log('hello');\n" * 400,
    "assets/style.css": b"body { margin: 0 }\n" * 50,
    "assets/logo.svg": b"<svg/>",
    "empty.txt": b"",
    "caf\u00e9/men\u00fc.json": b'{"a": 1}',
}


def make_build(root: Path, files: dict[str, bytes], *, order: int = 1) -> Path:
    for name, data in sorted(files.items(), reverse=order < 0):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def pack_bytes(build: Path, **kwargs: object) -> tuple[bytes, archive.PackResult]:
    out = io.BytesIO()
    result = pack(build, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue(), result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media(size: int, seed: bytes = b"photo") -> bytes:
    """Bytes that look like an already-compressed image, font or video: no structure at all."""
    return hashlib.shake_256(seed).digest(size)


def big_file(size: int) -> bytes:
    """Compressible but not trivial: repeated text with a counter, then some noise."""
    text = b"".join(b"line %08d of a large asset\n" % i for i in range(size // 28 + 1))
    return text[: size - 4096] + os.urandom(4096)


# --- determinism ----------------------------------------------------------------------------------
def test_same_files_give_identical_bytes_whatever_order_mtime_umask_and_mode(tmp_path: Path):
    first = make_build(tmp_path / "a", APP)
    old_umask = os.umask(0o077)
    try:
        second = make_build(tmp_path / "b", APP, order=-1)
    finally:
        os.umask(old_umask)
    for i, path in enumerate(sorted(second.rglob("*"))):
        if path.is_file():
            path.chmod(0o755 if i % 2 else 0o600)
            os.utime(path, (1_000_000 + i * 7777, 2_000_000_000 - i * 999))
    os.utime(first / "index.html", (0, 0))

    one, _ = pack_bytes(first)
    two, _ = pack_bytes(second)

    assert one == two


def test_worker_count_does_not_change_bytes(tmp_path: Path):
    files = dict(APP)
    files["assets/app.wasm"] = big_file(3 * archive.CHUNK_SIZE + 12345)
    files["assets/exact.bin"] = big_file(archive.CHUNK_SIZE)
    files["assets/intro.mp4"] = media(2 * archive.CHUNK_SIZE + 777)
    files["assets/logo.png"] = media(5000)
    build = make_build(tmp_path / "b", files)

    serial, _ = pack_bytes(build, workers=1)
    parallel, _ = pack_bytes(build, workers=4)

    assert serial == parallel


def test_non_seekable_output_gets_the_same_bytes_and_reported_digest(tmp_path: Path):
    build = make_build(tmp_path / "b", APP)

    class Pipe:
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def write(self, data: bytes) -> int:
            self.chunks.append(bytes(data))
            return len(data)

    pipe = Pipe()
    result = pack(build, pipe)
    written = b"".join(pipe.chunks)

    assert written == pack_bytes(build)[0]
    assert result.length == len(written)
    assert result.sha256 == sha(written)


def test_packing_an_unchanged_build_twice_is_detectably_a_no_op(tmp_path: Path):
    build = make_build(tmp_path / "b", APP)
    first = pack_bytes(build)[1]
    (build / "index.html").touch()
    second = pack_bytes(build)[1]
    (build / "assets/app.js").write_bytes(b"changed")
    third = pack_bytes(build)[1]

    assert first.sha256 == second.sha256
    assert third.sha256 != first.sha256


# --- readback -------------------------------------------------------------------------------------
def test_bundle_reads_back_with_stdlib_zipfile(tmp_path: Path):
    build = make_build(tmp_path / "b", APP)
    data, result = pack_bytes(build)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names[0] == INDEX_PATH
        assert names[1:] == sorted(APP, key=lambda p: p.encode())
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == stat.S_IFREG | 0o644
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.flag_bits & 0x0800  # UTF-8 names
        for name, content in APP.items():
            assert zf.read(name) == content
        assert Index.from_json(zf.read(INDEX_PATH)) == result.index
    assert result.index.files == tuple(
        FileEntry(p, len(APP[p]), sha(APP[p])) for p in sorted(APP, key=lambda p: p.encode())
    )
    assert result.index.total_size == sum(len(d) for d in APP.values())


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip is not installed")
def test_unzip_test_mode_accepts_the_bundle(tmp_path: Path):
    files = dict(APP)
    files["assets/app.wasm"] = big_file(2 * archive.CHUNK_SIZE + 1)
    files["assets/intro.mp4"] = media(archive.CHUNK_SIZE + 1)
    files["assets/logo.png"] = media(3000)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(pack_bytes(make_build(tmp_path / "b", files))[0])

    run = subprocess.run(["unzip", "-t", str(bundle)], capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "No errors detected" in run.stdout


def test_large_file_is_streamed_in_pieces_never_read_whole(tmp_path: Path, monkeypatch):
    content = big_file(5 * archive.CHUNK_SIZE + 777)
    movie = media(3 * archive.CHUNK_SIZE + 5)
    build = make_build(
        tmp_path / "b", {"index.html": b"<html/>", "big.bin": content, "movie.mp4": movie}
    )
    reads: list[int] = []
    real_read = packing._read_regular

    def spying_read(path: Path, offset: int, length: int) -> bytes:
        reads.append(length)
        return real_read(path, offset, length)

    monkeypatch.setattr(packing, "_read_regular", spying_read)
    monkeypatch.setattr(packing, "_SPOOL_MEMORY", 64 * 1024)  # spill compressed pieces to disk

    data, result = pack_bytes(build, workers=2)

    assert reads
    assert all(0 < size <= archive.CHUNK_SIZE + 32 * 1024 + 1 for size in reads)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("big.bin") == content
        assert zf.read("movie.mp4") == movie
    assert result.index.files[0] == FileEntry("big.bin", len(content), sha(content))


def test_already_compressed_files_are_stored_and_text_is_deflated(tmp_path: Path):
    files = {
        **APP,
        "assets/logo.png": media(5000),
        "assets/hero.jpg": media(700_000, b"hero"),
        "assets/hero@2x.jpg": media(900_000, b"hero@2x"),
        "assets/font.woff2": media(2000, b"font"),
        "assets/intro.mp4": media(2 * archive.CHUNK_SIZE + 99, b"video"),
        "assets/tiny.bin": media(150),  # too short to tell: deflated
        "i18n/ja.json": '{"greeting": "こんにちは、世界。更新があります。"}'.encode() * 40,
        "assets/blob.bin": bytes(range(256)) * 4,  # the first KiB holds all 256 values: stored
    }
    data, _ = pack_bytes(make_build(tmp_path / "b", files))

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        for name, content in files.items():
            assert zf.read(name) == content
    stored = {name for name, i in infos.items() if i.compress_type == zipfile.ZIP_STORED}
    assert stored == {
        "assets/logo.png",
        "assets/hero.jpg",
        "assets/hero@2x.jpg",
        "assets/font.woff2",
        "assets/intro.mp4",
        "assets/blob.bin",
    }
    assert all(infos[name].compress_size == len(files[name]) for name in stored)
    deflated = infos.keys() - stored
    assert all(infos[name].compress_type == zipfile.ZIP_DEFLATED for name in deflated)


def test_file_growing_while_it_is_hashed_is_hashed_to_its_end(tmp_path: Path, monkeypatch):
    content = big_file(300_000)
    build = make_build(tmp_path / "b", {"index.html": b"<html/>", "app.js": content})
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:
        # The size as it was an instant before the file grew to its full length.
        fields = list(real_fstat(fd))
        fields[stat.ST_SIZE] = 1000
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", stale_fstat)
    data, result = pack_bytes(build)

    assert result.index.files[0] == FileEntry("app.js", len(content), sha(content))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("app.js") == content


def test_round_trip_through_extract(tmp_path: Path):
    files = dict(APP)
    files["assets/app.wasm"] = big_file(archive.CHUNK_SIZE + 5)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(pack_bytes(make_build(tmp_path / "b", files))[0])
    dest = tmp_path / "staging" / "1.4.2"

    index = extract(bundle, dest, max_total_size=sum(len(d) for d in files.values()))

    assert index == pack_bytes(tmp_path / "b")[1].index
    extracted = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert extracted == set(files)  # the index itself is not extracted
    for name, content in files.items():
        assert (dest / name).read_bytes() == content
        assert not (dest / name).stat().st_mode & 0o111


def test_extract_into_an_existing_empty_directory(tmp_path: Path):
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(pack_bytes(make_build(tmp_path / "b", APP))[0])
    dest = tmp_path / "dest"
    dest.mkdir()

    extract(bundle, dest, max_total_size=10**6)

    assert (dest / "index.html").read_bytes() == APP["index.html"]


# --- the index ------------------------------------------------------------------------------------
def test_index_json_round_trips_and_is_deterministic():
    index = Index(
        (
            FileEntry("assets/app.js", 10, "a" * 64),
            FileEntry("caf\u00e9.js", 0, "b" * 64),
            FileEntry("index.html", 3, "c" * 64),
        )
    )

    data = index.to_json()

    assert Index.from_json(data) == index
    assert data == index.to_json()
    assert json.loads(data) == {
        "version": 1,
        "files": [
            {"path": "assets/app.js", "size": 10, "sha256": "a" * 64},
            {"path": "caf\u00e9.js", "size": 0, "sha256": "b" * 64},
            {"path": "index.html", "size": 3, "sha256": "c" * 64},
        ],
    }
    assert b" " not in data
    assert index.total_size == 13


def test_index_from_json_ignores_unknown_members():
    doc = {
        "version": 1,
        "future": True,
        "files": [{"path": "a", "size": 1, "sha256": "0" * 64, "x": 1}],
    }
    assert Index.from_json(json.dumps(doc).encode()).files == (FileEntry("a", 1, "0" * 64),)


GOOD = {"path": "a.js", "size": 1, "sha256": "0" * 64}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"{", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"version":1,"version":1,"files":[]}', id="duplicate-key"),
        pytest.param(b'{"version":NaN,"files":[]}', id="nan"),
        pytest.param(b'{"files":[]}', id="no-version"),
        pytest.param(b'{"version":2,"files":[]}', id="future-version"),
        pytest.param(b'{"version":true,"files":[]}', id="bool-version"),
        pytest.param(b'{"version":1,"files":{}}', id="files-not-a-list"),
        pytest.param(b'{"version":1,"files":[1]}', id="entry-not-an-object"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "path": 3}]}), id="path-int"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "path": "../x"}]}), id="dotdot"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "path": "/x"}]}), id="abs"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "path": INDEX_PATH}]}), id="rsv"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "size": -1}]}), id="neg-size"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "size": True}]}), id="bool-size"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "size": "1"}]}), id="str-size"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "sha256": "A" * 64}]}), id="HEX"),
        pytest.param(json.dumps({"version": 1, "files": [{**GOOD, "sha256": "0"}]}), id="short"),
        pytest.param(json.dumps({"version": 1, "files": [GOOD, GOOD]}), id="repeated"),
        pytest.param(
            json.dumps({"version": 1, "files": [{**GOOD, "path": "b"}, {**GOOD, "path": "a"}]}),
            id="unsorted",
        ),
        pytest.param(
            json.dumps({"version": 1, "files": [{**GOOD, "path": "A"}, {**GOOD, "path": "a"}]}),
            id="case-collision",
        ),
    ],
)
def test_malformed_index_is_refused(data: bytes | str):
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(ArchiveError, match="index") as caught:
        Index.from_json(raw)
    assert "publish it again" in caught.value.diagnostics()


def test_index_diff_lists_added_removed_changed_and_size_delta():
    older = Index(
        (
            FileEntry("a.js", 10, "a" * 64),
            FileEntry("b.js", 20, "b" * 64),
            FileEntry("index.html", 5, "c" * 64),
        )
    )
    newer = Index(
        (
            FileEntry("a.js", 12, "d" * 64),
            FileEntry("c.js", 7, "e" * 64),
            FileEntry("index.html", 5, "c" * 64),
        )
    )

    assert newer.diff(older) == IndexDiff(
        added=("c.js",), removed=("b.js",), changed=("a.js",), size_delta=24 - 35
    )
    assert newer.diff(newer) == IndexDiff((), (), (), 0)


# --- hygiene --------------------------------------------------------------------------------------
def refused(build: Path, error: type[Exception] = HygieneError, **kwargs: object) -> str:
    out = io.BytesIO()
    with pytest.raises(error) as caught:
        pack(build, out, **kwargs)  # type: ignore[arg-type]
    assert out.getvalue() == b"", "nothing may be written before hygiene passes"
    return caught.value.diagnostics()  # type: ignore[attr-defined]


def test_missing_build_dir_is_refused(tmp_path: Path):
    message = refused(tmp_path / "dist", InputError)
    assert "does not exist" in message
    assert "run the web build first" in message.lower()


def test_build_path_that_is_a_file_is_refused(tmp_path: Path):
    (tmp_path / "dist").write_text("x")
    assert "not a directory" in refused(tmp_path / "dist", InputError)


def test_empty_build_dir_is_refused(tmp_path: Path):
    (tmp_path / "dist" / "assets").mkdir(parents=True)
    assert "contains no files" in refused(tmp_path / "dist", InputError)


def test_build_without_index_html_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "dist", {"www/index.html": b"x"})
    message = refused(build)
    assert "no index.html" in message
    assert "point otaseal at the folder that holds index.html" in message.lower()


def test_symlinked_file_is_refused_naming_the_path(tmp_path: Path):
    build = make_build(tmp_path / "dist", APP)
    (build / "assets" / "secret.txt").symlink_to("/etc/passwd")
    message = refused(build)
    assert "symlink" in message
    assert "assets/secret.txt" in message
    assert "cp -L" in message


def test_symlinked_directory_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "dist", APP)
    (tmp_path / "elsewhere").mkdir()
    (build / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert "linked" in refused(build)


def test_fifo_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "dist", APP)
    os.mkfifo(build / "pipe")
    message = refused(build)
    assert "special file" in message
    assert "pipe" in message


def test_socket_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "d", APP)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(build / "s"))
        assert "special file" in refused(build)
    finally:
        sock.close()


def test_reserved_otaseal_folder_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, ".OtaSeal/index.json": b"{}"})
    message = refused(build)
    assert "reserved" in message
    assert ".OtaSeal/index.json" in message


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        "config/.env.production",
        "certs/server.pem",
        "server.KEY",
        "cert.p12",
        "cert.pfx",
        "ssh/id_rsa",
        "ssh/id_rsa.pub",
        "id_ed25519",
        "android/release.jks",
        "release.keystore",
        ".npmrc",
    ],
)
def test_file_named_like_a_secret_is_refused(tmp_path: Path, name: str):
    build = make_build(tmp_path / "dist", {**APP, name: b"harmless"})
    message = refused(build)
    assert "look like secrets" in message
    assert name in message
    assert "allow" in message
    assert "rotate" in message


def test_file_containing_a_private_key_is_refused_without_echoing_it(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, "assets/config.js": b"const k = `" + PEM})
    message = refused(build)
    assert "assets/config.js" in message
    assert "private key" in message
    assert "MHcCAQEE" not in message
    assert "BEGIN" not in message


def test_private_key_beyond_the_first_4_kib_is_not_sniffed(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, "vendor.js": b" " * 4096 + PEM})
    assert pack_bytes(build)[1].index.files


def test_allow_pattern_lets_a_flagged_file_ship(tmp_path: Path):
    files = {**APP, "demo/test.pem": b"x", "vendor/forge.js": b"'" + PEM}
    build = make_build(tmp_path / "dist", files)

    _, result = pack_bytes(build, allow=["demo/*.pem", "vendor/forge.js"])

    assert {"demo/test.pem", "vendor/forge.js"} <= {f.path for f in result.index.files}


def test_allow_pattern_only_covers_what_it_matches(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, "demo/test.pem": b"x", "real.pem": b"x"})
    message = refused(build, allow=["demo/*"])
    assert "real.pem" in message
    assert "demo/test.pem" not in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\\b.js", "backslash"),
        ("new\nline.js", "control character"),
        ("C:evil.js", "drive letter"),
    ],
)
def test_file_name_devices_cannot_extract_is_refused(tmp_path: Path, name: str, problem: str):
    build = make_build(tmp_path / "dist", {**APP, name: b"x"})
    message = refused(build)
    assert problem in message
    assert "rename" in message.lower()


def test_file_name_that_is_not_utf8_is_refused(tmp_path: Path):
    build = make_build(tmp_path / "dist", APP)
    fd = os.open(os.fsencode(build) + b"/caf\xe9.js", os.O_WRONLY | os.O_CREAT, 0o644)  # Latin-1
    os.close(fd)
    assert "not valid UTF-8" in refused(build)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("App.js", "app.js"),
        ("caf\u00e9.js", "cafe\u0301.js"),  # NFC and NFD
        ("Assets", "assets/app.js"),  # a file and a directory
    ],
)
def test_names_colliding_on_case_insensitive_devices_are_refused(tmp_path: Path, one, other):
    build = make_build(tmp_path / "dist", {**APP, one: b"1", other: b"2"})
    message = refused(build)
    assert "collide" in message
    assert one in message or other in message


def test_source_maps_give_a_warning_not_an_error(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, "assets/app.js.map": b"{}", "a.css.map": b"{}"})

    result = pack_bytes(build)[1]

    assert len(result.warnings) == 1
    assert "2 source map(s)" in result.warnings[0]
    assert "assets/app.js.map" in result.warnings[0]
    assert not pack_bytes(build, allow=["*.map"])[1].warnings


def test_long_problem_lists_are_shortened(tmp_path: Path):
    build = make_build(tmp_path / "dist", {**APP, **{f"k{i:02}.pem": b"x" for i in range(14)}})
    message = refused(build)
    assert "14 file(s)" in message
    assert "and 4 more" in message


def test_unreadable_directory_is_reported(tmp_path: Path, monkeypatch):
    build = make_build(tmp_path / "dist", APP)

    def denied(path: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", denied)
    assert "Permission denied" in refused(build, InputError)


def test_file_that_stops_being_regular_is_refused(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(HygieneError, match="no longer a regular file"):
        packing._open_fd(tmp_path / "fifo")
    with pytest.raises(InputError, match=r"(?i)cannot read"):
        packing._open_fd(tmp_path / "gone")


@pytest.mark.parametrize(("name", "workers"), [("index.html", 1), ("big.bin", 1), ("big.bin", 2)])
def test_file_changed_while_packing_is_refused(
    tmp_path: Path, monkeypatch, name: str, workers: int
):
    build = make_build(
        tmp_path / "dist", {"index.html": b"<html/>", "big.bin": big_file(archive.CHUNK_SIZE + 9)}
    )
    real = packing._plan

    def plan_then_change(root: Path, paths: list[str], files: list[Path]):
        plan = real(root, paths, files)  # sizes are measured: the file grows before it is read
        with (root / name).open("ab") as f:
            f.write(b"late write")
        return plan

    monkeypatch.setattr(packing, "_plan", plan_then_change)
    with pytest.raises(InputError, match="changed while otaseal was packing it"):
        pack(build, io.BytesIO(), workers=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_file_deleted_while_packing_is_reported(tmp_path: Path, monkeypatch, workers: int):
    build = make_build(tmp_path / "dist", {**APP, "gone.js": b"x"})
    real = packing.scan

    def scan_then_delete(root: Path, allow: object) -> list[str]:
        paths = real(root, allow)  # type: ignore[arg-type]
        (root / "gone.js").unlink()
        return paths

    monkeypatch.setattr(packing, "scan", scan_then_delete)
    with pytest.raises(InputError, match=r"cannot read .*gone\.js: No such file"):
        pack(build, io.BytesIO(), workers=workers)


def test_zero_workers_is_refused(tmp_path: Path):
    assert "workers" in refused(make_build(tmp_path / "d", APP), InputError, workers=0)


def test_too_many_files_are_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(hygiene, "MAX_ENTRIES", 3)
    assert "fewer than 3 files" in refused(make_build(tmp_path / "d", APP), InputError)


def test_file_too_large_for_zip32_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(packing, "ZIP32_MAX", 1000)
    build = make_build(tmp_path / "d", {**APP, "movie.mp4": os.urandom(1001)})
    assert "4 GiB" in refused(build, InputError)


@pytest.mark.parametrize("limit", [1500, 2200])
def test_bundle_growing_beyond_zip32_is_refused(tmp_path: Path, monkeypatch, limit: int):
    # 1500 stops at a local header; 2200 fits every entry but not the central directory.
    monkeypatch.setattr(packing, "ZIP32_MAX", limit)
    build = make_build(tmp_path / "d", {"index.html": os.urandom(900), "b.bin": os.urandom(900)})
    with pytest.raises(InputError, match="beyond 4 GiB"):
        pack(build, io.BytesIO())


def test_bundle_outgrowing_zip32_stops_before_compressing_the_rest(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(packing, "ZIP32_MAX", 1500)
    files = {"index.html": os.urandom(900), **{f"m{i:03}.bin": os.urandom(900) for i in range(130)}}
    compressed: list[str] = []
    real = packing._compress_piece

    def counting(piece: packing._Piece) -> packing._Compressed:
        compressed.append(piece.path)
        return real(piece)

    monkeypatch.setattr(packing, "_compress_piece", counting)
    with pytest.raises(InputError, match="beyond 4 GiB"):
        pack(make_build(tmp_path / "d", files), io.BytesIO(), workers=1)
    assert len(compressed) < len(files)


# --- extraction edge cases that are not attacks --------------------------------------------------
@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.zip"
    path.write_bytes(pack_bytes(make_build(tmp_path / "b", APP))[0])
    return path


def test_extract_refuses_a_non_empty_destination(tmp_path: Path, bundle: Path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        extract(bundle, dest, max_total_size=10**6)
    assert (dest / "keep.txt").read_text() == "mine"


def test_extract_refuses_a_destination_that_is_a_file(tmp_path: Path, bundle: Path):
    (tmp_path / "dest").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        extract(bundle, tmp_path / "dest", max_total_size=10**6)


def test_extract_reports_a_destination_it_cannot_create(tmp_path: Path, bundle: Path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match=r"(?i)cannot create the extraction directory"):
        extract(bundle, tmp_path / "file.txt" / "dest", max_total_size=10**6)


def test_extract_reports_a_missing_bundle(tmp_path: Path):
    with pytest.raises(InputError, match=r"(?i)cannot read"):
        extract(tmp_path / "nope.zip", tmp_path / "dest", max_total_size=10**6)
    assert not (tmp_path / "dest").exists()


def test_extract_reports_a_destination_it_cannot_write(tmp_path: Path, bundle: Path, monkeypatch):
    real_open = os.open
    created: list[object] = []

    def full_disk(path: object, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            created.append(path)
            if len(created) > 2:
                raise OSError(28, "No space left on device")
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", full_disk)
    dest = tmp_path / "new" / "dest"
    with pytest.raises(InputError, match="No space left"):
        extract(bundle, dest, max_total_size=10**6)
    assert not (tmp_path / "new").exists()


def test_extract_refuses_a_file_that_is_not_a_zip(tmp_path: Path):
    (tmp_path / "x.zip").write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        extract(tmp_path / "x.zip", tmp_path / "dest", max_total_size=10**6)
    assert not (tmp_path / "dest").exists()


# --- extraction on several threads ---------------------------------------------------------------
def many_files(count: int) -> dict[str, bytes]:
    """A build of ``count`` files in nested folders, some text and some media, several batches."""
    files = {"index.html": APP["index.html"]}
    for i in range(count - 1):
        folder = f"assets/chunk{i % 7}/part{i % 3}"
        if i % 5:
            files[f"{folder}/mod{i:03}.js"] = b"export const n = %d;\n" % i * (i % 50 + 1)
        else:
            files[f"{folder}/img{i:03}.webp"] = media(600 + i * 37, b"%d" % i)
    return files


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_extraction_writes_the_same_files_whatever_the_worker_count(tmp_path: Path, workers: int):
    files = many_files(150)
    bundle = tmp_path / "bundle.zip"
    data, result = pack_bytes(make_build(tmp_path / "b", files))
    bundle.write_bytes(data)
    dest = tmp_path / "www"

    index = extract(bundle, dest, max_total_size=result.index.total_size, workers=workers)

    assert index == result.index
    extracted = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    assert extracted.keys() == files.keys()
    assert all(extracted[name].read_bytes() == content for name, content in files.items())


def test_extract_refuses_zero_workers(tmp_path: Path, bundle: Path):
    with pytest.raises(InputError, match="workers"):
        extract(bundle, tmp_path / "dest", max_total_size=10**6, workers=0)
    assert not (tmp_path / "dest").exists()


def test_extract_reports_a_folder_it_cannot_create(tmp_path: Path, bundle: Path, monkeypatch):
    dest = tmp_path / "dest"
    dest.mkdir()

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(InputError, match="cannot create .*Permission denied"):
        extract(bundle, dest, max_total_size=10**6)
    assert not any(dest.iterdir())


def test_a_bad_file_on_one_thread_stops_the_others_and_nothing_stays(tmp_path: Path, monkeypatch):
    bundle = tmp_path / "bundle.zip"
    data, result = pack_bytes(make_build(tmp_path / "b", many_files(200)))
    bundle.write_bytes(data)
    bad, other = result.index.files[0].path, result.index.files[extraction._EXTRACT_BATCH].path
    other_written, failing = threading.Event(), threading.Event()
    started: list[str] = []
    real = extraction._extract_file

    def extract_file(zf, info, entry: FileEntry, dest: Path) -> None:
        started.append(entry.path)
        if entry.path == bad:  # the first batch fails once the second has written a file
            assert other_written.wait(10)
            failing.set()
            raise extraction._refuse(bad, "does not match the SHA-256 in the index")
        real(zf, info, entry, dest)
        if entry.path == other:
            other_written.set()
            assert failing.wait(10)
            time.sleep(0.2)  # the failing thread raises its flag within microseconds

    monkeypatch.setattr(extraction, "_extract_file", extract_file)
    dest = tmp_path / "www"
    with pytest.raises(ArchiveError, match="does not match the SHA-256"):
        extract(bundle, dest, max_total_size=10**9, workers=2)

    assert sorted(started) == sorted([bad, other])  # no thread started another file
    assert not dest.exists()


def test_extract_reads_entries_whose_local_header_carries_an_extra_field(tmp_path: Path):
    """Other zip writers add extra fields (timestamps); the data starts after them."""
    files = {"index.html": APP["index.html"], "app.js": b"let x = 1;\n" * 4000}
    index = Index(tuple(FileEntry(p, len(d), sha(d)) for p, d in sorted(files.items()))).to_json()
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(INDEX_PATH, index)
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.extra = b"UT\x05\x00\x01\x00\x00\x00\x00"  # extended timestamp, 9 bytes
            zf.writestr(info, data)
    extract(bundle, tmp_path / "www", max_total_size=10**6)
    assert {p: (tmp_path / "www" / p).read_bytes() for p in files} == files


def test_the_fast_name_check_agrees_with_every_name_rule():
    """Most names are answered by one regex; it must never accept what a rule refuses."""

    pieces = ["a", "B", "é", ".", "..", "/", "\\", ":", "\x00", "\x1f", "\x7f", " ", "\ud800", "C:"]
    rng = random.Random(20261123)  # noqa: S311 - reproducible names, not secrets

    def by_rules(path: str) -> str | None:
        return next((problem for test, problem in paths._NAME_RULES if test(path)), None)

    names = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(30_000)]
    names += ["a" * 20_000, "é" * 16_383, "é" * 16_384 + "/x"]
    assert [paths.name_problem(n) for n in names] == [by_rules(n) for n in names]
    assert sum(paths.name_problem(n) is None for n in names) > 1_000  # both paths were taken
