"""Pack: the deterministic zip of a web build, written by our own zip writer.

Same files in, same bytes out, whatever the mtimes, modes, listing order or worker count: that is
what makes a no-op release detectable and a build reproducible. The zip container is written here
rather than by :mod:`zipfile` (docs/adr/0003-own-zip-writer.md): the stdlib cannot store entries
compressed on other threads, and a non-seekable output needs each entry's CRC and sizes before its
local header.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from otaseal.archive.hygiene import check_contents, has_private_key, pack_warnings, scan
from otaseal.archive.index import INDEX_PATH, FileEntry, Index
from otaseal.archive.paths import listing
from otaseal.archive.workers import ordered, thread_count
from otaseal.archive.zipfmt import (
    CENTRAL,
    CENTRAL_SIGNATURE,
    DOS_DATE,
    DOS_TIME,
    END,
    END_SIGNATURE,
    FILE_ATTR,
    FLAG_UTF8,
    LOCAL,
    LOCAL_SIGNATURE,
    VERSION_MADE_BY,
    VERSION_NEEDED,
    ZIP32_MAX,
)
from otaseal.errors import HygieneError, InputError
from otaseal.progress import NO_PROGRESS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from _typeshed import SupportsWrite

    from otaseal.progress import Progress

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


@dataclass(frozen=True, slots=True)
class PackResult:
    """The index written into the zip, warnings for the user, and the zip's length and SHA-256."""

    index: Index
    warnings: tuple[str, ...]
    length: int
    sha256: str


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
    threads = thread_count(workers)
    root = _check_build_dir(build_dir)
    paths = scan(root, allow)
    files = [f"{root}/{p}" for p in paths]  # str, not Path: ~300 bytes less per file
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(threads)) if threads > 1 else None
        spool = stack.enter_context(contextlib.closing(_Spool()))
        plan = _plan(root, paths, files)
        progress.start("packing", files=len(files), size=sum(size for size, _ in plan))
        digests = _compress_all(
            pool, paths, files, plan, spool, window=4 * threads, progress=progress
        )
        check_contents(root, paths, [d.has_private_key for d in digests], allow)
        index = Index(
            tuple(FileEntry(p, d.size, d.sha256) for p, d in zip(paths, digests, strict=True))
        )
        progress.start("writing the bundle", size=spool.size)
        sink = _Sink(out, progress)
        _write_zip(sink, index, digests, spool)
        sink.flush()
    return PackResult(index, pack_warnings(paths, allow), sink.length, sink.sha256.hexdigest())


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
    large = [p for p, (size, _) in zip(paths, plan, strict=True) if size > ZIP32_MAX]
    if large:
        raise InputError(
            f"the build directory {root} has files of 4 GiB or more: {listing(large)}",
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
            ordered(pool, _compress_batch, _pieces(files, plan), window)
        ) as done:
            for piece in _reported(done, progress):
                if spool.size > ZIP32_MAX:  # fail early; _write_zip checks the whole zip
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
    has_key = piece.offset == 0 and has_private_key(raw)
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
        FLAG_UTF8,
        method,
        DOS_TIME,
        DOS_DATE,
        digest.crc,
        digest.compressed,
        digest.size,
    )


def _local_header(name: str, digest: _Digest) -> bytes:
    encoded = name.encode()
    return LOCAL.pack(LOCAL_SIGNATURE, VERSION_NEEDED, *_fields(digest), len(encoded), 0) + encoded


def _central_record(name: str, digest: _Digest, offset: int) -> bytes:
    encoded = name.encode()
    return (
        CENTRAL.pack(
            CENTRAL_SIGNATURE,
            VERSION_MADE_BY,
            VERSION_NEEDED,
            *_fields(digest),
            len(encoded),
            0,
            0,
            0,
            0,
            FILE_ATTR,
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
    if start + central > ZIP32_MAX:
        raise _too_large()
    sink.write(header)
    for part in parts:
        sink.write(part)
    spool.drain(sink.write)
    sink.write(b"".join(records))
    sink.write(END.pack(END_SIGNATURE, 0, 0, len(records), len(records), central, start, 0))


def _length(parts: tuple[bytes, bytes]) -> int:
    return len(parts[0]) + len(parts[1])


def _same_size(path: str, planned: int, read: int) -> None:
    if read != planned:
        raise InputError(
            f"{path} changed while otaseal was packing it",
            expected="a build directory that nothing modifies while otaseal packs it",
            fix="wait for the build to finish before packing",
        )
