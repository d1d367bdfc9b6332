"""The plaintext bundle: a deterministic zip of a web build, its file index, hygiene, extraction.

Same files in, same bytes out, whatever the mtimes, modes, listing order or worker count: that is
what makes a no-op release detectable and a build reproducible. The zip container is written here
rather than by :mod:`zipfile` (docs/adr/0003-own-zip-writer.md): the stdlib cannot store entries
compressed on other threads, and a non-seekable output needs each entry's CRC and sizes before its
local header. Extraction treats the zip as hostile even after its digest was verified.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
import unicodedata
import zipfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from otaseal import jsonread
from otaseal.errors import ArchiveError, HygieneError, InputError
from otaseal.progress import NO_PROGRESS

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
    from concurrent.futures import Future

    from _typeshed import SupportsWrite

    from otaseal.progress import Progress

__all__ = [
    "INDEX_PATH",
    "FileEntry",
    "Index",
    "IndexDiff",
    "PackResult",
    "extract",
    "pack",
    "path_problem",
]

INDEX_PATH = ".otaseal/index.json"
INDEX_VERSION = 1
MAX_INDEX_SIZE = 64 << 20
"""Largest index.json extraction accepts (about 500 000 files); it is not part of the budget."""

# The next values shape the output bytes: changing one changes every bundle's digest.
COMPRESSION_LEVEL = 6
CHUNK_SIZE = 1 << 20
"""Files above this size are deflated in pieces of this size on several threads."""
_DICT_SIZE = 32 << 10  # each piece is primed with the 32 KiB before it, as pigz does
_STORE_SNIFF = 1024
_STORE_DISTINCT = 200
"""A file whose first 1 KiB holds this many distinct byte values is stored, not deflated: it is
already compressed (png, jpg, woff2, video), and deflate would spend time to gain nothing."""

_SPOOL_MEMORY = 4 << 20  # compressed bytes kept in memory before spilling to a temporary file
_READ_SIZE = 1 << 20
_BATCH_FILES = 64  # small files per thread hand-off
_EXTRACT_READ_SIZE = 256 << 10
_EXTRACT_BATCH = 32  # files per thread hand-off when extracting
_SNIFF_SIZE = 4096
_SHOWN = 10  # paths listed in one message

_ZIP32_MAX = 0xFFFFFFFE  # 0xFFFFFFFF means "see ZIP64", which we neither write nor need
_MAX_ENTRIES = 0xFFFE
_MAX_NAME = 0xFFFF
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION_NEEDED = 20  # 2.0: deflate
_VERSION_MADE_BY = (3 << 8) | 20  # Unix, so readers honour the mode in external_attr
_FLAG_UTF8 = 0x0800
_DOS_TIME = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16
_DOS_DIRECTORY = 0x10
_ENCRYPTION_FLAGS = 0x0001 | 0x0040 | 0x2000  # traditional, strong, masked central directory
_ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | _FLAG_UTF8  # deflate options, descriptor, UTF-8

_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "*.jks",
    "*.keystore",
    ".npmrc",
)
_SECRET_NAME = re.compile("|".join(fnmatch.translate(pattern) for pattern in _SECRET_NAMES))
_FOLDED_RESERVED = ".otaseal"

_T = TypeVar("_T")
_R = TypeVar("_R")


# --- the index -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the build: its posix path relative to the build root, size and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class IndexDiff:
    """What changed between two releases, for the PR comment."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    size_delta: int


@dataclass(frozen=True, slots=True)
class Index:
    """Every file of a bundle, sorted by UTF-8 path; stored as the zip's first entry."""

    files: tuple[FileEntry, ...]

    @property
    def total_size(self) -> int:
        """Bytes the files take once extracted."""
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        """Compact JSON with sorted keys: the same index always gives the same bytes."""
        doc = {
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "version": INDEX_VERSION,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Index:
        """Parse and validate an index; raise :class:`ArchiveError` if anything is off."""
        try:
            doc = jsonread.loads(data)
        except jsonread.JsonError as exc:
            raise _malformed(exc.detail) from None
        if not isinstance(doc, dict):
            raise _malformed("the top level is not an object")
        if jsonread.integer(doc.get("version")) != INDEX_VERSION:
            raise _malformed(f'"version" is not {INDEX_VERSION}')
        items = doc.get("files")
        if not isinstance(items, list):
            raise _malformed('"files" is not a list')
        files: list[FileEntry] = []
        previous = b""
        for item in items:
            entry = _parse_entry(item)
            key = entry.path.encode()
            if key <= previous:
                raise _malformed(f"path {entry.path!r} is out of order or repeated")
            previous = key
            files.append(entry)
        clash = _collision(f.path for f in files)
        if clash is not None:
            raise _malformed(f"paths {clash[0]!r} and {clash[1]!r} collide when case is ignored")
        return cls(tuple(files))

    def diff(self, older: Index) -> IndexDiff:
        """Paths added, removed and changed since ``older``, and the change in total size."""
        old = {f.path: f for f in older.files}
        new = {f.path: f for f in self.files}
        return IndexDiff(
            added=tuple(p for p in new if p not in old),
            removed=tuple(p for p in old if p not in new),
            changed=tuple(p for p, f in new.items() if p in old and old[p] != f),
            size_delta=self.total_size - older.total_size,
        )


def _parse_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise _malformed("a file entry is not an object")
    path, size, digest = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str):
        raise _malformed('a file entry has no string "path"')
    problem = _name_problem(path) or ("is reserved" if _is_reserved(path) else None)
    if problem is not None:
        raise _malformed(f"path {path!r} {problem}")
    number = jsonread.integer(size)
    if number is None:
        raise _malformed(f'"size" of {path!r} is not an integer from 0 to 2^53−1')
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise _malformed(f'"sha256" of {path!r} is not 64 lowercase hex digits')
    return FileEntry(path, number, digest)


def _malformed(detail: str) -> ArchiveError:
    return ArchiveError(
        f"the bundle's index ({INDEX_PATH}) is malformed: {detail}",
        expected='{"version": 1, "files": [{"path", "size", "sha256"}, ...]} sorted by path',
        fix="the bundle was not made by otaseal or is damaged; publish it again",
    )


# --- entry names: one set of rules binds pack and extract ----------------------------------------
def _not_utf8(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return True
    return False


_NAME_RULES: tuple[tuple[Callable[[str], object], str], ...] = (
    (lambda p: not p, "is empty"),
    (lambda p: "\x00" in p, "contains a NUL byte"),
    (lambda p: "\\" in p, "contains a backslash"),
    (_CONTROL.search, "contains a control character"),
    (lambda p: p.startswith("/"), "is an absolute path"),
    (_DRIVE.match, "starts with a drive letter"),
    (lambda p: "" in p.split("/"), "has an empty segment"),
    (lambda p: not {".", ".."}.isdisjoint(p.split("/")), "has a '.' or '..' segment"),
    (_not_utf8, "is not valid UTF-8"),
    (lambda p: len(p.encode()) > _MAX_NAME, "is longer than 65535 bytes"),
)


# Names that pass every rule above, matched at once: segments of characters that are neither
# "/", "\\", ":", a control character nor a lone surrogate, none of them "." or "..". Every
# name is checked on pack and twice on extract; the rules run only for what this does not match.
_PLAIN_NAME = re.compile(
    r"(?:(?!\.\.?/)[^/\\:\x00-\x1f\x7f\ud800-\udfff]+/)*"
    r"(?!\.\.?\Z)[^/\\:\x00-\x1f\x7f\ud800-\udfff]+\Z"
)
_PLAIN_MAX = _MAX_NAME // 4  # characters; UTF-8 takes at most 4 bytes for each


def _name_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file in a bundle, or None; rules apply in order."""
    if len(path) <= _PLAIN_MAX and _PLAIN_NAME.match(path):
        return None
    return next((problem for test, problem in _NAME_RULES if test(path)), None)


def _fold(path: str) -> str:
    """Canonical caseless form: how case- and normalization-insensitive filesystems compare."""
    if path.isascii():  # NFD leaves ASCII alone and casefold() is lower() there: 10x faster
        return path.lower()
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())


def _is_reserved(path: str) -> bool:
    return _fold(path.split("/", 1)[0]) == _FOLDED_RESERVED


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a bundle (SPEC §14, reserved folder included), or None."""
    return _name_problem(path) or ("is reserved" if _is_reserved(path) else None)


def _collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """First pair of paths that would land on the same file or directory on a device, or None."""
    files: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for path in paths:
        key = _fold(path)
        other = files.get(key, dirs.get(key))
        if other is not None:
            return other, path
        parent = ""
        for segment in key.split("/")[:-1]:
            parent = f"{parent}/{segment}" if parent else segment
            if parent in files:
                return files[parent], path
            dirs.setdefault(parent, path)
        files[key] = path
    return None


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    more = len(paths) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


# --- pack ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PackResult:
    """The index written into the zip, warnings for the user, and the zip's length and SHA-256."""

    index: Index
    warnings: tuple[str, ...]
    length: int
    sha256: str


@dataclass(frozen=True, slots=True)
class _Hygiene:
    label: str
    expected: str
    fix: str


_HYGIENE = {
    "symlink": _Hygiene(
        "symlink(s)",
        "regular files only: a symlink can point outside the build, and devices install only "
        "the bytes inside the bundle",
        "replace each symlink with the file it points to (copy with `cp -L`) or make the build "
        "write plain files",
    ),
    "special": _Hygiene(
        "special file(s) (fifo, socket or device)",
        "regular files only",
        "remove them from the build directory",
    ),
    "reserved": _Hygiene(
        "path(s) under the reserved .otaseal/ folder",
        ".otaseal/ to be absent: the bundle keeps its own index there",
        "rename or remove the .otaseal folder in the build",
    ),
    "name": _Hygiene(
        "file name(s) that devices cannot extract safely",
        "UTF-8 names without backslashes, control characters or drive letters",
        "rename these files in the build",
    ),
    "collision": _Hygiene(
        "file names that collide on case-insensitive filesystems (iOS, macOS, some Android)",
        "paths that stay distinct when case and Unicode normalization are ignored",
        "rename one file of each pair",
    ),
    "secret": _Hygiene(
        "file(s) that look like secrets",
        "no credentials in a web bundle: anyone who has the app can read every file in it",
        "remove them from the build output and rotate any key that shipped before; if a file is "
        "a false positive, add a pattern matching its path to `allow:` in otaseal.yml or "
        "pass `--allow-file PATTERN`",
    ),
}


@dataclass(frozen=True, slots=True)
class _Digest:
    """What the single pass over one file learned: the index entry and the zip entry."""

    size: int
    sha256: str
    crc: int
    has_private_key: bool
    stored: bool
    compressed: int
    offset: int  # of the entry's local header, from the first entry after the index


@dataclass(frozen=True, slots=True)
class _Piece:
    file: int
    path: str
    offset: int
    length: int
    last: bool
    whole: bool
    stored: bool | None  # None: decide from the file's first KiB (whole files only)


@dataclass(frozen=True, slots=True)
class _Compressed:
    piece: _Piece
    parts: tuple[bytes, bytes]
    crc: int
    raw: memoryview
    size: int
    stored: bool
    sha256: str  # whole files only; the caller hashes the pieces of a large file in order
    has_private_key: bool  # pieces that start a file only


def pack(
    build_dir: Path,
    out: SupportsWrite[bytes],
    *,
    allow: Sequence[str] = (),
    workers: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> PackResult:
    """Write the deterministic bundle of ``build_dir`` to ``out``; never seeks ``out``.

    Each file is read once: the threads that compress it also hash it. The compressed entries
    wait in a spool until the index, which comes first in the zip and needs every hash, is
    written. Hygiene is checked before the first byte is written. If a file changes size while
    it is packed, or the bundle outgrows 4 GiB, what was written to ``out`` is unusable.
    ``progress`` hears of each batch of files packed, then of each MiB written to ``out``.
    """
    threads = _threads(workers)
    root = _check_build_dir(build_dir)
    paths = _scan(root, allow)
    files = [f"{root}/{p}" for p in paths]  # str, not Path: ~300 bytes less per file
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(threads)) if threads > 1 else None
        spool = stack.enter_context(contextlib.closing(_Spool()))
        plan = _plan(root, paths, files)
        progress.start("packing", files=len(files), size=sum(size for size, _ in plan))
        digests = _compress_all(
            pool, paths, files, plan, spool, window=4 * threads, progress=progress
        )
        _check_contents(root, paths, digests, allow)
        index = Index(
            tuple(FileEntry(p, d.size, d.sha256) for p, d in zip(paths, digests, strict=True))
        )
        progress.start("writing the bundle", size=spool.size)
        sink = _Sink(out, progress)
        _write_zip(sink, index, digests, spool)
        sink.flush()
    return PackResult(index, _warnings(paths, allow), sink.length, sink.sha256.hexdigest())


def _threads(workers: int | None) -> int:
    threads = (os.cpu_count() or 1) if workers is None else workers
    if threads < 1:
        raise InputError(f"workers is {threads}", expected="at least 1", fix="pass workers >= 1")
    return threads


def _check_build_dir(build_dir: Path) -> Path:
    what = ""
    if not build_dir.exists():
        what = f"the build directory {build_dir} does not exist"
    elif not build_dir.is_dir():
        what = f"the build path {build_dir} is not a directory"
    if what:
        raise InputError(
            what,
            expected="the folder your web build writes (for example dist/ or www/)",
            fix="run the web build first, or point otaseal at its output folder",
        )
    return build_dir


def _scan(root: Path, allow: Sequence[str]) -> list[str]:
    """Regular files under ``root`` sorted by UTF-8 path; raise on anything that must not ship."""
    problems: dict[str, list[str]] = {kind: [] for kind in _HYGIENE}
    files = _walk(root, problems)
    files.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    for path in files:
        problem = _name_problem(path)
        if problem is not None:
            problems["name"].append(f"{path.encode('utf-8', 'surrogateescape')!r} ({problem})")
        elif _is_reserved(path):
            problems["reserved"].append(path)
        elif _is_secret_name(path) and not _allowed(path, allow):
            problems["secret"].append(f"{path} (its name)")
    if not problems["name"]:
        clash = _collision(files)
        if clash is not None:
            problems["collision"].append(f"{clash[0]} and {clash[1]}")
    _raise_hygiene(root, problems)
    _check_shape(root, files)
    return files


def _walk(root: Path, problems: dict[str, list[str]]) -> list[str]:
    files: list[str] = []
    stack = [("", root)]
    try:
        while stack:
            prefix, folder = stack.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = prefix + entry.name
                    if entry.is_symlink():
                        problems["symlink"].append(path)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((path + "/", Path(entry.path)))
                    elif entry.is_file(follow_symlinks=False):
                        files.append(path)
                    else:
                        problems["special"].append(path)
    except OSError as exc:
        raise InputError(
            f"cannot list {exc.filename}: {exc.strerror}",
            expected="a build directory readable by the user running otaseal",
            fix="fix the permissions of the build output",
        ) from None
    return files


def _raise_hygiene(root: Path, problems: dict[str, list[str]]) -> None:
    for kind, paths in problems.items():
        if paths:
            rule = _HYGIENE[kind]
            paths.sort()
            raise HygieneError(
                f"the build directory {root} contains {len(paths)} {rule.label}: "
                + _listing(paths),
                expected=rule.expected,
                fix=rule.fix,
            )


def _check_shape(root: Path, files: list[str]) -> None:
    if not files:
        raise InputError(
            f"the build directory {root} contains no files",
            expected="the output of your web build",
            fix="run the web build before packing, and check the directory it writes to",
        )
    if "index.html" not in files:
        raise HygieneError(
            f"the build directory {root} has no index.html at its root",
            expected="index.html at the top of the build: the app loads it first",
            fix="point otaseal at the folder that holds index.html (for example dist/ or www/)",
        )
    if len(files) >= _MAX_ENTRIES:
        raise InputError(
            f"the build directory {root} holds {len(files)} files",
            expected=f"fewer than {_MAX_ENTRIES} files in one bundle",
            fix="leave out files the app does not load (source maps, unused assets)",
        )


def _is_secret_name(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return _SECRET_NAME.match(name) is not None


def _allowed(path: str, allow: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in allow)


def _check_contents(
    root: Path, paths: Sequence[str], digests: Sequence[_Digest], allow: Sequence[str]
) -> None:
    secrets = [
        f"{p} (contains a PEM private key)"
        for p, d in zip(paths, digests, strict=True)
        if d.has_private_key and not _allowed(p, allow)
    ]
    _raise_hygiene(root, {"secret": secrets})


def _warnings(paths: Sequence[str], allow: Sequence[str]) -> tuple[str, ...]:
    maps = [p for p in paths if p.lower().endswith(".map") and not _allowed(p, allow)]
    if not maps:
        return ()
    return (
        (
            f"{len(maps)} source map(s) will ship and reveal your original source code: "
            f"{_listing(maps)}. Turn source maps off for production builds, or add them to "
            "`allow` to silence this warning."
        ),
    )


_OPEN = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a fifo swapped in must not block the open
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _open_fd(path: str | Path) -> int:
    try:
        fd = os.open(path, _OPEN)
    except OSError as exc:
        raise InputError(
            f"cannot read {path}: {exc.strerror}",
            expected="a build directory that nothing modifies while otaseal packs it",
            fix="finish the build before packing, and fix the file's permissions",
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HygieneError(
            f"{path} is no longer a regular file",
            expected="regular files only",
            fix="do not modify the build directory while otaseal packs it",
        )
    return fd


def _read_regular(path: str, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``offset``, with no file object: this runs once per file."""
    fd = _open_fd(path)
    try:
        data = os.pread(fd, length, offset)
        while len(data) < length and (more := os.pread(fd, length - len(data), offset + len(data))):
            data += more  # pragma: no cover - Linux reads a regular file whole; others may not
    finally:
        os.close(fd)
    return data


def _looks_compressed(head: bytes) -> bool:
    """Many distinct byte values at the start: media or fonts that deflate cannot shrink."""
    sniff = head[:_STORE_SNIFF]
    # Text (the bulk of a web build) has at most 128 distinct ASCII values: skip building a set.
    return (
        len(sniff) >= _STORE_DISTINCT and not sniff.isascii() and len(set(sniff)) >= _STORE_DISTINCT
    )


def _plan(root: Path, paths: Sequence[str], files: Sequence[str]) -> list[tuple[int, bool | None]]:
    """Each file's size, and whether a large file is stored: its pieces are compressed apart."""
    plan: list[tuple[int, bool | None]] = []
    for path in files:
        try:
            size = os.lstat(path).st_size
        except OSError as exc:
            raise InputError(
                f"cannot read {path}: {exc.strerror}",
                expected="a build directory that nothing modifies while otaseal packs it",
                fix="finish the build before packing, and fix the file's permissions",
            ) from None
        stored: bool | None = None
        if size > CHUNK_SIZE:
            stored = _looks_compressed(_read_regular(path, 0, _STORE_SNIFF))
        plan.append((size, stored))
    large = [p for p, (size, _) in zip(paths, plan, strict=True) if size > _ZIP32_MAX]
    if large:
        raise InputError(
            f"the build directory {root} has files of 4 GiB or more: {_listing(large)}",
            expected="files below 4 GiB (bundles do not use ZIP64)",
            fix="ship large media from a CDN instead of inside the live update",
        )
    return plan


def _pieces(
    files: Sequence[str], plan: Sequence[tuple[int, bool | None]]
) -> Iterator[tuple[_Piece, ...]]:
    """Work units in file order: runs of whole small files up to ~1 MiB, or one large-file piece."""
    batch: list[_Piece] = []
    batch_bytes = 0
    for number, (path, (size, stored)) in enumerate(zip(files, plan, strict=True)):
        if size <= CHUNK_SIZE:
            batch.append(_Piece(number, path, 0, size, last=True, whole=True, stored=None))
            batch_bytes += size
            if batch_bytes >= CHUNK_SIZE or len(batch) >= _BATCH_FILES:
                yield tuple(batch)
                batch, batch_bytes = [], 0
            continue
        if batch:
            yield tuple(batch)
            batch, batch_bytes = [], 0
        for offset in range(0, size, CHUNK_SIZE):
            length = min(CHUNK_SIZE, size - offset)
            last = offset + length == size
            yield (_Piece(number, path, offset, length, last=last, whole=False, stored=stored),)
    if batch:
        yield tuple(batch)


def _compress_all(
    pool: ThreadPoolExecutor | None,
    paths: Sequence[str],
    files: Sequence[str],
    plan: Sequence[tuple[int, bool | None]],
    spool: _Spool,
    *,
    window: int,
    progress: Progress,
) -> list[_Digest]:
    """Compress every file into ``spool`` as zip entries (local header, then data), in order.

    This thread mostly waits for the pool; the per-entry work done here (headers, the running
    hash of a large file's pieces) overlaps the compression instead of following it.
    """
    digests: list[_Digest] = []
    sha, crc, size, pending = hashlib.sha256(), 0, 0, _Spool()
    has_key = False
    try:
        with contextlib.closing(
            _ordered(pool, _compress_batch, _pieces(files, plan), window)
        ) as done:
            for piece in _reported(done, progress):
                if spool.size > _ZIP32_MAX:  # fail early; _write_zip checks the whole zip
                    raise _too_large()
                number = piece.piece.file
                if piece.piece.whole:
                    _same_size(piece.piece.path, plan[number][0], piece.size)
                    digest = _Digest(
                        piece.size,
                        piece.sha256,
                        piece.crc,
                        piece.has_private_key,
                        piece.stored,
                        _length(piece.parts),
                        spool.size,
                    )
                    spool.add(_local_header(paths[number], digest))
                    for part in piece.parts:
                        spool.add(part)
                    digests.append(digest)
                    continue
                if piece.piece.offset == 0:
                    sha, crc, size, has_key = hashlib.sha256(), 0, 0, piece.has_private_key
                    pending.close()
                    pending = _Spool()
                sha.update(piece.raw)
                crc = zlib.crc32(piece.raw, crc)
                size += piece.size
                for part in piece.parts:
                    pending.add(part)
                if piece.piece.last:
                    _same_size(piece.piece.path, plan[number][0], size)
                    digest = _Digest(
                        size, sha.hexdigest(), crc, has_key, piece.stored, pending.size, spool.size
                    )
                    spool.add(_local_header(paths[number], digest))
                    pending.drain(spool.add)
                    digests.append(digest)
    finally:
        pending.close()
    return digests


def _reported(batches: Iterable[list[_Compressed]], progress: Progress) -> Iterator[_Compressed]:
    """The pieces of each batch, then one report of the files and bytes the batch finished."""
    for batch in batches:
        yield from batch
        progress.advance(sum(p.piece.last for p in batch), sum(p.size for p in batch))


def _compress_batch(pieces: tuple[_Piece, ...]) -> list[_Compressed]:
    return [_compress_piece(piece) for piece in pieces]


def _compress_piece(piece: _Piece) -> _Compressed:
    """Deflate or store one piece; deflated pieces are primed with the 32 KiB before them."""
    start = piece.offset if piece.stored else max(0, piece.offset - _DICT_SIZE)
    head = piece.offset - start
    # One byte more than expected at the end of a file, to notice that it grew.
    raw = _read_regular(piece.path, start, head + piece.length + (1 if piece.last else 0))
    buffer = memoryview(raw)
    data = buffer[head:]
    stored = piece.stored
    if stored is None:
        stored = _looks_compressed(raw[:_STORE_SNIFF])
    parts = (raw, b"") if stored else _deflate(data, zdict=buffer[:head] or None, last=piece.last)
    has_key = piece.offset == 0 and _PRIVATE_KEY.search(raw, 0, _SNIFF_SIZE) is not None
    if piece.whole:
        digest = hashlib.sha256(data).hexdigest()
        return _Compressed(
            piece, parts, zlib.crc32(data), memoryview(b""), len(data), stored, digest, has_key
        )
    return _Compressed(piece, parts, 0, data, len(data), stored, "", has_key)


def _deflate(data: memoryview, *, zdict: memoryview | None, last: bool) -> tuple[bytes, bytes]:
    """Raw DEFLATE; a piece that is not last ends on a byte boundary so the next one can follow."""
    if zdict is None:
        comp = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15)
    else:
        comp = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15, zdict=zdict)
    body = comp.compress(data)
    return body, comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _ordered(
    pool: ThreadPoolExecutor | None,
    work: Callable[[_T], _R],
    items: Iterable[_T],
    window: int,
) -> Generator[_R, None, None]:
    """``map`` on the pool, in order, with at most ``window`` items in flight."""
    if pool is None:
        yield from map(work, items)
        return
    pending: deque[Future[_R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


class _Sink:
    """Buffers small writes into ~1 MiB blocks for ``out``, hashing and counting them."""

    __slots__ = ("_buffer", "_out", "_progress", "length", "sha256")

    def __init__(self, out: SupportsWrite[bytes], progress: Progress = NO_PROGRESS) -> None:
        self._out = out
        self._progress = progress
        self._buffer = bytearray()
        self.sha256 = hashlib.sha256()
        self.length = 0

    def write(self, data: bytes) -> None:
        self.length += len(data)
        if len(data) >= _READ_SIZE:
            self.flush()
            self._emit(data)
            return
        self._buffer += data
        if len(self._buffer) >= _READ_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)
        self._progress.advance(0, len(data))


class _Spool:
    """Bytes held in order until they can be written: in memory up to a bound, then on disk.

    One holds every entry after the index until the index is written; another holds the pieces
    of one large file until its local header (CRC-32, sizes) is known.
    """

    __slots__ = ("_file", "_parts", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._file: BinaryIO | None = None
        self.size = 0

    def add(self, part: bytes) -> None:
        if not part:
            return
        self.size += len(part)
        if self._file is None and self.size <= _SPOOL_MEMORY:
            self._parts.append(part)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._file.write(part)

    def drain(self, write: Callable[[bytes], object]) -> None:
        """Hand everything to ``write``, in the order it came: memory first, then the file."""
        for part in self._parts:
            write(part)
        self._parts.clear()
        if self._file is not None:
            self._file.seek(0)
            while chunk := self._file.read(_READ_SIZE):
                write(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _too_large() -> InputError:
    return InputError(
        "the bundle would grow beyond 4 GiB",
        expected="a bundle below 4 GiB (bundles do not use ZIP64)",
        fix="ship large media from a CDN instead of inside the live update",
    )


def _fields(digest: _Digest) -> tuple[int, ...]:
    """The fields a local header and its central record share."""
    method = zipfile.ZIP_STORED if digest.stored else zipfile.ZIP_DEFLATED
    return (
        _FLAG_UTF8,
        method,
        _DOS_TIME,
        _DOS_DATE,
        digest.crc,
        digest.compressed,
        digest.size,
    )


def _local_header(name: str, digest: _Digest) -> bytes:
    encoded = name.encode()
    return _LOCAL.pack(0x04034B50, _VERSION_NEEDED, *_fields(digest), len(encoded), 0) + encoded


def _central_record(name: str, digest: _Digest, offset: int) -> bytes:
    encoded = name.encode()
    return (
        _CENTRAL.pack(
            0x02014B50,
            _VERSION_MADE_BY,
            _VERSION_NEEDED,
            *_fields(digest),
            len(encoded),
            0,
            0,
            0,
            0,
            _FILE_ATTR,
            offset,
        )
        + encoded
    )


def _write_zip(sink: _Sink, index: Index, digests: Sequence[_Digest], spool: _Spool) -> None:
    """The index entry, the spooled entries, then the central directory and end record.

    No ZIP64 and no data descriptors: every header carries its CRC-32 and sizes.
    """
    data = index.to_json()
    parts = _deflate(memoryview(data), zdict=None, last=True)
    index_digest = _Digest(
        size=len(data),
        sha256="",
        crc=zlib.crc32(data),
        has_private_key=False,
        stored=False,
        compressed=_length(parts),
        offset=0,
    )
    header = _local_header(INDEX_PATH, index_digest)
    shift = len(header) + index_digest.compressed
    records = [_central_record(INDEX_PATH, index_digest, 0)]
    records += [
        _central_record(entry.path, digest, shift + digest.offset)
        for entry, digest in zip(index.files, digests, strict=True)
    ]
    central = sum(len(record) for record in records)
    start = shift + spool.size
    if start + central > _ZIP32_MAX:
        raise _too_large()
    sink.write(header)
    for part in parts:
        sink.write(part)
    spool.drain(sink.write)
    sink.write(b"".join(records))
    sink.write(_END.pack(0x06054B50, 0, 0, len(records), len(records), central, start, 0))


def _length(parts: tuple[bytes, bytes]) -> int:
    return len(parts[0]) + len(parts[1])


def _same_size(path: str, planned: int, read: int) -> None:
    if read != planned:
        raise InputError(
            f"{path} changed while otaseal was packing it",
            expected="a build directory that nothing modifies while otaseal packs it",
            fix="wait for the build to finish before packing",
        )


# --- extract -------------------------------------------------------------------------------------
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
    threads = _threads(workers)
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
    name_problem = _name_problem(info.orig_filename)
    if name_problem is not None:
        return f"has a name that {name_problem}"
    mode = info.external_attr >> 16
    checks = (  # messages are formatted only for the entry that fails: this runs per entry
        (info.flag_bits & _ENCRYPTION_FLAGS, "is encrypted"),
        (info.flag_bits & ~_ALLOWED_FLAGS, "uses unsupported zip flags 0x{flags:04x}"),
        (
            info.compress_type not in {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED},
            "uses compression method {method}, not stored (0) or deflate (8)",
        ),
        (stat.S_ISLNK(mode), "is a symlink"),
        (
            stat.S_IFMT(mode) not in {0, stat.S_IFREG} or info.external_attr & _DOS_DIRECTORY,
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
        if problem is None and info is not infos[0] and _is_reserved(name):
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
        if size >= _READ_SIZE:  # a report per MiB at most, or per batch of small files
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
_LOCAL_SIGNATURE = 0x04034B50


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
    name = info.orig_filename.encode("utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437")
    head = _LOCAL.size + len(name)
    block = os.pread(fd, head + min(info.compress_size, _EXTRACT_READ_SIZE), info.header_offset)
    fields = _LOCAL.unpack_from(block) if len(block) >= head else None
    if (
        fields is None
        or fields[0] != _LOCAL_SIGNATURE
        or fields[9] != len(name)
        or block[_LOCAL.size : head] != name
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
