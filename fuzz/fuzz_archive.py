"""Fuzz target: the zip extractor behind a valid seal (``archive.extract``).

The bundle's digests are signed, so a forged zip only reaches ``extract`` when the publisher's
key signed it; this target assumes the worst and hands ``extract`` attacker-chosen zip bytes with
a signed unpacked-size budget. Input: one flag byte (bit 0: extract into a nested new folder,
bit 1: two writer threads, bit 2: into an existing empty folder), three bytes of budget, then the
zip. Besides the error contract it checks what a device relies on: a refused bundle leaves
nothing behind, and an accepted one wrote exactly its index, only inside the destination.
"""

from __future__ import annotations

import os
import shutil
import sys
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


def _extract_and_check(data: bytes) -> None:
    """Extract the zip; check what is left behind whether it was accepted or refused."""
    src = _harness.Input(data)
    flags = src.int(1)
    budget = src.int(3)
    zip_path, out = _work() / "bundle.zip", _work() / "out"
    zip_path.write_bytes(src.rest())
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
