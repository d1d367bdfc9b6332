"""A test device that plays ``@capgo/capacitor-updater`` 8.51.23's manifest download, step by step.

capgo-protocol.md §2.1/§2.2 (Android ``DownloadService.handleManifestDownload``, iOS
``CapgoUpdater.downloadManifest``): every entry is checked before any download; the session key
must be valid; each ``file_hash`` is recovered with the public key; a file is reused from the
builtin assets or the cache ``<hash>_<basename>``, else fetched with ``Range: bytes=N-`` resume
(206 appends, 200 restarts, 416 with a partial uses it), AES-128-CBC decrypted with the bundle's
key and IV, Brotli-decoded when ``file_name`` ends in ``.br`` (with the plugin's empty-stream
special cases), and compared with the recovered hash. A failure raises :class:`DeviceFailure`
named after the stat the plugin would send.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import brotli  # type: ignore[import-untyped]
import requests

from otaseal.crypto import CbcDecryptor
from otaseal.errors import Error
from otaseal.formats.capgo import recover_checksum

if TYPE_CHECKING:
    from otaseal.crypto import CapgoPublicKey

EMPTY_BROTLI = b"\x1b\x00\x06"
BROTLI_WRAPPERS = (b"\x1b\x00\x06", b"\x0b\x02\x80")  # uncompressed meta-block wrappers


class DeviceFailure(Exception):  # noqa: N818 - named after the plugin's failure stats
    """The manifest update failed as the plugin would: ``stat`` is the action it sends."""

    def __init__(self, stat: str, detail: str) -> None:
        super().__init__(f"{stat}: {detail}")
        self.stat = stat


@dataclass
class Downloaded:
    """What one manifest update did."""

    downloaded: list[str] = field(default_factory=list)  # target paths fetched
    reused: list[str] = field(default_factory=list)  # from the cache or the builtin assets
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)  # url, range, status


def _is_valid_session_key(session_key: str) -> bool:
    parts = session_key.split(":")
    return len(parts) == 2 and all(parts)


def _target(file_name: str) -> str:
    """The path the plugin writes, after its path checks (resolvePathInsideDirectory)."""
    target = file_name.removesuffix(".br")
    if "\\" in target:
        raise DeviceFailure("windows_path_fail", file_name)
    parts = PurePosixPath(target).parts
    if not target or target.startswith("/") or "\x00" in target or ".." in parts:
        raise DeviceFailure("canonical_path_fail", file_name)
    return target


def _brotli(data: bytes) -> bytes:
    """The plugin's decompressBrotli: empty-stream and wrapper special cases, then a decoder."""
    if not data or data == EMPTY_BROTLI:
        return b""
    if len(data) > 3 and data[-1] == 0x03 and data[:3] in BROTLI_WRAPPERS:
        return data[3:-1]
    try:
        return bytes(brotli.decompress(data))
    except brotli.error as exc:
        raise DeviceFailure("download_manifest_brotli_fail", str(exc)) from None


@dataclass
class ManifestDevice:
    """One installed app with a ``publicKey``: a cache folder, bundles, optional builtin files."""

    public_key: CapgoPublicKey
    folder: Path
    builtin: dict[str, bytes] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False
        for sub in ("cache", "partial", "bundles"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def bundle(self, version: str) -> Path:
        return self.folder / "bundles" / version

    def apply(self, reply: dict[str, Any]) -> Downloaded:
        """Build bundle ``reply["version"]`` from ``reply["manifest"]`` as the plugin does."""
        version, session_key = reply["version"], reply.get("session_key", "")
        manifest = reply["manifest"]
        if not _is_valid_session_key(session_key):
            raise DeviceFailure("session_key_required", version)
        iv, aes_key = self._session(session_key)
        plan: list[tuple[str, str, str, str]] = []  # file_name, target, hash, url
        targets: set[str] = set()
        for entry in manifest:
            name, signed, url = entry["file_name"], entry["file_hash"], entry["download_url"]
            if not all(isinstance(v, str) and v for v in (name, signed, url)):
                raise DeviceFailure("download_manifest_file_fail", f"bad entry {entry!r}")
            target = _target(name)
            if target in targets:
                raise DeviceFailure("manifest_path_fail", f"{version}:{target}")
            targets.add(target)
            try:
                file_hash = recover_checksum(signed, self.public_key)
            except Error as exc:
                raise DeviceFailure("download_manifest_checksum_fail", str(exc)) from None
            plan.append((name, target, file_hash, url))
        out = self.bundle(version)
        done = Downloaded()
        for name, target, file_hash, url in plan:
            dest = out.joinpath(*target.split("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            cached = self.cache / f"{file_hash}_{PurePosixPath(target).name}"
            builtin = self.builtin.get(target)
            if builtin is not None and hashlib.sha256(builtin).hexdigest() == file_hash:
                dest.write_bytes(builtin)
                done.reused.append(target)
                continue
            if cached.is_file():
                dest.write_bytes(cached.read_bytes())
                done.reused.append(target)
                continue
            body = self._download(url, cached.name, done)
            data = self._decrypt(body, aes_key, iv, version)
            if name.endswith(".br"):
                data = _brotli(data)
            if hashlib.sha256(data).hexdigest() != file_hash:
                (self.folder / "partial" / cached.name).unlink(missing_ok=True)
                raise DeviceFailure("download_manifest_checksum_fail", f"{version}:{target}")
            dest.write_bytes(data)
            cached.write_bytes(data)
            (self.folder / "partial" / cached.name).unlink(missing_ok=True)
            done.downloaded.append(target)
        return done

    def _session(self, session_key: str) -> tuple[bytes, bytes]:
        iv_b64, block_b64 = session_key.split(":")
        iv = base64.b64decode(iv_b64, validate=True)
        aes_key = self.public_key.recover(base64.b64decode(block_b64, validate=True))
        if len(iv) != 16 or len(aes_key) != 16:
            raise DeviceFailure("decrypt_fail", "session key")
        return iv, aes_key

    def _download(self, url: str, partial_name: str, done: Downloaded) -> bytes:
        """GET with resume from a partial file, as the plugin's manifest downloads do."""
        partial = self.folder / "partial" / partial_name
        have = partial.stat().st_size if partial.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self.session.get(url, headers=headers, timeout=20)
        done.requests.append((url, headers.get("Range"), response.status_code))
        if "content-encoding" in response.headers:
            raise DeviceFailure("download_manifest_file_fail", "Content-Encoding on a body")
        if response.status_code == 416 and have:
            return partial.read_bytes()
        if response.status_code == 206 and have:
            start = response.headers.get("content-range", "").split(" ")[-1].split("-")[0]
            if start != str(have):
                raise DeviceFailure("download_manifest_file_fail", "Content-Range start")
            with partial.open("ab") as out:
                out.write(response.content)
            return partial.read_bytes()
        if response.status_code == 200:
            partial.write_bytes(response.content)
            return response.content
        raise DeviceFailure("download_manifest_file_fail", f"HTTP {response.status_code}")

    def _decrypt(self, body: bytes, aes_key: bytes, iv: bytes, version: str) -> bytes:
        if not body:
            raise DeviceFailure("decrypt_fail", "Empty encrypted data")
        cipher = CbcDecryptor(aes_key, iv)
        try:
            plain = cipher.update(body) + cipher.finalize()
        except Error:
            raise DeviceFailure("decrypt_fail", version) from None
        if not plain:
            raise DeviceFailure("decrypt_fail", "Empty decrypted data")
        return plain
