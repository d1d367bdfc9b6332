"""What Capgo's own CLI (``bundle upload --delta``, 8.68.1) makes a device download, offline.

The CLI uploads one body per file and the plugin downloads every listed file it does not
already have. This module applies those rules to two trees on disk, without the CLI or a
server, so the benchmark can put Capgo's figure next to ours from the same bytes:

* which files are listed (reference §2.3 step 1): a path whose absolute path string contains
  one of the skip words is left out, and so is an empty file;
* how big each stored body is (§2.3 step 4): Brotli at Node's default settings (quality 11,
  window 22, the same as Python ``brotli``'s defaults) when the file has at least 8,192 bytes
  and the result is smaller than ``size - 10``; then AES-128-CBC with PKCS#7 padding, which
  rounds up to the next multiple of 16 (a whole extra block when already aligned);
* what the device reuses (§2.2 step 2): a file of the target whose SHA-256 and base name match
  a file it already holds (its cache is keyed ``<hash>_<basename>``), which is every file of
  the base release when that release came through manifest mode too.

The per-file manifest in the update reply is not counted here (see ``reply_bytes``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import brotli

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

SKIP_WORDS = (
    ".DS_Store",
    ".git",
    ".gitignore",
    "node_modules",
    "package-lock.json",
    "tsconfig.json",
    "tsconfig.app.json",
    "tsconfig.spec.json",
)
BROTLI_MIN_SIZE = 8_192
BROTLI_MIN_GAIN = 10
AES_BLOCK = 16
MAX_FILES = 10_000
SIGNED_HASH_HEX = 512  # a V3-signed file_hash: the 256-byte RSA block in hex (§1.5)


class CapgoRefusalError(Exception):
    """The CLI would refuse this tree (a name with a space, too many files)."""


@dataclass(frozen=True, slots=True)
class ListedFile:
    """One file the CLI lists: its path in the bundle, SHA-256 and size (before compression)."""

    path: str
    sha256: str
    size: int

    @property
    def reuse_key(self) -> tuple[str, str]:
        """What the plugin's cache looks files up by: hash and base name."""
        return self.sha256, self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Body:
    """A stored body: its length after Brotli (if used) and AES-CBC padding."""

    path: str
    length: int
    brotli: bool


def listed(root: Path) -> list[ListedFile]:
    """The files ``bundle upload --delta`` lists for the web dir ``root``, sorted by path."""
    found: list[ListedFile] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)  # noqa: PTH118 - the CLI matches the path string
            if any(word in full for word in SKIP_WORDS):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if " " in rel:
                raise CapgoRefusalError(f"the Capgo CLI refuses file names with spaces: {rel!r}")
            with open(full, "rb") as f:  # noqa: PTH123 - os.walk gives strings
                data = f.read()
            if data:
                found.append(ListedFile(rel, hashlib.sha256(data).hexdigest(), len(data)))
    if len(found) > MAX_FILES:
        raise CapgoRefusalError(f"the Capgo CLI refuses {len(found)} files (at most {MAX_FILES})")
    return sorted(found, key=lambda f: f.path)


def padded(length: int) -> int:
    """AES-CBC with PKCS#7 padding: the next multiple of 16, a whole block more if aligned."""
    return (length // AES_BLOCK + 1) * AES_BLOCK


def body(path: str, data: bytes) -> Body:
    """The body the CLI stores for ``data`` (encrypted, as for an app with a public key)."""
    if len(data) >= BROTLI_MIN_SIZE:
        squeezed = len(brotli.compress(data))
        if squeezed < len(data) - BROTLI_MIN_GAIN:
            return Body(path + ".br", padded(squeezed), brotli=True)
    return Body(path, padded(len(data)), brotli=False)


def downloads(base: Iterable[ListedFile], target: Iterable[ListedFile]) -> list[ListedFile]:
    """Files of ``target`` a device running ``base`` does not have, so downloads."""
    have = {f.reuse_key for f in base}
    return [f for f in target if f.reuse_key not in have]


def download_bytes(root: Path, files: Iterable[ListedFile]) -> list[Body]:
    """The bodies of ``files`` (under ``root``) as the CLI would store them."""
    return [body(f.path, (root / f.path).read_bytes()) for f in files]


def reply_bytes(target: Iterable[ListedFile], *, url_prefix: str) -> int:
    """Size of the ``manifest`` array in the update reply (every file, signed hashes).

    Informative: both Capgo columns pay it on every update whatever changed, and a sealed
    update pays for its own manifest instead. Body names get ``.br`` only where the CLI would
    compress, which this does not know here, so it assumes none do (a lower bound).
    """
    entries = [
        {
            "file_name": f.path,
            "file_hash": "0" * SIGNED_HASH_HEX,
            "download_url": f"{url_prefix}{f.sha256}",
        }
        for f in target
    ]
    return len(json.dumps(entries, separators=(",", ":")).encode())
