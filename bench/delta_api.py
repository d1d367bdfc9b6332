"""The one seam between the delta benchmark and otaseal: every call it times or counts goes here.

The harness measures otaseal's own code, never a copy of it: making a patch is
``otaseal.formats.delta.make_patch``, the Capgo bodies are ``otaseal.formats.capgo_files.build``,
a full install is ``otaseal.client.install_release``, a patch install is
``otaseal.client.build_from_patch`` then the client's swap (what ``check_for_update`` does when
the patch works; a refused patch raises here instead of falling back, so a fallback is never
timed as a delta). Where the client lacks those, :func:`_standin_apply` strings together the
device steps that exist (download with the signed length and digest, open the seal,
``read_header``/``check_header``, ``otaseal.delta.apply.apply_patch``, swap) in the order of
SPEC §19. ``describe()`` names which one ran, and the report prints it.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otaseal.archive import INDEX_PATH, extract
from otaseal.client import install_release
from otaseal.formats.capgo_files import build, parse_list
from otaseal.formats.delta import make_patch
from otaseal.formats.sealed import open_sealed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
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

# The reference client's patch path: build the release from the patch into a staging folder,
# then swap it in, as ``check_for_update`` does when the patch works (it raises, never falls back).
DEVICE_BUILD = ("otaseal.client", "build_from_patch")
DEVICE_SWAP = ("otaseal.client", "_swap")


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


def _device_apply() -> tuple[str, Callable[..., Any] | None, Callable[..., Any] | None]:
    found = []
    for module, name in (DEVICE_BUILD, DEVICE_SWAP):
        try:
            found.append(getattr(importlib.import_module(module), name, None))
        except ImportError:
            found.append(None)
    build_from_patch, swap = found
    if callable(build_from_patch) and callable(swap):
        return "otaseal.client.build_from_patch + swap", build_from_patch, swap
    return "stand-in (bench/delta_api.py)", None, None


def describe() -> str:
    """Which device apply the benchmark uses."""
    return f"make_patch = otaseal.formats.delta.make_patch; device apply = {_device_apply()[0]}"


def apply_delta(update: Update, out_dir: Path, work: Path) -> None:
    """The device moves from the installed base in ``out_dir`` to the release through the patch."""
    _, build_from_patch, swap = _device_apply()
    if build_from_patch is None or swap is None:
        _standin_apply(update, out_dir, work)
        return
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
        swap(staging, out_dir, out_dir.with_name(out_dir.name + ".otaseal-old"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _standin_apply(update: Update, out_dir: Path, work: Path) -> None:
    from otaseal.delta.apply import apply_patch  # noqa: PLC0415
    from otaseal.formats.delta import check_header, read_header  # noqa: PLC0415
    from otaseal.store import bundle_key  # noqa: PLC0415

    release, patch = update.release, update.patch
    assert release.delta is not None
    cipher, plain = work / "patch.cub", work / "patch.bin"
    digest = hashlib.sha256()
    with cipher.open("wb") as out:
        for chunk in update.store.stream(
            bundle_key(update.app, patch.sha256), max_bytes=patch.length
        ):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != patch.sha256:
        raise RuntimeError("the stored patch does not match its signed digest")
    with cipher.open("rb") as src, plain.open("wb") as out:
        plain_sha, _ = open_sealed(src, update.key, out, max_plaintext=patch.plaintext_length)
    if plain_sha != patch.plaintext_sha256:
        raise RuntimeError("the patch does not open to its signed plaintext")
    with plain.open("rb") as src:
        header = read_header(src, patch.plaintext_length, base_index=update.base_index)
    index = check_header(
        header,
        index_digest=release.delta.index,
        base=patch.base,
        target=release.sha256,
        files=release.files,
        size=release.unpacked_size,
    )
    staging = out_dir.with_name(out_dir.name + ".staging")
    base = out_dir.with_name(out_dir.name + ".base")
    apply_patch(plain, header, index, base_dir=out_dir, staging=staging)
    out_dir.rename(base)
    staging.rename(out_dir)
    shutil.rmtree(base)
