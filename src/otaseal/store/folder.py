"""A folder as a store: the default, and what a bucket website or CDN can serve as is.

Create-only writes go through a complete temp file and ``os.link`` (which fails if the name
exists), so a reader never sees a partial object. Compare-and-swap holds an ``flock`` on a lock
file next to the pointer while it checks the etag (SHA-256 of the content) and renames.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.errors import ConflictError, LengthError, NotFoundError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

CHUNK = 1024 * 1024


class FolderStore:
    """``Storage`` on a local directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        """The folder path."""
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _not_writable(self, exc: OSError) -> StoreError:
        return StoreError(
            f"the store folder {self.root} is not writable ({exc.strerror})",
            expected="a directory this user can create files in",
            fix="fix the permissions or pass another --store PATH",
        )

    def _cannot_read(self, key: str, exc: OSError) -> StoreError:
        if exc.errno == errno.ENOTDIR:
            return StoreError(
                f"the store folder {self.root} is not a folder: a file is in its path "
                f"({exc.strerror})",
                expected="a directory (or a path where one can be created)",
                fix="pass another --store PATH, or move the file out of the way",
            )
        return StoreError(
            f"cannot read {key} from {self.root} ({exc.strerror})",
            expected="a store folder this user can read",
            fix="fix the permissions or pass another --store PATH",
        )

    # --- reads ---------------------------------------------------------------------------------
    def read(self, key: str) -> tuple[bytes, str]:
        """Whole object and its etag."""
        data = self._read(key)
        return data, hashlib.sha256(data).hexdigest()

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not in the store {self.root}") from None
        except OSError as exc:
            raise self._cannot_read(key, exc) from None

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self._path(key).is_file()

    def head(self, key: str, *, length: int) -> bytes:
        """The first ``length`` bytes."""
        try:
            with self._path(key).open("rb") as handle:
                return handle.read(length)
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not in the store {self.root}") from None
        except OSError as exc:
            raise self._cannot_read(key, exc) from None

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        """Whole object, refusing more than ``max_bytes``."""
        return b"".join(self.stream(key, max_bytes=max_bytes))

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        """Chunks of the object; stops with ``LengthError`` once past ``max_bytes``."""
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not in the store {self.root}") from None
        except OSError as exc:
            raise self._cannot_read(key, exc) from None
        with handle:
            seen = 0
            while chunk := handle.read(min(CHUNK, max_bytes - seen + 1)):
                seen += len(chunk)
                if seen > max_bytes:
                    raise LengthError(
                        f"{key} is longer than the {max_bytes} bytes it may have",
                        expected=f"at most {max_bytes} bytes (the signed length)",
                        fix="the stored object was altered; republish it",
                    )
                yield chunk

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``."""
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    # --- writes --------------------------------------------------------------------------------
    def _temp(self, key: str) -> Path:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except OSError as exc:
            raise self._not_writable(exc) from None
        os.close(fd)
        return Path(name)

    def _publish_temp(self, temp: Path, key: str) -> bool:
        try:
            os.link(temp, self._path(key))
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
        return True

    def create(self, key: str, data: bytes) -> bool:
        """Create-only: complete temp file, then a hard link that fails if the name exists."""
        if self.exists(key):
            return False
        temp = self._temp(key)
        _write_synced(temp, data)
        return self._publish_temp(temp, key)

    def create_from_file(self, key: str, path: Path) -> bool:
        """Create-only: a hard link when ``path`` is on the same filesystem, else a copy."""
        if self.exists(key):
            return False
        with path.open("rb") as src:
            os.fsync(src.fileno())
        try:
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
            os.link(path, self._path(key))
        except FileExistsError:
            return False
        except OSError:
            pass  # another filesystem (or no hard links): copy
        else:
            return True
        temp = self._temp(key)
        with path.open("rb") as src, temp.open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        return self._publish_temp(temp, key)

    def replace(self, key: str, data: bytes, *, etag: str | None) -> str:
        """Compare-and-swap under an exclusive lock on ``<key>.lock``."""
        target = self._path(key)
        temp = self._temp(key)
        lock_path = target.with_name("." + target.name + ".lock")
        with lock_path.open("a") as lock, _flock(lock.fileno()):
            current = hashlib.sha256(target.read_bytes()).hexdigest() if target.exists() else None
            if current != etag:
                temp.unlink(missing_ok=True)
                raise ConflictError(f"{key} changed while this command ran")
            _write_synced(temp, data)
            temp.replace(target)
        return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _flock(fd: int) -> Iterator[None]:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
