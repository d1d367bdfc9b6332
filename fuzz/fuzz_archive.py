"""Fuzz target: the zip extractor behind a valid seal (``archive.extract``).

The bundle's digests are signed, so a forged zip only reaches ``extract`` when the publisher's
key signed it; this target assumes the worst and hands ``extract`` attacker-chosen zip bytes with
a signed unpacked-size budget.

Input: one flag byte (bit 0: extract into a nested new folder, bit 1: two writer threads, bit 2:
into an existing empty folder, bit 3: build the zip), three bytes of budget, then the zip's
bytes, or (bit 3) the entries to build it from: for each, a name, contents and an option byte
(bit 0: deflate, bits 1 and 3: the index says a byte less or more, bit 2: left out of the index,
bit 4: a wrong SHA-256, bit 5: written twice, bits 6-7: a regular file, symlink, folder or
typeless mode). Built zips have right CRCs and, unless told to lie, a right index, so the fuzzer
spends its time on names, shapes and extraction rather than on checksums.

Besides the error contract it checks what a device relies on: a refused bundle leaves nothing
behind, and an accepted one wrote exactly its index, only inside the destination.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import sys
import warnings
import zipfile
from typing import TYPE_CHECKING

import _harness

with _harness.instrumented(fuzzing=__name__ == "__main__"):
    from otaseal import archive
    from otaseal.errors import Error

if TYPE_CHECKING:
    from pathlib import Path


def _work() -> Path:
    work = _harness.scratch() / "archive"
    work.mkdir(exist_ok=True)
    return work


def _found() -> list[str]:
    """Every path under the scratch folder other than the zip, relative, sorted."""
    work = _work()
    found = [
        os.path.relpath(os.path.join(folder, name), work)  # noqa: PTH118 - os.walk's strings
        for folder, dirs, files in os.walk(work)
        for name in dirs + files
    ]
    return sorted(p for p in found if p != "bundle.zip")


def _check_accepted(index: archive.Index, dest: Path) -> None:
    work = _work()
    prefix = os.path.relpath(dest, work)
    files = {p for p in _found() if (work / p).is_file() or (work / p).is_symlink()}
    expected = {f"{prefix}/{entry.path}" for entry in index.files}
    if files != expected:
        raise AssertionError(f"extract wrote {sorted(files ^ expected)[:5]} beyond its index")
    for entry in index.files:
        if (dest / entry.path).stat().st_size != entry.size:
            raise AssertionError(f"{entry.path} does not have its indexed size")


def _built(src: _harness.Input) -> bytes:
    """A zip made with Python's zipfile from fuzzed entries, with an index that mostly agrees."""
    entries = []
    while len(entries) < 16 and (name := src.chunk()):  # enough shapes
        entries.append((name.decode("utf-8", "replace"), src.chunk(), src.int(1)))
    index = []
    for name, data, options in entries:
        if options & 4:  # left out of the index
            continue
        size = len(data) + (options >> 3 & 1) - (options >> 1 & 1 if data else 0)  # may lie
        digest = hashlib.sha256(data + (b"!" if options & 16 else b"")).hexdigest()
        index.append({"path": name, "sha256": digest, "size": size})
    index.sort(key=lambda e: e["path"].encode("utf-8", "surrogatepass"))
    doc = {"files": index, "version": 1}
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        zf.writestr(archive.INDEX_PATH, json.dumps(doc, ensure_ascii=False).encode())
        for name, data, options in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if options & 1 else zipfile.ZIP_STORED
            mode = {0: stat.S_IFREG | 0o644, 1: stat.S_IFLNK | 0o777, 2: stat.S_IFDIR | 0o755}
            info.external_attr = mode.get(options >> 6 & 3, 0o644) << 16
            zf.writestr(info, data)
            if options & 32:
                zf.writestr(info, data)  # a duplicate name (zipfile warns, and writes it)
    return out.getvalue()


def _extract_and_check(data: bytes) -> None:
    """Extract the zip; check what is left behind whether it was accepted or refused."""
    src = _harness.Input(data)
    flags = src.int(1)
    budget = src.int(3)
    zip_path, out = _work() / "bundle.zip", _work() / "out"
    zip_path.write_bytes(_built(src) if flags & 8 else src.rest())
    dest = out / "web" if flags & 1 else out
    if flags & 4:
        dest.mkdir(parents=True)
    before = _found()
    try:
        index = archive.extract(
            zip_path, dest, max_total_size=budget, workers=2 if flags & 2 else 1
        )
    except Error:
        if _found() != before:
            raise AssertionError(
                f"a refused bundle left {_found()} behind (had {before})"
            ) from None
        raise
    _check_accepted(index, dest)


def target(data: bytes) -> None:
    """One input, with the scratch folder emptied afterwards, accepted or not."""
    try:
        _extract_and_check(data)
    finally:
        shutil.rmtree(_work() / "out", ignore_errors=True)


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
