"""Fuzz target: the sealed-delta reader (SPEC §19) on attacker-chosen patch plaintexts.

A patch reaches the reader only once its seal opened and its plaintext digest matched the signed
release, so this target assumes the publisher's key signed whatever it is given: the patch
plaintext goes to ``read_header``, ``check_header`` with signed values, then ``apply_patch``
from a fixed installed tree (plain files, a symbolic link to a file and to a folder, a FIFO)
into a fresh staging folder.

Input: one flag byte (bit 0: the head is compressed against the installed release's index, as a
device stores it; else no dictionary; bit 1: the signed values are those of the index the patch
carries, so mutated indexes reach the index rules and ``apply_patch``; else those of a fixed
release; bit 2: the head comes uncompressed and the target compresses it, so mutations edit the
index and ops JSON rather than break a zstd frame), one byte choosing the fixed release, then
the patch plaintext, or (bit 2) the head as a two-byte length and its bytes, then the payloads.
The seeds are real patches from :data:`OLD` to each of :data:`NEWS` made by ``make_patch``.

Besides the error contract it checks what a device relies on: an accepted patch wrote exactly
the index's files into staging, each with its indexed size and SHA-256, and the installed tree
is never changed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
from typing import TYPE_CHECKING

import _harness

with _harness.instrumented(fuzzing=__name__ == "__main__"):
    from otaseal.archive import FileEntry, Index
    from otaseal.delta.apply import apply_patch
    from otaseal.formats import delta

if TYPE_CHECKING:
    from pathlib import Path

BASE, TARGET = "b" * 64, "c" * 64
#: A carried index may sign at most this much (self-signed mode): zstd can expand an input of a
#: few kB by four orders of magnitude, which a real signer would also have to sign.
MAX_SELF_SIGNED_SIZE = 1 << 20
MAX_SELF_SIGNED_FILES = 64
CODE = "".join(f"export const v{i} = {i * 7};\n" for i in range(300)).encode()
#: The installed release (its regular files; the tree also has the links and the FIFO below).
OLD = {
    "index.html": b"<!doctype html><p>one</p>\n",
    "assets/index-Ab12Cd34.js": CODE,
    "assets/lib.js": b"lib\n" * 100,
    "img/logo.png": hashlib.shake_256(b"logo").digest(600),
}
NEWS = (
    {  # changed, renamed-and-changed, unchanged, moved, added
        "index.html": b"<!doctype html><p>two</p>\n",
        "assets/index-Zz98Yy76.js": CODE.replace(b"v150 = ", b"v150 = 1 + "),
        "assets/lib.js": OLD["assets/lib.js"],
        "images/logo.png": OLD["img/logo.png"],
        "new.txt": b"new\n",
    },
    {  # only copies, and an empty file
        "a/b/c/lib.js": OLD["assets/lib.js"],
        "empty": b"",
        "index.html": OLD["index.html"],
    },
    {"index.html": b"<p>three</p>\n" * 40},  # one file, no dictionary at its path left
)


def index_of(files: dict[str, bytes]) -> bytes:
    """The ``.otaseal/index.json`` bytes a packed build with ``files`` carries."""
    entries = sorted(
        (FileEntry(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items()),
        key=lambda e: e.path.encode(),
    )
    return Index(tuple(entries)).to_json()


BASE_INDEX = index_of(OLD)
#: Signed values of each fixed release: (delta.index, content.files, content.size).
SIGNED = tuple(
    (hashlib.sha256(index_of(n)).hexdigest(), len(n), sum(map(len, n.values()))) for n in NEWS
)


def framed(head: bytes, payloads: bytes, base_index: bytes | None) -> bytes:
    """A patch plaintext with ``head`` (index length, index, ops) compressed as a publisher does."""
    frame = delta.compress(head, base_index, level=1)
    return (
        delta.MAGIC
        + bytes.fromhex(BASE + TARGET)
        + len(frame).to_bytes(4, "big")
        + frame
        + payloads
    )


def raw_head(plaintext: bytes, base_index: bytes | None) -> tuple[bytes, bytes]:
    """``(head, payloads)`` of a patch plaintext: what :func:`framed` takes back."""
    start = len(delta.MAGIC) + 64
    end = start + 4 + int.from_bytes(plaintext[start : start + 4], "big")
    head = delta.decompressor(base_index).stream_reader(plaintext[start + 4 : end]).read()
    return head, plaintext[end:]


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """``files`` under ``root`` (made), as a build folder."""
    for name, data in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _installed() -> Path:
    """The fixed installed tree in the scratch folder, made on first use."""
    base = _harness.scratch() / "delta-base"
    if not base.is_dir():
        write_tree(base, OLD)
        (base / "assets" / "link.js").symlink_to("lib.js")
        (base / "linked").symlink_to("assets", target_is_directory=True)
        os.mkfifo(base / "pipe")
    return base


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``root``: regular files by size and SHA-256, others by kind."""
    found: dict[str, tuple[int, str]] = {}
    for path in root.rglob("*"):  # does not descend into linked folders
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = (-1, str(path.readlink()))
        elif path.is_file():
            data = path.read_bytes()
            found[rel] = (len(data), hashlib.sha256(data).hexdigest())
        else:
            found[rel] = (-2, "folder" if path.is_dir() else "other")
    return found


_BASE_STATE: list[dict[str, tuple[int, str]]] = []


def target(data: bytes) -> None:
    """Read, check and apply one patch; check staging and the installed tree afterwards."""
    src = _harness.Input(data)
    flags, choice = src.int(1), src.int(1)
    base_index = BASE_INDEX if flags & 1 else None
    plaintext = framed(src.chunk(), src.rest(), base_index) if flags & 4 else src.rest()
    header = delta.read_header(io.BytesIO(plaintext), len(plaintext), base_index=base_index)
    if flags & 2:
        carried = Index.from_json(header.index_json)
        if carried.total_size > MAX_SELF_SIGNED_SIZE or len(carried.files) > MAX_SELF_SIGNED_FILES:
            return
        digest = hashlib.sha256(header.index_json).hexdigest()
        signed = (digest, len(carried.files), carried.total_size)
    else:
        signed = SIGNED[choice % len(SIGNED)]
    index = delta.check_header(
        header, index_digest=signed[0], base=BASE, target=TARGET, files=signed[1], size=signed[2]
    )
    base = _installed()
    if not _BASE_STATE:
        _BASE_STATE.append(_snapshot(base))
    work = _harness.scratch() / "delta-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    patch, staging = work / "patch", work / "staging"
    patch.write_bytes(plaintext)
    try:
        apply_patch(patch, header, index, base_dir=base, staging=staging, workers=1)
        _check_applied(index, staging)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if _snapshot(base) != _BASE_STATE[0]:
            raise AssertionError("applying a patch changed the installed tree")


def _check_applied(index: Index, staging: Path) -> None:
    found = _snapshot(staging)
    files = {p: s for p, s in found.items() if s[0] >= 0}
    links = [p for p, s in found.items() if s[0] == -1]
    expected = {e.path: (e.size, e.sha256) for e in index.files}
    if files != expected or links:
        raise AssertionError(
            f"an accepted patch wrote {sorted(files)}, expected {sorted(expected)}"
        )


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
