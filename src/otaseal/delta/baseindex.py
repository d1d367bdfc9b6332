"""The index of the installed release, kept by the device as the dictionary of the next patch.

A patch's head (SPEC §19.2) is compressed against the index of the release it applies to, so the
device keeps those exact bytes, one file per channel in its state folder. They are not trusted:
a wrong or damaged file only makes the patch's index fail its signed digest, and the device then
installs the full bundle. Losing the file costs the same, so every failure here is quiet.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from otaseal.archive import MAX_INDEX_SIZE

__all__ = ["FOLDER", "load", "path_for", "remove", "save"]

#: Under the state folder: ``installed/<channel>.index.json``.
FOLDER = "installed"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def path_for(state_dir: Path, channel: str) -> Path:
    """Where the index of the release installed from ``channel`` is kept."""
    return state_dir / FOLDER / f"{channel}.index.json"


def load(state_dir: Path, channel: str) -> bytes | None:
    """The stored bytes, or None when there are none to use (absent, a link, too large)."""
    try:
        fd = os.open(path_for(state_dir, channel), _READ)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = bytearray()
        while len(data) <= MAX_INDEX_SIZE and (chunk := os.read(fd, 1 << 20)):
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    return bytes(data) if 0 < len(data) <= MAX_INDEX_SIZE else None


def save(state_dir: Path, channel: str, data: bytes) -> None:
    """Replace the stored index atomically; on failure remove it (the next patch is skipped)."""
    target = path_for(state_dir, channel)
    temp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".index-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(target)
    except OSError:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        remove(state_dir, channel)


def remove(state_dir: Path, channel: str) -> None:
    """Forget the stored index (the channel went back to the builtin build)."""
    with contextlib.suppress(OSError):
        path_for(state_dir, channel).unlink(missing_ok=True)
