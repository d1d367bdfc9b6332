"""Extract: check a bundle's zip against its index and unpack it safely.

The zip is treated as hostile even after its digest was verified: a signed bundle may still have
been made by someone else's tool, or by an attacker who holds a signing key. Nothing is written
before every entry passes the name and type rules of SPEC §14, and a failure removes everything
written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import struct
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from otaseal.archive.index import INDEX_PATH, MAX_INDEX_SIZE, FileEntry, Index
from otaseal.archive.paths import is_reserved, name_problem
from otaseal.archive.workers import thread_count
from otaseal.archive.zipfmt import (
    ALLOWED_FLAGS,
    DOS_DIRECTORY,
    ENCRYPTION_FLAGS,
    FLAG_UTF8,
    LOCAL,
    LOCAL_SIGNATURE,
)
from otaseal.errors import ArchiveError, InputError
from otaseal.progress import NO_PROGRESS

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from otaseal.progress import Progress

_EXTRACT_READ_SIZE = 256 << 10
_REPORT_SIZE = 1 << 20  # bytes written between two progress reports, at most
_EXTRACT_BATCH = 32  # files per thread hand-off when extracting

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    NotImplementedError,
    ValueError,
    struct.error,
)


def extract(
    zip_path: Path,
    dest: Path,
    *,
    max_total_size: int,
    workers: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> Index:
    """Check ``zip_path`` against its index and unpack it into the empty ``dest``.

    Nothing is written unless every entry passes the name and type rules and the index fits
    ``max_total_size``; if a file then fails its size or hash, everything written is removed.
    Files are written by ``workers`` threads (default: one per CPU), which tell ``progress``
    about every MiB or batch of files written.
    """
    threads = thread_count(workers)
    _check_dest(dest)
    with _reading(), _open_zip(zip_path) as zf:
        infos = zf.infolist()
        _check_entries(infos)
        index = _read_index(zf, infos[0])
        by_name = _match_index(infos, index)
        if index.total_size > max_total_size:
            raise ArchiveError(
                f"the bundle unpacks to {index.total_size} bytes",
                expected=f"at most {max_total_size} bytes, the size the release was signed with",
                fix="the bundle does not belong to this release; publish it again",
            )
        created = _make_dest(dest)
        try:
            _make_folders(dest, index.files)
            jobs = [(entry, by_name[entry.path]) for entry in index.files]
            progress.start("unpacking", files=len(jobs), size=index.total_size)
            _write_files(zf, dest, jobs, threads, progress)
        except BaseException:
            _undo(dest, created)
            raise
    return index


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except _ZIP_ERRORS as exc:
        raise ArchiveError(
            f"the bundle is not a readable zip ({type(exc).__name__}: {exc})",
            expected="a zip written by otaseal pack",
            fix="the bundle is damaged or forged; publish it again",
        ) from None


def _open_zip(zip_path: Path, kind: type[zipfile.ZipFile] = zipfile.ZipFile) -> zipfile.ZipFile:
    try:
        return kind(zip_path)
    except OSError as exc:
        raise InputError(
            f"cannot read {zip_path}: {exc.strerror}",
            expected="a readable bundle file",
            fix="check the path",
        ) from None


def _refuse(name: str, problem: str) -> ArchiveError:
    return ArchiveError(
        f"the bundle's zip entry {name!r} {problem}",
        expected="relative UTF-8 paths of regular, unencrypted stored or deflated files, "
        "each listed once in the index",
        fix="the bundle was not made by otaseal pack or was tampered with; do not install it",
    )


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    bad_name = name_problem(info.orig_filename)
    if bad_name is not None:
        return f"has a name that {bad_name}"
    mode = info.external_attr >> 16
    checks = (  # messages are formatted only for the entry that fails: this runs per entry
        (info.flag_bits & ENCRYPTION_FLAGS, "is encrypted"),
        (info.flag_bits & ~ALLOWED_FLAGS, "uses unsupported zip flags 0x{flags:04x}"),
        (
            info.compress_type not in {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED},
            "uses compression method {method}, not stored (0) or deflate (8)",
        ),
        (stat.S_ISLNK(mode), "is a symlink"),
        (
            stat.S_IFMT(mode) not in {0, stat.S_IFREG} or info.external_attr & DOS_DIRECTORY,
            "is not a regular file",
        ),
    )
    failed = next((problem for bad, problem in checks if bad), None)
    return failed and failed.format(flags=info.flag_bits, method=info.compress_type)


def _check_entries(infos: Sequence[zipfile.ZipInfo]) -> None:
    """Refuse entries that no otaseal zip holds.

    Names that collide on a case-insensitive file system are refused by the index's own check;
    the zip's names must then equal the index's (:func:`_match_index`).
    """
    if not infos or infos[0].orig_filename != INDEX_PATH:
        where = "missing"
        if any(i.orig_filename == INDEX_PATH for i in infos):
            where = "not the first entry"
        raise _refuse(INDEX_PATH, f"is {where}")
    if infos[0].header_offset != 0:
        raise _refuse(INDEX_PATH, "does not start the file (data precedes the zip)")
    seen: set[str] = set()
    for info in infos:
        name = info.orig_filename
        problem = _entry_problem(info)
        if problem is None and name in seen:
            problem = "appears more than once"
        if problem is None and info is not infos[0] and is_reserved(name):
            problem = "is under the reserved .otaseal/ folder"
        if problem is not None:
            raise _refuse(name, problem)
        seen.add(name)


def _read_index(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Index:
    with zf.open(info) as src:
        data = src.read(MAX_INDEX_SIZE + 1)
    if len(data) > MAX_INDEX_SIZE:
        raise _refuse(INDEX_PATH, f"is larger than {MAX_INDEX_SIZE} bytes")
    return Index.from_json(data)


def _match_index(infos: Sequence[zipfile.ZipInfo], index: Index) -> dict[str, zipfile.ZipInfo]:
    by_name = {i.orig_filename: i for i in infos[1:]}
    listed = {f.path for f in index.files}
    extra = sorted(by_name.keys() - listed)
    if extra:
        raise _refuse(extra[0], f"is not in the index ({len(extra)} such entries)")
    missing = sorted(listed - by_name.keys())
    if missing:
        raise _refuse(missing[0], f"is in the index but not in the zip ({len(missing)} missing)")
    for entry in index.files:  # a zip that disagrees with itself unpacks differently elsewhere
        if by_name[entry.path].file_size != entry.size:
            size = by_name[entry.path].file_size
            raise _refuse(
                entry.path, f"is {size} bytes by the zip's directory, {entry.size} by the index"
            )
    return by_name


def _check_dest(dest: Path) -> None:
    problem = ""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        problem = "is not a directory"
    elif dest.exists() and any(dest.iterdir()):
        problem = "is not empty"
    if problem:
        raise InputError(
            f"the extraction directory {dest} {problem}",
            expected="an empty or not yet existing directory",
            fix="extract into a fresh directory",
        )


def _make_dest(dest: Path) -> Path | None:
    """Create ``dest``; return the topmost directory created, to remove on failure."""
    if dest.exists():
        return None
    top = dest
    while not top.parent.exists():
        top = top.parent
    try:
        dest.mkdir(parents=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the extraction directory {dest}: {exc.strerror}",
            expected="a path where otaseal may create a directory",
            fix="extract somewhere writable",
        ) from None
    return top


def _undo(dest: Path, created: Path | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink()


def _make_folders(dest: Path, files: Sequence[FileEntry]) -> None:
    """Create every folder the files need before any file is written, so writers never race."""
    made: set[str] = set()
    try:
        for entry in files:
            folder = entry.path.rpartition("/")[0]
            if not folder or folder in made:
                continue
            segments = folder.split("/")
            for depth in range(1, len(segments) + 1):
                key = "/".join(segments[:depth])
                if key not in made:
                    (dest / key).mkdir()  # never exist_ok: dest started empty, so each is ours
                    made.add(key)
    except OSError as exc:
        raise InputError(
            f"cannot create {exc.filename}: {exc.strerror}",
            expected="a writable extraction directory",
            fix="fix the directory's permissions",
        ) from None


_Job = tuple[FileEntry, zipfile.ZipInfo]


def _write_files(
    zf: zipfile.ZipFile, dest: Path, jobs: Sequence[_Job], threads: int, progress: Progress
) -> None:
    """Write every file, in batches on ``threads`` threads; the first failure stops them all.

    Entries are read with ``os.pread`` on the zip's descriptor, shared by the threads: no seeks
    to race on, and no per-entry file object (zipfile's readers cost more than writing a small
    file). zipfile only parses the central directory, which was checked before this runs.
    """
    if zf.fp is None:  # pragma: no cover - an open ZipFile always has its file
        raise ValueError(zf.filename)
    _write_batches(zf.fp.fileno(), dest, jobs, threads, progress)


def _write_batches(
    fd: int, dest: Path, jobs: Sequence[_Job], threads: int, progress: Progress
) -> None:
    batches = [jobs[at : at + _EXTRACT_BATCH] for at in range(0, len(jobs), _EXTRACT_BATCH)]
    if threads == 1 or len(batches) <= 1:
        _write_batch(fd, dest, jobs, threading.Event(), progress)
        return
    failed = threading.Event()

    def work(batch: Sequence[_Job]) -> None:
        try:
            _write_batch(fd, dest, batch, failed, progress)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(min(threads, len(batches))) as pool:
        futures = [pool.submit(work, batch) for batch in batches]
        try:
            for future in futures:
                future.result()  # a batch stopped by another's failure returns; the failure raises
        except BaseException:
            failed.set()
            for future in futures:
                future.cancel()
            raise
    # Leaving the pool waited for every running batch, so nothing writes after this returns.


def _write_batch(
    fd: int, dest: Path, jobs: Sequence[_Job], failed: threading.Event, progress: Progress
) -> None:
    files = size = 0
    for entry, info in jobs:
        if failed.is_set():
            return
        _extract_file(fd, info, entry, dest)
        files, size = files + 1, size + entry.size
        if size >= _REPORT_SIZE:  # a report per MiB at most, or per batch of small files
            progress.advance(files, size)
            files = size = 0
    progress.advance(files, size)


_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _extract_file(fd: int, info: zipfile.ZipInfo, entry: FileEntry, dest: Path) -> None:
    """Write one file, stopping one byte past its indexed size, and check its hash."""
    sha, crc = hashlib.sha256(), 0
    written = 0
    try:
        out = os.open(f"{dest}/{entry.path}", _CREATE, 0o644)
        try:
            for chunk in _contents(fd, info, entry.size + 1):
                written += len(chunk)
                if written > entry.size:
                    break
                sha.update(chunk)
                crc = zlib.crc32(chunk, crc)
                _write_all(out, chunk)
        finally:
            os.close(out)
    except OSError as exc:
        raise InputError(
            f"cannot write {entry.path} under {dest}: {exc.strerror}",
            expected="a writable extraction directory with enough free space",
            fix="free some space or fix the directory's permissions",
        ) from None
    if written != entry.size:
        raise _refuse(
            entry.path,
            f"unpacks to {'more' if written > entry.size else 'fewer'} "
            f"than the {entry.size} bytes its index entry says",
        )
    if sha.hexdigest() != entry.sha256:
        raise _refuse(entry.path, "does not match the SHA-256 in the index")
    if crc != info.CRC:  # the index is the authority; a wrong CRC-32 would fail other readers
        raise _refuse(entry.path, "does not match its CRC-32")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _contents(fd: int, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The entry's plaintext, in pieces, ending at or soon after ``limit`` bytes.

    A small entry costs one ``pread`` for its local header and data together. The output is
    bounded before it is produced: a deflate stream that would inflate past ``limit`` is never
    inflated further, however small it is.
    """
    raw = _raw(fd, info)
    if info.compress_type == zipfile.ZIP_STORED:
        yield from raw
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    for piece in raw:
        data = piece
        while data and produced < limit:
            chunk = inflater.decompress(data, min(limit - produced, _EXTRACT_READ_SIZE))
            produced += len(chunk)
            data = inflater.unconsumed_tail
            yield chunk
    if produced < limit and not inflater.eof:
        raise _refuse(info.orig_filename, "has a deflate stream that ends too early")


def _raw(fd: int, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The entry's stored bytes, after checking its local header against the directory."""
    name = info.orig_filename.encode("utf-8" if info.flag_bits & FLAG_UTF8 else "cp437")
    head = LOCAL.size + len(name)
    block = os.pread(fd, head + min(info.compress_size, _EXTRACT_READ_SIZE), info.header_offset)
    fields = LOCAL.unpack_from(block) if len(block) >= head else None
    if (
        fields is None
        or fields[0] != LOCAL_SIGNATURE
        or fields[9] != len(name)
        or block[LOCAL.size : head] != name
    ):
        raise _refuse(info.orig_filename, "has a local header that does not match the directory")
    extra = fields[10]
    first = b"" if extra else block[head:]
    at = info.header_offset + head + extra + len(first)
    left = info.compress_size - len(first)
    if first:
        yield first
    while left > 0:
        piece = os.pread(fd, min(left, _EXTRACT_READ_SIZE), at)
        if not piece:
            raise _refuse(info.orig_filename, "runs past the end of the bundle")
        at, left = at + len(piece), left - len(piece)
        yield piece
