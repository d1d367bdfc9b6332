"""The one seam between the delta benchmark and otaseal: every call it times or counts goes here.

The harness measures otaseal's own code, never a copy of it: making a patch is
``otaseal.formats.delta.make_patch``, the Capgo bodies are ``otaseal.formats.capgo_files.build``,
a full install is ``otaseal.client.install_release``, a patch install is
``otaseal.client.build_from_patch`` then the client's swap (what ``check_for_update`` does when
the patch works; a refused patch raises here instead of falling back, so a fallback is never
timed as a delta). ``describe()`` names them for the report.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otaseal.archive import INDEX_PATH, extract
from otaseal.client import _swap, build_from_patch, install_release
from otaseal.formats.capgo_files import build, parse_list
from otaseal.formats.delta import make_patch
from otaseal.formats.sealed import open_sealed

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from otaseal.crypto import CapgoPrivateKey, DecryptionKey
    from otaseal.model import Patch, Release
    from otaseal.store import Fetcher

__all__ = [
    "apply_delta",
    "capgo_build",
    "describe",
    "extract_base",
    "index_bytes",
    "install_full",
    "make_patch",
]


@dataclass(frozen=True, slots=True)
class CapgoBody:
    """One file of our Capgo manifest mode: its path, content hash and stored body length."""

    path: str
    sha256: str
    length: int


def index_bytes(zip_path: Path) -> bytes:
    """``.otaseal/index.json`` exactly as in the zip (what ``delta.index`` hashes)."""
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(INDEX_PATH)


def capgo_build(
    files: Iterable[tuple[str, bytes]], key: CapgoPrivateKey, app: str
) -> list[CapgoBody]:
    """Our Capgo manifest mode's list for ``files``: each file's stored body length."""
    built = build(files, key, app)
    listed = parse_list(built.list_object, count=built.count)
    return [CapgoBody(f.path, f.sha256, f.length) for f in listed.files]


def extract_base(cub: Path, key: DecryptionKey, release: Release, dest: Path) -> None:
    """What publish does to get a base release's files back: open the seal, extract."""
    plain = dest.with_name(dest.name + ".zip")
    with cub.open("rb") as src, plain.open("wb") as out:
        open_sealed(src, key, out, max_plaintext=release.plaintext_length)
    extract(plain, dest, max_total_size=release.unpacked_size)
    plain.unlink()


@dataclass(frozen=True, slots=True)
class Update:
    """What a device needs to move to ``release``: the store, the signed entry, its key."""

    store: Fetcher
    app: str
    release: Release
    patch: Patch
    key: DecryptionKey
    base_index: bytes  # the installed release's index, which the device keeps (SPEC §19)


def install_full(update: Update, out_dir: Path, work: Path) -> None:
    """The device installs the release from its full sealed bundle (replacing ``out_dir``)."""
    install_release(
        update.store,
        app=update.app,
        release=update.release,
        decryption_key=update.key,
        out_dir=out_dir,
        work=work,
    )


def describe() -> str:
    """Which device apply the benchmark uses."""
    return (
        "make_patch = otaseal.formats.delta.make_patch; "
        "device apply = otaseal.client.build_from_patch + swap"
    )


def apply_delta(update: Update, out_dir: Path, work: Path) -> None:
    """The device moves from the installed base in ``out_dir`` to the release through the patch."""
    staging, _ = build_from_patch(
        update.store,
        app=update.app,
        release=update.release,
        patch=update.patch,
        base_index=update.base_index,
        decryption_key=update.key,
        out_dir=out_dir,
        work=work,
    )
    try:
        _swap(staging, out_dir, out_dir.with_name(out_dir.name + ".otaseal-old"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
