"""The bundle's file index: every path with its size and SHA-256, stored as the zip's first entry.

The index is what a release signs for its files (through the bundle digest) and what extraction
checks each file against; deltas and the PR comment's file changes are computed from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from otaseal import jsonread
from otaseal.archive.paths import collision, path_problem
from otaseal.errors import ArchiveError

INDEX_PATH = ".otaseal/index.json"
INDEX_VERSION = 1
MAX_INDEX_SIZE = 64 << 20
"""Largest index.json extraction accepts (about 500 000 files); it is not part of the budget."""

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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
        clash = collision(f.path for f in files)
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
    problem = path_problem(path)
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
