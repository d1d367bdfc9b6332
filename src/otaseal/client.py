"""The reference device client: the spec's check order, with I/O around the pure core.

Order: fix the reference time → walk root versions (threshold of old and new) → fetch the channel
manifest (size-capped) → verify, then parse → app, channel, spec → version → expiry → pick a
release → download at most the signed length → ciphertext hash before decrypting → decrypt →
plaintext hash → safe extraction against the index → stage. Trusted state (root, manifest
versions, installed release) is written once, atomically, and only when all of that succeeded.
When the release carries a sealed patch from the installed bundle (SPEC §19), the device tries it
first and falls back to the full bundle on any failure of the patch path.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from otaseal import jsonread, trust
from otaseal.delta import baseindex
from otaseal.devicestate import STATE_FILE, DeviceState
from otaseal.errors import (
    Error,
    HashMismatchError,
    InputError,
    LengthError,
    MetadataError,
    NotFoundError,
    OversizeMetadataError,
)
from otaseal.progress import NO_PROGRESS
from otaseal.store import bundle_key, pointer_key, root_key

if TYPE_CHECKING:
    from datetime import datetime

    from otaseal.crypto import DecryptionKey
    from otaseal.model import Patch, Release, Root
    from otaseal.progress import Progress
    from otaseal.store import Fetcher

__all__ = ["STATE_FILE", "DeltaReport", "DeviceState", "FetchResult", "check_for_update"]


@dataclass(frozen=True, slots=True)
class DeltaReport:
    """What became of the release's patch from the installed bundle (SPEC §19 "Report")."""

    used: bool
    base: str  # the installed bundle the patch starts from
    base_label: str
    bytes: int  # of the sealed patch downloaded, whether or not it was used
    refused: str | None = None  # "<error class>: <what>" when the device fell back

    def to_json(self) -> dict[str, object]:
        """The ``delta`` member of ``fetch --json``."""
        return {
            "used": self.used,
            "base": self.base,
            "base_label": self.base_label,
            "bytes": self.bytes,
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the device did: ``installed``, ``up_to_date`` or ``builtin``."""

    status: str
    channel: str
    manifest_version: int
    release: Release | None
    detail: str = ""
    downloaded: int = 0  # bytes of sealed bundles and patches this check downloaded
    delta: DeltaReport | None = None  # None: the release has no patch this device could use


def fetch_metadata(fetcher: Fetcher, key: str, what: str) -> bytes:
    """Read at most the metadata cap; a longer object is refused before any parsing."""
    try:
        return fetcher.fetch(key, max_bytes=trust.METADATA_MAX_BYTES)
    except LengthError:
        raise OversizeMetadataError(
            f"the {what} at {key} is larger than {trust.METADATA_MAX_BYTES} bytes",
            expected="small signed metadata",
            fix="the store serves an oversized file; check the store",
        ) from None


def update_root(
    fetcher: Fetcher,
    trusted: Root,
    trusted_bytes: bytes,
    now: datetime,
) -> tuple[Root, bytes]:
    """Walk root N+1, N+2, … each signed by a threshold of the previous and its own keys."""
    root, data = trusted, trusted_bytes
    for hop in range(trust.MAX_ROOT_HOPS + 1):
        try:
            nxt = fetch_metadata(fetcher, root_key(root.app, root.version + 1), "root")
        except NotFoundError:
            break
        if hop == trust.MAX_ROOT_HOPS:
            raise MetadataError(
                f"the store offers more than {trust.MAX_ROOT_HOPS} new root versions at once",
                expected=f"at most {trust.MAX_ROOT_HOPS} root updates per check",
                fix="ship a newer root.json with the app",
            )
        root, data = trust.verify_root_update(root, nxt), nxt
    trust.verify_not_expired(f"root v{root.version}", root.expires, now)
    return root, data


class _Reporting:
    """A file that tells ``progress`` how much was written to it (a segment at a time)."""

    __slots__ = ("_out", "_progress")

    def __init__(self, out: BinaryIO, progress: Progress) -> None:
        self._out, self._progress = out, progress

    def write(self, data: bytes) -> int:
        written = self._out.write(data)
        self._progress.advance(0, len(data))
        return written


class _Tally:
    """Bytes downloaded so far in this check, kept even when a download is refused."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


def _download(
    fetcher: Fetcher,
    key: str,
    dest: Path,
    *,
    sha256: str,
    length: int,
    what: str,
    progress: Progress = NO_PROGRESS,
    tally: _Tally | None = None,
) -> None:
    """At most the signed length, hashed as it arrives; the digest is checked before decrypt."""
    digest, seen = hashlib.sha256(), 0
    progress.start("downloading", size=length)
    with dest.open("wb") as out:
        for chunk in fetcher.stream(key, max_bytes=length):
            seen += len(chunk)
            if tally is not None:
                tally.bytes += len(chunk)
            if seen > length:  # whatever the transport does, stop at the signed length
                raise LengthError(
                    f"{what} is longer than {length} bytes",
                    expected=f"{length} bytes (the signed length)",
                    fix="the stored file was altered; nothing was installed",
                )
            digest.update(chunk)
            out.write(chunk)
            progress.advance(0, len(chunk))
    if seen != length:
        raise LengthError(
            f"{what} is {seen} bytes",
            expected=f"{length} bytes (the signed length)",
            fix="the stored file is truncated; republish it",
        )
    if digest.hexdigest() != sha256:
        raise HashMismatchError(
            f"the SHA-256 of {what} is {digest.hexdigest()[:16]}…",
            expected=f"{sha256[:16]}… as the signed manifest says",
            fix="the stored file was altered or corrupted; nothing was installed",
        )


def _decrypt(
    cipher: Path,
    plain: Path,
    decryption_key: DecryptionKey,
    *,
    sha256: str,
    length: int,
    what: str,
    progress: Progress,
) -> None:
    """Decrypt at most ``length`` bytes, then check the plaintext's digest and length."""
    from otaseal.formats.sealed import open_sealed  # noqa: PLC0415 - only when installing

    progress.start("decrypting", size=length)
    with cipher.open("rb") as src, plain.open("wb") as dst:
        plain_sha, plain_len = open_sealed(
            src, decryption_key, _Reporting(dst, progress), max_plaintext=length
        )
    if (plain_sha, plain_len) != (sha256, length):
        raise HashMismatchError(
            f"the SHA-256 of {what}, decrypted, is {plain_sha[:16]}… ({plain_len} bytes)",
            expected=f"{sha256[:16]}… ({length} bytes)",
            fix="it was sealed for other content; nothing was installed",
        )
    cipher.unlink()


def install_release(
    fetcher: Fetcher,
    *,
    app: str,
    release: Release,
    decryption_key: DecryptionKey,
    out_dir: Path,
    work: Path,
    progress: Progress = NO_PROGRESS,
    tally: _Tally | None = None,
) -> bytes:
    """Download, verify, decrypt and extract ``release`` into ``out_dir`` (replaced whole).

    Returns the bytes of the bundle's ``.otaseal/index.json``: the dictionary of the next patch.
    """
    from otaseal.archive import extract  # noqa: PLC0415 - only when installing
    from otaseal.formats.delta import index_bytes  # noqa: PLC0415

    plain = _fetch_sealed(
        fetcher,
        bundle_key(app, release.sha256),
        work / "bundle",
        sealed=(release.sha256, release.length),
        plaintext=(release.plaintext_sha256, release.plaintext_length),
        decryption_key=decryption_key,
        what=f"the bundle of {release.short}",
        progress=progress,
        tally=tally,
    )
    old = out_dir.with_name(out_dir.name + ".otaseal-old")
    _remove_stale(old)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_path(out_dir)
    try:
        index = extract(plain, staging, max_total_size=release.unpacked_size, progress=progress)
        if len(index.files) != release.files:
            raise HashMismatchError(
                f"the bundle holds {len(index.files)} files",
                expected=f"{release.files} as the manifest says",
            )
        index_json = index_bytes(plain)
        _swap(staging, out_dir, old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return index_json


def _fetch_sealed(
    fetcher: Fetcher,
    key: str,
    stem: Path,
    *,
    sealed: tuple[str, int],
    plaintext: tuple[str, int],
    decryption_key: DecryptionKey,
    what: str,
    progress: Progress,
    tally: _Tally | None,
) -> Path:
    """Steps 14–17 for any sealed object (a bundle or a patch): the checked plaintext's path.

    Download at most the signed length and check its SHA-256 before decrypting, then decrypt
    within the signed plaintext length and check that digest too.
    """
    cipher, plain = stem.with_suffix(".cub"), stem.with_suffix(".plain")
    _download(
        fetcher,
        key,
        cipher,
        sha256=sealed[0],
        length=sealed[1],
        what=what,
        progress=progress,
        tally=tally,
    )
    _decrypt(
        cipher,
        plain,
        decryption_key,
        sha256=plaintext[0],
        length=plaintext[1],
        what=what,
        progress=progress,
    )
    return plain


def _staging_path(out_dir: Path) -> Path:
    """A fresh name next to the install folder (same file system, so the swap is a rename)."""
    staging = Path(tempfile.mkdtemp(prefix=".otaseal-staging-", dir=out_dir.parent))
    staging.rmdir()
    return staging


def usable_patch(release: Release, installed: str | None, out_dir: Path) -> Patch | None:
    """The release's patch from the installed bundle, if the installed folder is there.

    A patch no smaller than the bundle is not worth its risk of a second download.
    """
    if release.delta is None or installed is None or _kind(out_dir) != stat.S_IFDIR:
        return None
    patch = release.delta.patch_from(installed)
    return patch if patch is not None and patch.length < release.length else None


def build_from_patch(
    fetcher: Fetcher,
    *,
    app: str,
    release: Release,
    patch: Patch,
    base_index: bytes,
    decryption_key: DecryptionKey,
    out_dir: Path,
    work: Path,
    progress: Progress = NO_PROGRESS,
    tally: _Tally | None = None,
) -> tuple[Path, bytes]:
    """Build ``release`` in a staging folder by applying ``patch`` to ``out_dir`` (SPEC §19).

    ``base_index`` is the stored index of the installed release (the head's dictionary).
    Returns the staging folder, ready to swap in, and the new release's index bytes. Any failure
    removes the folder, leaves ``out_dir`` untouched and raises; the caller then installs the
    full bundle.
    """
    from otaseal.delta.apply import apply_patch  # noqa: PLC0415 - only when patching
    from otaseal.formats.delta import check_header, read_header  # noqa: PLC0415

    if release.delta is None:  # pragma: no cover - usable_patch found the patch there
        raise ValueError(release.short)
    stem = work / "patch"
    try:
        plain = _fetch_sealed(
            fetcher,
            bundle_key(app, patch.sha256),
            stem,
            sealed=(patch.sha256, patch.length),
            plaintext=(patch.plaintext_sha256, patch.plaintext_length),
            decryption_key=decryption_key,
            what=f"the patch from {patch.base_label or patch.base[:12]} to {release.short}",
            progress=progress,
            tally=tally,
        )
        with plain.open("rb") as src:
            header = read_header(src, patch.plaintext_length, base_index=base_index)
        index = check_header(
            header,
            index_digest=release.delta.index,
            base=patch.base,
            target=release.sha256,
            files=release.files,
            size=release.unpacked_size,
        )
        old = out_dir.with_name(out_dir.name + ".otaseal-old")
        _remove_stale(old)
        staging = _staging_path(out_dir)
        try:
            apply_patch(plain, header, index, base_dir=out_dir, staging=staging, progress=progress)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:  # the patch is worth nothing once applied or refused: free its space for the bundle
        for leftover in (stem.with_suffix(".cub"), stem.with_suffix(".plain")):
            leftover.unlink(missing_ok=True)
    return staging, header.index_json


def _kind(path: Path) -> int | None:
    """``stat`` file type of ``path`` itself (a symlink is a symlink), or None if absent."""
    try:
        return stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        return None


def check_out_dir(out_dir: Path) -> None:
    """The install folder is a real folder or does not exist yet; a symlink or file is refused.

    Replacing a symlink would swap the link, not the build it points to, and leave the old build
    behind; refusing before the check starts keeps every path untouched.
    """
    try:
        kind = _kind(out_dir)
    except OSError as exc:
        raise InputError(f"cannot inspect the install folder {out_dir} ({exc.strerror})") from None
    if kind == stat.S_IFLNK:
        raise InputError(
            f"the install folder {out_dir} is a symbolic link",
            expected="a folder, or a path that does not exist yet",
            fix=f"pass the folder it points to ({out_dir.resolve()}) as --out",
        )
    if kind not in (None, stat.S_IFDIR):
        raise InputError(
            f"the install folder {out_dir} exists and is not a folder",
            expected="a folder, or a path that does not exist yet",
            fix="remove it or pass another --out",
        )


def _remove_stale(old: Path) -> None:
    """Remove what a crashed install left at ``<out>.otaseal-old``, never following a link."""
    try:
        kind = _kind(old)
        if kind == stat.S_IFDIR:
            shutil.rmtree(old)
        elif kind is not None:
            old.unlink()
    except OSError as exc:
        raise InputError(
            f"cannot remove {old}, left by an earlier install ({exc.strerror})",
            expected="a path otaseal may delete: it is reserved for the previous build",
            fix=f"remove {old} by hand; nothing was installed",
        ) from None


def _uninstall(out_dir: Path) -> None:
    """Remove the installed build (``target: builtin``): moved aside first, so it goes whole."""
    if _kind(out_dir) != stat.S_IFDIR:
        return
    old = out_dir.with_name(out_dir.name + ".otaseal-old")
    _remove_stale(old)
    try:
        out_dir.rename(old)
    except OSError as exc:
        raise InputError(
            f"cannot remove the installed build {out_dir} ({exc.strerror})",
            expected="a writable install folder",
            fix="check --out and its permissions; the installed build is unchanged",
        ) from None
    shutil.rmtree(old, ignore_errors=True)


def _swap(staging: Path, out_dir: Path, old: Path) -> None:
    """Move the old build aside, the new one in, then delete the old one; undo on failure."""
    had_old = _kind(out_dir) == stat.S_IFDIR
    try:
        if had_old:
            out_dir.rename(old)
        try:
            staging.rename(out_dir)
        except OSError:
            if had_old:
                old.rename(out_dir)
            raise
    except OSError as exc:
        raise InputError(
            f"cannot move the new build into {out_dir} ({exc.strerror})",
            expected="a writable install folder",
            fix="check --out and its permissions; the installed build is unchanged",
        ) from None
    shutil.rmtree(old, ignore_errors=True)


def check_for_update(
    fetcher: Fetcher,
    *,
    app: str,
    channel: str,
    state_dir: Path,
    decryption_key: DecryptionKey,
    install_id: str,
    out_dir: Path,
    now: datetime,
    native: int | None = None,
    initial_root: bytes | None = None,
    progress: Progress = NO_PROGRESS,
) -> FetchResult:
    """One update check, exactly in the spec's order; state changes only on success.

    ``progress`` hears of the download, decryption and extraction of a release.
    """
    _check_device(install_id, native)
    check_out_dir(out_dir)
    state = DeviceState.load(state_dir, initial_root)
    trusted, start, start_bytes = starting_root(state, initial_root, app=app, state_dir=state_dir)
    root, root_bytes = update_root(fetcher, start, start_bytes, now)
    for role in trust.rotated_roles(trusted, root):
        # Fast-forward recovery: a channel whose keys changed starts a new version history.
        if role.startswith("channel:"):
            state.versions.pop(role.removeprefix("channel:"), None)
    stored = state.versions.get(channel)
    try:
        data = fetch_metadata(fetcher, pointer_key(app, channel), f"{channel} manifest")
    except NotFoundError:
        raise NotFoundError(
            f"the store has no {channel} manifest for {app}",
            expected=f"{pointer_key(app, channel)} in the store",
            fix="publish to the channel first, or check --store/--base-url, --app and --channel",
        ) from None
    manifest = trust.verify_channel_manifest(
        root, data, channel=channel, now=now, trusted_version=stored
    )
    installed = state.installed.get(channel, {}).get("sha256")
    if stored is not None and manifest.version == stored and state.selected_for(channel, native):
        return FetchResult(
            "up_to_date", channel, manifest.version, None, "no new manifest since the last check"
        )
    state.root, state.versions[channel] = root_bytes, manifest.version
    state.natives[channel] = native
    if manifest.builtin:
        state.installed.pop(channel, None)
        _uninstall(out_dir)
        baseindex.remove(state_dir, channel)
        state.save(state_dir)
        return FetchResult(
            "builtin",
            channel,
            manifest.version,
            None,
            "the channel sends devices back to the app's builtin web build",
        )
    release = trust.pick_release(
        manifest, install_id=install_id, native=native, installed_sha256=installed
    )
    if release is None or release.sha256 == installed:
        state.save(state_dir)
        detail = (
            "already running the release this device should run"
            if release
            else "no release on this channel is for this device yet"
        )
        return FetchResult("up_to_date", channel, manifest.version, release, detail)
    work = Path(
        tempfile.mkdtemp(
            prefix=".otaseal-fetch-", dir=state_dir.parent if state_dir.parent.is_dir() else None
        )
    )
    tally = _Tally()
    try:
        report, index_json = _install(
            fetcher,
            app=app,
            release=release,
            installed=installed,
            base_index=baseindex.load(state_dir, channel) if installed else None,
            decryption_key=decryption_key,
            out_dir=out_dir,
            work=work,
            progress=progress,
            tally=tally,
        )
    except OSError as exc:
        raise InputError(
            f"cannot install {release.short} into {out_dir} ({exc.strerror})",
            expected="writable --out and --state folders with room for the bundle",
            fix="check their permissions and free space; nothing was installed",
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    state.installed[channel] = {
        "sha256": release.sha256,
        "label": release.label,
        "counter": release.counter,
    }
    baseindex.save(state_dir, channel, index_json)  # before the state that names its release
    state.save(state_dir)
    return FetchResult(
        "installed", channel, manifest.version, release, downloaded=tally.bytes, delta=report
    )


def _install(
    fetcher: Fetcher,
    *,
    app: str,
    release: Release,
    installed: str | None,
    base_index: bytes | None,
    decryption_key: DecryptionKey,
    out_dir: Path,
    work: Path,
    progress: Progress,
    tally: _Tally,
) -> tuple[DeltaReport | None, bytes]:
    """The patch from the installed bundle if there is one and it works, else the full bundle.

    Returns the report and the new index's bytes. The swap's own failure is not a patch failure:
    it is reported as it is for a full install. When the full bundle fails too, its error says
    why the patch was refused.
    """
    patch = usable_patch(release, installed, out_dir)
    refused = None
    if patch is not None and base_index is None:
        refused = (
            "DeltaError: no index of the installed release is stored (it was installed before "
            "the device kept them, or the file was removed)"
        )
    elif patch is not None and base_index is not None:
        try:
            staging, index_json = build_from_patch(
                fetcher,
                app=app,
                release=release,
                patch=patch,
                base_index=base_index,
                decryption_key=decryption_key,
                out_dir=out_dir,
                work=work,
                progress=progress,
                tally=tally,
            )
        except Error as exc:
            refused = f"{type(exc).__name__}: {exc.what}"
        except OSError as exc:  # the device's own files: the full bundle may still fit
            refused = f"InputError: cannot apply the patch ({exc.strerror})"
        else:
            try:
                _swap(staging, out_dir, out_dir.with_name(out_dir.name + ".otaseal-old"))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            used = DeltaReport(
                used=True, base=patch.base, base_label=patch.base_label, bytes=tally.bytes
            )
            return used, index_json
    patch_bytes = tally.bytes
    try:
        index_json = install_release(
            fetcher,
            app=app,
            release=release,
            decryption_key=decryption_key,
            out_dir=out_dir,
            work=work,
            progress=progress,
            tally=tally,
        )
    except Error as exc:
        if patch is None or refused is None:
            raise
        base = patch.base_label or patch.base[:12]
        raise type(exc)(
            f"{exc.what} (the patch from {base} was refused first: {refused})",
            expected=exc.expected,
            fix=exc.fix,
        ) from None
    if patch is None:
        return None, index_json
    refusal = DeltaReport(
        used=False, base=patch.base, base_label=patch.base_label, bytes=patch_bytes, refused=refused
    )
    return refusal, index_json


def _check_device(install_id: str, native: int | None) -> None:
    """What the device says of itself must be usable in §8 and §9 (text; 0..2^53−1)."""
    try:
        install_id.encode()
    except UnicodeEncodeError:
        raise InputError(
            "the install id is not valid Unicode text", fix="use a random UUID as --install-id"
        ) from None
    if native is not None and jsonread.integer(native) is None:
        raise InputError(
            f"the native build number {native} is out of range",
            expected="an integer from 0 to 2^53−1 (9007199254740991)",
            fix="pass the app's native build number (versionCode / CFBundleVersion) as --native",
        )


def starting_root(
    state: DeviceState, shipped: bytes | None, *, app: str, state_dir: Path
) -> tuple[Root, Root, bytes]:
    """The root the device trusted before this check, and the one to walk the chain from.

    Both the state's root and the app's shipped root are checked against themselves (§6.2); the
    higher version is the start (SPEC §6.2: an app update may ship a newer root), and fast-forward
    recovery compares the newest root with the state's.
    """
    if shipped is not None and shipped == state.root:  # first run, or the same root
        trusted = _verify_shipped(shipped, app)
        return trusted, trusted, shipped
    try:
        trusted = trust.verify_trusted_root(state.root, app=app)
    except MetadataError as exc:
        raise InputError(
            f"the device state in {state_dir} holds a root that fails its own check: {exc.what}",
            expected=f"the root.json of {app}, as this client stored it",
            fix="remove the state directory and fetch again with --root",
        ) from None
    if shipped is None:
        return trusted, trusted, state.root
    candidate = _verify_shipped(shipped, app)
    if candidate.version > trusted.version:
        return trusted, candidate, shipped
    return trusted, trusted, state.root


def _verify_shipped(shipped: bytes, app: str) -> Root:
    """The app's own root.json (``--root``): a refusal names that file, not the store."""
    try:
        return trust.verify_trusted_root(shipped, app=app)
    except MetadataError as exc:
        raise type(exc)(
            f"the root shipped with the app (--root) is refused: {exc.what}",
            expected=exc.expected,
            fix=f"pass the root.json of {app} that `otaseal init` wrote (otaseal.yml's root)",
        ) from None
