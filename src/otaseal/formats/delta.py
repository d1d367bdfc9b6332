"""Sealed deltas (SPEC §19): the patch plaintext, how a publisher makes it and a device reads it.

A patch turns the files of one release (the *base*, already installed on the device) into the
files of a newer one. It carries the new release's index byte for byte, compressed against the
base's index (which the device keeps), so the device checks every file it builds against the
same signed digests as a full install; the ops only say where the bytes of each file that is not
a copy from its own path come from: another base file (``copy``), or a zstd frame that may use
one base file as a raw-content dictionary (``zstd``). Reading is pure: :func:`read_header` and
:func:`check_header` take bytes and signed values and raise :class:`DeltaError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zstandard

from otaseal import jsonread
from otaseal.archive import (  # the one set of path rules of SPEC §14
    INDEX_PATH,
    MAX_INDEX_SIZE,
    Index,
    extract,
    path_problem,
)
from otaseal.errors import DeltaError, InputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import BinaryIO

    from otaseal.archive import FileEntry

__all__ = [
    "MAGIC",
    "MAX_HEAD_SIZE",
    "MAX_WINDOW",
    "BaseFile",
    "MadePatch",
    "Op",
    "PatchHeader",
    "check_header",
    "compress",
    "decompressor",
    "encode_header",
    "extract_release",
    "index_bytes",
    "level_for",
    "make_patch",
    "plan_ops",
    "read_header",
]

MAGIC = b"\x89OTD\r\n\x1a\n"
FORMAT_VERSION = 2
#: Largest zstd window a device must provide (SPEC §19): 128 MiB of memory at most.
MAX_WINDOW_LOG = 27
MAX_WINDOW = 1 << MAX_WINDOW_LOG
#: Largest installed file a device reads as a dictionary (a publisher stays within MAX_WINDOW).
MAX_DICT_SIZE = MAX_WINDOW
MAX_OPS_SIZE = MAX_INDEX_SIZE
#: Largest decompressed head (index length, index, ops): a bomb stops there.
MAX_HEAD_SIZE = 4 + MAX_INDEX_SIZE + MAX_OPS_SIZE
#: Compression levels of the publisher (measured: SPEC §19.5): 19 while the dictionary and the
#: file together are at most LEVEL_MAX_INPUT bytes, LARGE_LEVEL above.
LEVEL = 19
LEVEL_MAX_INPUT = 4 << 20
LARGE_LEVEL = 11
_MIN_WINDOW_LOG = 17  # 128 KiB: small files need no more, and every decoder accepts it
_U32 = struct.Struct(">I")
_FIXED = len(MAGIC) + 32 + 32 + 4  # magic, base and target digests, head length
_ZSTD_DICT_MAGIC = b"\x37\xa4\x30\xec"  # a structured zstd dictionary starts with it
_COPY, _ZSTD = "copy", "zstd"
_READ = 1 << 20
# A hash part of a bundler's file name: `index-DiwrgTda.js`, `app.3f9a1c2b.js`, `chunk-7XK2.css`.
_HASHED = re.compile(r"^(?P<stem>.*?)[.~_-](?P<hash>[A-Za-z0-9_-]{6,})$")


# --- the format ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Op:
    """Where the file at ``path`` of the new release comes from: ``copy`` or ``zstd`` (SPEC §19)."""

    path: str
    op: str
    source: str | None  # the base file (``from``); None: a zstd frame without a dictionary
    length: int = 0  # payload bytes (zstd only)

    @property
    def implicit(self) -> bool:
        """A copy from the same path: the patch does not list it (SPEC §19.2)."""
        return self.op == _COPY and self.source == self.path

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside the ops document."""
        if self.op == _COPY:
            return {"path": self.path, "op": _COPY, "from": self.source}
        return {"path": self.path, "op": _ZSTD, "from": self.source, "length": self.length}


_Job = tuple["FileEntry", Op, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class PatchHeader:
    """A parsed patch: the new index (bytes), the listed ops and where the payloads start."""

    index_json: bytes
    base: str
    target: str
    ops: tuple[Op, ...]  # only the listed ones, in index order
    payload_offset: int  # from the start of the patch plaintext

    def payloads(self) -> tuple[tuple[int, int], ...]:
        """``(offset, length)`` of each listed op's payload, ``(offset, 0)`` for a copy."""
        spans, at = [], self.payload_offset
        for op in self.ops:
            spans.append((at, op.length))
            at += op.length
        return tuple(spans)

    def jobs(self, index: Index) -> tuple[_Job, ...]:
        """Every file of ``index`` with its op and payload span; unlisted files copy their path.

        ``index`` must have passed :func:`check_header` (every listed path in it, in its order).
        """
        listed = {op.path: (op, span) for op, span in zip(self.ops, self.payloads(), strict=True)}
        return tuple(
            (entry, *listed.get(entry.path, (Op(entry.path, _COPY, entry.path), (0, 0))))
            for entry in index.files
        )


def encode_header(
    index_json: bytes,
    ops: Sequence[Op],
    *,
    base: str,
    target: str,
    base_index: bytes,
    level: int | None = None,
) -> bytes:
    """Magic, base, target and the compressed head; the listed ops' payloads follow in order.

    ``ops`` are the listed ops (no implicit copy); the head is compressed with the base's index
    bytes as a raw-content dictionary, which is what makes a small change cost a few hundred bytes.
    """
    doc = {"files": [op.to_dict() for op in ops], "version": FORMAT_VERSION}
    head = _U32.pack(len(index_json)) + index_json + _dumps(doc)
    frame = compress(head, base_index or None, level=level)
    return MAGIC + bytes.fromhex(base) + bytes.fromhex(target) + _U32.pack(len(frame)) + frame


def _dumps(doc: object) -> bytes:
    import json  # noqa: PLC0415 - writing only

    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _refuse(what: str, expected: str) -> DeltaError:
    return DeltaError(
        f"the patch {what}",
        expected=expected,
        fix="the device installs the full bundle instead; republish to make a new patch",
    )


def _read_exact(src: BinaryIO, size: int, what: str) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise _refuse(f"ends inside its {what}", f"{size} bytes of {what}")
    return data


def read_header(src: BinaryIO, total: int, *, base_index: bytes | None) -> PatchHeader:
    """Parse a patch plaintext of ``total`` bytes up to its payloads (SPEC §19.2, step D4).

    ``base_index`` is the index of the installed release as the device stored it: only the
    dictionary of the head, never trusted (a wrong one fails the index digest). Checks the framing
    only: the caller checks the values against the signed release with :func:`check_header`.
    """
    if _read_exact(src, len(MAGIC), "magic") != MAGIC:
        raise _refuse("does not start with the delta magic", "89 4F 54 44 0D 0A 1A 0A")
    base = _read_exact(src, 32, "base digest").hex()
    target = _read_exact(src, 32, "target digest").hex()
    (head_length,) = _U32.unpack(_read_exact(src, 4, "head length"))
    offset = _FIXED
    if head_length > total - offset:
        raise _refuse(f"declares a head of {head_length} bytes", "a head that fits the patch")
    head = _inflate_head(_read_exact(src, head_length, "head"), base_index)
    offset += head_length
    if len(head) < _U32.size:
        raise _refuse("head ends inside its index length", "4 bytes of index length")
    (index_length,) = _U32.unpack_from(head)
    if index_length > min(MAX_INDEX_SIZE, len(head) - _U32.size):
        raise _refuse(f"declares an index of {index_length} bytes", "an index that fits the head")
    index_json = head[4 : 4 + index_length]
    ops_json = head[4 + index_length :]
    if len(ops_json) > MAX_OPS_SIZE:
        raise _refuse(f"has ops of {len(ops_json)} bytes", f"at most {MAX_OPS_SIZE}")
    ops = _parse_ops(ops_json)
    payload = sum(op.length for op in ops)
    if offset + payload != total:
        raise _refuse(
            f"has {total - offset} bytes of payloads",
            f"{payload}, the sum of the ops' lengths",
        )
    return PatchHeader(index_json, base, target, ops, offset)


def _inflate_head(frame: bytes, base_index: bytes | None) -> bytes:
    """The head, decompressed to at most ``MAX_HEAD_SIZE`` bytes whatever the frame claims."""
    head = bytearray()
    try:
        reader = decompressor(base_index or None).stream_reader(frame, read_across_frames=True)
        while len(head) <= MAX_HEAD_SIZE and (chunk := reader.read(_READ)):
            head += chunk
    except zstandard.ZstdError as exc:
        raise _refuse(
            f"head does not decompress with the stored index of the installed release ({exc})",
            "zstd frames made with that index as their dictionary",
        ) from None
    if len(head) > MAX_HEAD_SIZE:
        raise _refuse("head decompresses past its cap", f"at most {MAX_HEAD_SIZE} bytes")
    return bytes(head)


def _parse_ops(data: bytes) -> tuple[Op, ...]:
    try:
        doc = jsonread.loads(data)
    except jsonread.JsonError as exc:
        raise _refuse(f"ops are not JSON of SPEC §1: {exc.detail}", "JSON of SPEC §1") from None
    if not isinstance(doc, dict) or jsonread.integer(doc.get("version")) != FORMAT_VERSION:
        raise _refuse(
            f"ops are not a version {FORMAT_VERSION} document", f'{{"version": {FORMAT_VERSION}}}'
        )
    files = doc.get("files")
    if not isinstance(files, list):
        raise _refuse('ops have no "files" list', "the ops of the files that are not copied")
    return tuple(_parse_op(item, at) for at, item in enumerate(files))


def _path_problem(value: object) -> str | None:
    return "is not a string" if not isinstance(value, str) else path_problem(value)


def _parse_op(item: object, at: int) -> Op:
    if not isinstance(item, dict):
        raise _refuse(f"op {at} is not an object", '{"path": ..., "op": ..., "from": ...}')
    path, kind, source = item.get("path"), item.get("op"), item.get("from")
    problem = _path_problem(path)
    if problem is not None:
        raise _refuse(f'op {at}\'s "path" {problem}', "a valid path of SPEC §14")
    if kind not in {_COPY, _ZSTD}:
        raise _refuse(f"op {at} is {kind!r}", '"copy" or "zstd"')
    if source is not None or kind == _COPY:
        problem = _path_problem(source)
        if problem is not None:
            raise _refuse(f'op {at}\'s "from" {problem}', "a valid path of SPEC §14")
    length = 0
    if kind == _ZSTD:
        number = jsonread.integer(item.get("length"))
        if number is None or number == 0:
            raise _refuse(f'op {at}\'s "length" is not a positive integer', "1 to 2^53−1")
        length = number
    return Op(str(path), str(kind), source if isinstance(source, str) else None, length)


def check_header(
    header: PatchHeader,
    *,
    index_digest: str,
    base: str,
    target: str,
    files: int,
    size: int,
) -> Index:
    """The patch is the one the signed release means, from ``base``; returns the new index.

    In SPEC §19's order: the base, the target, the index digest, the index's own rules (an
    :class:`ArchiveError`), its file count and size, and ops that name files of the index once
    each, in its order.
    """
    if header.base != base:
        raise _refuse(
            f"applies to bundle {header.base[:16]}…", f"{base[:16]}…, the installed bundle"
        )
    if header.target != target:
        raise _refuse(
            f"makes bundle {header.target[:16]}…", f"{target[:16]}…, the selected release"
        )
    digest = hashlib.sha256(header.index_json).hexdigest()
    if digest != index_digest:
        raise _refuse(
            f"carries an index whose SHA-256 is {digest[:16]}… (a wrong stored index of the "
            "installed release decompresses to such an index too)",
            f"{index_digest[:16]}… (delta.index of the signed release)",
        )
    index = Index.from_json(header.index_json)
    if len(index.files) != files:
        raise _refuse(f"lists {len(index.files)} files", f"{files} (content.files)")
    if index.total_size > size:
        raise _refuse(f"unpacks to {index.total_size} bytes", f"at most {size} (content.size)")
    position = {entry.path: at for at, entry in enumerate(index.files)}
    last = -1
    for op in header.ops:
        at = position.get(op.path)
        if at is None:
            raise _refuse(f"has an op for {op.path}", "ops only for files of the index")
        if at <= last:
            raise _refuse(
                f"lists {op.path} out of order or twice", "each file once, in index order"
            )
        last = at
    return index


# --- making a patch (publisher) ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MadePatch:
    """A patch plaintext, ready to seal like a bundle, and how many files it does not copy."""

    plaintext: bytes
    changed: int
    ops: tuple[Op, ...]  # one per file of the new index, implicit copies included

    @property
    def length(self) -> int:
        """Bytes of the plaintext (``plaintext.length`` of the patch entry)."""
        return len(self.plaintext)

    @property
    def sha256(self) -> str:
        """SHA-256 of the plaintext (``plaintext.sha256`` of the patch entry)."""
        return hashlib.sha256(self.plaintext).hexdigest()


@dataclass(frozen=True, slots=True)
class BaseFile:
    """A file of the base release as the publisher finds it."""

    path: str
    size: int
    sha256: str


def make_patch(
    base_dir: Path,
    target_dir: Path,
    target_index_json: bytes,
    *,
    base_bundle: str,
    target_bundle: str,
    base_index: bytes,
    workers: int | None = None,
) -> MadePatch:
    """The patch from the files in ``base_dir`` to those of ``target_dir`` (SPEC §19).

    ``target_index_json`` is the new bundle's ``.otaseal/index.json`` exactly as in its zip; every
    target file is checked against it, so a build that changed since it was packed is refused.
    ``base_index`` is the base's, exactly as in its zip: the device holds the same bytes.
    """
    index = Index.from_json(target_index_json)
    base = _scan_base(base_dir)
    ops = plan_ops(index.files, base)
    jobs = [(entry, op) for entry, op in zip(index.files, ops, strict=True) if op.op == _ZSTD]
    threads = max(1, min(workers or os.cpu_count() or 1, 4, len(jobs) or 1))
    with ThreadPoolExecutor(threads) as pool:
        compressed = list(pool.map(lambda job: _compress(base_dir, target_dir, *job), jobs))
    made = dict(zip((entry.path for entry, _ in jobs), compressed, strict=True))
    final = tuple(
        Op(op.path, _ZSTD, made[op.path][0], len(made[op.path][1])) if op.op == _ZSTD else op
        for op in ops
    )
    header = encode_header(
        target_index_json,
        [op for op in final if not op.implicit],
        base=base_bundle,
        target=target_bundle,
        base_index=base_index,
    )
    body = b"".join(made[op.path][1] for op in final if op.length)
    return MadePatch(header + body, sum(op.op == _ZSTD for op in final), final)


def plan_ops(files: Sequence[FileEntry], base: Mapping[str, BaseFile]) -> list[Op]:
    """Pure choice of an op per target file: copy equal content, else zstd from a similar file.

    Equal content is copied from the same path if it is there, else from the first such base
    file by path (a renamed hashed chunk). A changed file is compressed against the base file at
    its path, else against the base file whose name is the same once the bundler's hash part is
    stripped (same folder and extension; the longest common name prefix, then the closest size).
    """
    by_content: dict[tuple[str, int], str] = {}
    by_key: dict[str, list[BaseFile]] = {}
    for item in sorted(base.values(), key=lambda b: b.path.encode()):
        by_content.setdefault((item.sha256, item.size), item.path)
        by_key.setdefault(_name_key(item.path), []).append(item)
    ops: list[Op] = []
    for entry in files:
        same = base.get(entry.path)
        if same is not None and (same.sha256, same.size) == (entry.sha256, entry.size):
            ops.append(Op(entry.path, _COPY, entry.path))
            continue
        twin = by_content.get((entry.sha256, entry.size))
        if twin is not None:
            ops.append(Op(entry.path, _COPY, twin))
            continue
        if same is None:
            same = _similar(entry, by_key.get(_name_key(entry.path), []))
        # The dictionary and the file fit one 2^27 window: every match stays reachable, and a
        # device never holds more than 128 MiB for one file.
        usable = same is not None and same.size > 0 and same.size + entry.size <= MAX_WINDOW
        ops.append(Op(entry.path, _ZSTD, same.path if usable and same else None))
    return ops


def _name_key(path: str) -> str:
    """``assets/index-DiwrgTda.js`` → ``assets/index<NUL>.js``: the name without its hash part."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    match = _HASHED.match(stem)
    if match and _looks_hashed(match["hash"]):
        stem = match["stem"] + "\0"
    return f"{folder}/{stem}.{ext}"


def _looks_hashed(token: str) -> bool:
    return any(c.isdigit() for c in token) or (token.lower() != token and token.upper() != token)


def _similar(entry: FileEntry, candidates: Sequence[BaseFile]) -> BaseFile | None:
    if not candidates:
        return None
    name = entry.path.rpartition("/")[2]

    def rank(item: BaseFile) -> tuple[int, int, bytes]:
        other = item.path.rpartition("/")[2]
        pairs = enumerate(zip(name, other, strict=False))
        common = next((i for i, (a, b) in pairs if a != b), min(len(name), len(other)))
        return (-common, abs(item.size - entry.size), item.path.encode())

    return min(candidates, key=rank)


def _scan_base(base_dir: Path) -> dict[str, BaseFile]:
    """Every regular file under ``base_dir`` with its size and SHA-256; symlinks are skipped."""
    found: dict[str, BaseFile] = {}
    root = Path(base_dir)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        rel = Path(folder).relative_to(root).as_posix()
        for name in sorted(names):
            path = name if rel == "." else f"{rel}/{name}"
            full = Path(folder) / name
            info = full.lstat()
            if not stat.S_ISREG(info.st_mode) or path_problem(path):
                continue
            found[path] = BaseFile(path, info.st_size, _hash_file(full))
    return found


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()


def _check_target(target_dir: Path, entry: FileEntry) -> bytes:
    """The target file's bytes, refused unless they are what the index says."""
    path = target_dir / entry.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {path} to make the patch ({exc.strerror})",
            expected="the build folder the bundle was packed from",
            fix="make the patch from the same build folder as the bundle",
        ) from None
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise InputError(
            f"{entry.path} in {target_dir} differs from the bundle's index",
            expected="the files exactly as packed into the new bundle",
            fix="do not modify the build folder between packing and making the patch",
        )
    return data


def level_for(dict_size: int, size: int) -> int:
    """Level 19 while the dictionary and the file are small; above, a level that stays fast.

    Measured (SPEC §19.5): level 19 spends seconds loading a large dictionary for a few bytes.
    """
    return LEVEL if dict_size + size <= LEVEL_MAX_INPUT else LARGE_LEVEL


def compression_parameters(
    dict_size: int, size: int, level: int | None = None
) -> zstandard.ZstdCompressionParameters:
    """A window that reaches the whole dictionary, capped at 2^27 (SPEC §19).

    No long-distance matching: with a raw-content dictionary it found nothing more (measured).
    """
    window_log = max(_MIN_WINDOW_LOG, min(MAX_WINDOW_LOG, (dict_size + size).bit_length()))
    return zstandard.ZstdCompressionParameters.from_level(
        level_for(dict_size, size) if level is None else level,
        source_size=size,
        dict_size=dict_size,
        window_log=window_log,
        write_checksum=0,
        write_content_size=1,
        write_dict_id=0,
    )


def compress(data: bytes, dictionary: bytes | None, *, level: int | None = None) -> bytes:
    """One zstd frame of ``data``, using ``dictionary`` as raw content if given."""
    params = compression_parameters(len(dictionary or b""), len(data), level)
    zdict = (
        zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        if dictionary
        else None
    )
    return zstandard.ZstdCompressor(compression_params=params, dict_data=zdict).compress(data)


def _compress(
    base_dir: Path, target_dir: Path, entry: FileEntry, op: Op
) -> tuple[str | None, bytes]:
    """The dictionary actually used (``from``) and the frame."""
    data = _check_target(target_dir, entry)
    source = op.source
    dictionary = (base_dir / source).read_bytes() if source is not None else None
    if dictionary is not None and dictionary.startswith(_ZSTD_DICT_MAGIC):
        # A decoder that only auto-detects would read such a file as a structured dictionary.
        source, dictionary = None, None
    return source, compress(data, dictionary)


def decompressor(dictionary: bytes | bytearray | None) -> zstandard.ZstdDecompressor:
    """A decompressor that refuses windows above 2^27 and uses ``dictionary`` as raw content."""
    zdict = (
        zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        if dictionary
        else None
    )
    return zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=MAX_WINDOW)


# --- helpers for the publisher -------------------------------------------------------------------
def extract_release(zip_path: Path, dest: Path, *, max_total_size: int) -> tuple[Index, bytes]:
    """Unpack a release's plaintext zip into ``dest``; its index and the index's exact bytes.

    The publisher's base for :func:`make_patch`: the files a device on that release runs.
    """
    index = extract(zip_path, dest, max_total_size=max_total_size)
    return index, index_bytes(zip_path)


def index_bytes(zip_path: Path) -> bytes:
    """The bytes of ``.otaseal/index.json`` in an otaseal zip (what ``delta.index`` hashes)."""
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(INDEX_PATH)
