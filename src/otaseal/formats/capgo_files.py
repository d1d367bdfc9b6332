"""Capgo's manifest mode: every file of a release as its own encrypted object (SPEC §17.1).

``@capgo/capacitor-updater`` can build a bundle file by file from a ``manifest`` list, copying the
files it already has and downloading only the others. Each listed body is the file, Brotli-
compressed when that pays (the ``.br`` suffix on ``file_name`` is the plugin's only signal), then
AES-128-CBC under the bundle's session key and IV. The key and IV are the app's stable content
key (``CapgoPrivateKey.content_key``, ADR 0009), so an unchanged file gives the same body in
every release and the store grows by new files only.

The list object names every file with its signed hash and its body's digest; its own digest is
signed in the release (``capgo.files``), which is what makes ``serve``'s answer trustworthy.
:func:`build` is pure (bytes in, bytes out); :func:`attach_files` and :func:`upload_files` are
publish's thin I/O around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import brotli  # type: ignore[import-untyped]  # no stubs; one call, typed below

from otaseal import jsonread
from otaseal.crypto import CbcDecryptor, CbcEncryptor
from otaseal.errors import (
    DecryptionError,
    Error,
    HashMismatchError,
    InputError,
    MalformedMetadataError,
)
from otaseal.formats.capgo import open_session, recover_checksum, session_key_of
from otaseal.model import CapgoFiles

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

    from otaseal.archive import Index
    from otaseal.crypto import CapgoPrivateKey, CapgoPublicKey
    from otaseal.formats.capgo import CapgoResult
    from otaseal.model import ChannelManifest
    from otaseal.store import Storage

__all__ = [
    "BROTLI_QUALITY",
    "EMPTY_BROTLI",
    "Built",
    "CapgoFile",
    "FileList",
    "attach_files",
    "build",
    "encode_body",
    "file_key",
    "known_files",
    "list_key",
    "parse_list",
    "prepare",
    "upload_files",
]

LIST_VERSION: Final = 1
#: Brotli whenever it makes the encrypted body at least one AES block shorter. The CLI (reference
#: §2.3 step 4) compresses only from 8 KiB on; measured on web sources, files under 8 KiB shrink
#: by about 65 % too (docs/adr/0009), and a fresh install downloads every one of them.
BROTLI_QUALITY: Final = 11  # Node's default, which the CLI uses
#: The 3-byte empty Brotli stream both platforms special-case: how an empty file is carried,
#: since the plugin refuses an empty body or an empty decryption.
EMPTY_BROTLI: Final = b"\x1b\x00\x06"
#: Headers of a stream the plugin copies without decoding when it also ends in 03 (a single
#: uncompressed meta-block): a compressed body that looked like one would be misread.
_PLUGIN_WRAPPERS: Final = (b"\x1b\x00\x06", b"\x0b\x02\x80")
BR: Final = ".br"
_MAX_THREADS: Final = 4
MAX_LIST_BYTES: Final = 64 << 20
_AES_BLOCK: Final = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SIGNED = re.compile(r"[0-9a-f]{512}")
_FIX: Final = "the list object does not match the release; republish the release"


def list_key(app: str, sha256: str) -> str:
    """Store key of a release's file list, named by its digest (signed as ``capgo.files``)."""
    return f"{app}/bundles/{sha256}.capgo-files.json"


def file_key(app: str, sha256: str) -> str:
    """Store key of one encrypted file body, named by the body's digest (shared by releases)."""
    return f"{app}/capgo-files/{sha256}"


@dataclass(frozen=True, slots=True)
class CapgoFile:
    """One file of the bundle as the list object names it."""

    file_name: str  # the bundle path, plus ".br" when the body is Brotli
    file_hash: str  # 512 hex: the V3-signed SHA-256 of the file, as the plugin recovers it
    sha256: str  # of the file itself
    size: int  # of the file itself
    body_sha256: str  # "object": SHA-256 of the stored body, at file_key(app, body_sha256)
    length: int  # of the stored body

    @property
    def path(self) -> str:
        """Where the plugin writes the file: ``file_name`` without its ``.br``."""
        return self.file_name.removesuffix(BR) if self.is_brotli else self.file_name

    @property
    def is_brotli(self) -> bool:
        """Whether the plugin Brotli-decodes the body (its only signal is the name)."""
        return self.file_name.endswith(BR)

    def to_dict(self) -> dict[str, object]:
        """JSON form inside the list object."""
        return {
            "file_name": self.file_name,
            "file_hash": self.file_hash,
            "sha256": self.sha256,
            "size": self.size,
            "object": self.body_sha256,
            "length": self.length,
        }


@dataclass(frozen=True, slots=True)
class FileList:
    """A release's list object: every file of the bundle, in the index's order."""

    files: tuple[CapgoFile, ...]

    def to_json(self) -> bytes:
        """Compact JSON with sorted keys: the same files always give the same bytes."""
        doc = {"files": [f.to_dict() for f in self.files], "version": LIST_VERSION}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class Built:
    """What :func:`build` makes: the list object's bytes and every body by its digest."""

    list_object: bytes
    bodies: dict[str, bytes]
    count: int  # files listed

    @property
    def pointer(self) -> CapgoFiles:
        """The release's signed ``capgo.files`` for this list object."""
        return CapgoFiles(
            sha256=hashlib.sha256(self.list_object).hexdigest(),
            length=len(self.list_object),
            count=self.count,
        )


def _padded(length: int) -> int:
    return length - length % _AES_BLOCK + _AES_BLOCK


def _plugin_reads(packed: bytes, data: bytes) -> bool:
    """Whether the plugin gets ``data`` back: its shortcut copies ``[3:-1]`` of wrapped streams."""
    wrapped = len(packed) > 3 and packed[-1] == 3 and packed[:3] in _PLUGIN_WRAPPERS  # noqa: PLR2004
    return not wrapped or packed[3:-1] == data


def encode_body(path: str, data: bytes, aes_key: bytes, iv: bytes) -> tuple[str, bytes]:
    """``(file_name, body)`` for one file: Brotli when it pays or must, then AES-128-CBC.

    An empty file travels as the empty Brotli stream; a file already named ``*.br`` is always
    wrapped, or the plugin would strip its suffix and decode it.
    """
    plain = data
    name = path
    if not data:
        plain, name = EMPTY_BROTLI, path + BR
    else:
        packed: bytes = brotli.compress(data, quality=BROTLI_QUALITY)
        if not _plugin_reads(packed, data):
            packed = brotli.compress(data, quality=BROTLI_QUALITY, lgwin=18)  # another header
        pays = _padded(len(packed)) < _padded(len(data)) and _plugin_reads(packed, data)
        if path.endswith(BR) or pays:
            plain, name = packed, path + BR
    cipher = CbcEncryptor(aes_key, iv)
    return name, bytes(cipher.update(plain)) + cipher.finalize()


def open_body(
    file_name: str, body: bytes, *, file_hash: str, session_key: str, public_key: CapgoPublicKey
) -> bytes:
    """One manifest entry's file as the plugin gets it (reference §2.2 steps 4–6), or an error.

    Decrypt with the bundle's session key and IV, Brotli-decode when the name ends in ``.br``,
    and compare the SHA-256 with the hash recovered from ``file_hash``. CBC is not
    authenticated: nothing of a body that fails here may be used.
    """
    iv, aes_key = open_session(session_key, public_key)
    cipher = CbcDecryptor(aes_key, iv)
    plain = bytes(cipher.update(body)) + cipher.finalize()
    if file_name.endswith(BR) and plain == EMPTY_BROTLI:
        plain = b""  # both platforms special-case the empty stream
    elif file_name.endswith(BR):
        try:
            plain = brotli.decompress(plain)
        except brotli.error:
            raise DecryptionError(
                f"the body of {file_name} is not a Brotli stream",
                expected="a Brotli stream, as the .br suffix says",
                fix=_FIX,
            ) from None
    expected = recover_checksum(file_hash, public_key)
    actual = hashlib.sha256(plain).hexdigest()
    if actual != expected:
        raise HashMismatchError(
            f"{file_name} has SHA-256 {actual[:16]}… once opened",
            expected=f"{expected[:16]}…, the signed file_hash",
            fix=_FIX,
        )
    return plain


def build(
    files: Iterable[tuple[str, bytes]],
    key: CapgoPrivateKey,
    app: str,
    *,
    known: Mapping[str, CapgoFile] | None = None,
) -> Built:
    """The list object and bodies for ``files`` (bundle path, bytes), with no store.

    Pass the files in the index's order (UTF-8 path order), without ``.otaseal/index.json``.
    ``known`` maps a file's SHA-256 to an entry of an earlier list under the same content key
    whose body is stored (:func:`known_files`): such a file is neither compressed nor signed
    again, and its body is not in ``bodies``.
    """
    aes_key, iv = key.content_key(app)
    slots: list[CapgoFile | None] = []
    todo: list[tuple[int, str, bytes, str]] = []  # (slot, path, data, sha256) to encode
    signed: dict[str, str] = {}
    for path, data in files:
        digest = hashlib.sha256(data)
        sha = digest.hexdigest()
        earlier = (known or {}).get(sha)
        if earlier is not None and (earlier.is_brotli or not path.endswith(BR)):
            name = path + BR if earlier.is_brotli else path
            slots.append(replace(earlier, file_name=name))  # same bytes, same size
            continue
        if sha not in signed:
            signed[sha] = key.type1(digest.digest()).hex()
        todo.append((len(slots), path, data, sha))
        slots.append(None)
    bodies: dict[str, bytes] = {}
    # Brotli at quality 11 is most of a first publish (25 MB of monaco: 26 s on one core) and
    # releases the GIL, so the files are encoded on several threads.
    threads = max(1, min(_MAX_THREADS, os.cpu_count() or 1, len(todo)))
    with ThreadPoolExecutor(threads) as pool:
        encoded = pool.map(lambda job: encode_body(job[1], job[2], aes_key, iv), todo)
        for (slot, _, data, sha), (name, body) in zip(todo, encoded, strict=True):
            body_sha = hashlib.sha256(body).hexdigest()
            bodies[body_sha] = body
            slots[slot] = CapgoFile(name, signed[sha], sha, len(data), body_sha, len(body))
    entries = [entry for entry in slots if entry is not None]
    return Built(FileList(tuple(entries)).to_json(), bodies, len(entries))


# --- reading a list object (serve, tests) ------------------------------------------------------
def _bad(detail: str) -> MalformedMetadataError:
    return MalformedMetadataError(
        f"the Capgo file list is malformed: {detail}", expected="SPEC §17.1", fix=_FIX
    )


def _is_safe_path(path: str) -> bool:
    """Relative POSIX path: no empty, ``.`` or ``..`` segment, no backslash, no control."""
    if not path or path.startswith("/") or "\\" in path:
        return False
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):  # noqa: PLR2004 - C0 controls
        return False
    return all(part not in {"", ".", ".."} for part in path.split("/"))


def parse_list(data: bytes, *, count: int) -> FileList:
    """Parse a list object whose digest the caller has already checked; strict all the same.

    Refuses anything a device would choke on: a bad path, two names with one target, a hash that
    is not the signed form, a body length that is not whole AES blocks, a count that differs.
    """
    try:
        doc = jsonread.loads(data)
    except jsonread.JsonError as exc:
        raise _bad(exc.detail) from None
    if not isinstance(doc, dict) or jsonread.integer(doc.get("version")) != LIST_VERSION:
        raise _bad(f'"version" is not {LIST_VERSION}')
    items = doc.get("files")
    if not isinstance(items, list) or len(items) != count:
        raise _bad(f'"files" is not a list of the {count} files the release names')
    files: list[CapgoFile] = []
    targets: set[str] = set()
    for n, item in enumerate(items):
        entry = _parse_entry(item, n)
        if entry.path in targets:
            raise _bad(f"two entries write {entry.path!r}")
        targets.add(entry.path)
        files.append(entry)
    return FileList(tuple(files))


def _parse_entry(item: object, n: int) -> CapgoFile:
    if not isinstance(item, dict):
        raise _bad(f"entry {n} is not an object")
    name, file_hash, sha = item.get("file_name"), item.get("file_hash"), item.get("sha256")
    obj = item.get("object")
    size, length = jsonread.integer(item.get("size")), jsonread.integer(item.get("length"))
    if not isinstance(name, str) or not _is_safe_path(name.removesuffix(BR) or name):
        raise _bad(f"entry {n} has no safe relative file_name")
    if not isinstance(file_hash, str) or not _SIGNED.fullmatch(file_hash):
        raise _bad(f"entry {n} ({name}) has no signed file_hash (512 lowercase hex)")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise _bad(f"entry {n} ({name}) has no sha256")
    if not isinstance(obj, str) or not _SHA256.fullmatch(obj):
        raise _bad(f"entry {n} ({name}) has no object digest")
    if size is None or size < 0:
        raise _bad(f"entry {n} ({name}) has no size")
    if length is None or length <= 0 or length % _AES_BLOCK:
        raise _bad(f"entry {n} ({name}) has a body length that is not whole AES blocks")
    return CapgoFile(name, file_hash, sha, size, obj, length)


# --- publish's I/O -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Prepared:
    """A release's list object and bodies, made before the uploads; nothing stored yet."""

    built: Built

    @property
    def pointer(self) -> CapgoFiles:
        """The release's signed ``capgo.files``."""
        return self.built.pointer


def _read_files(build_dir: Path, index: Index) -> Iterator[tuple[str, bytes]]:
    """The indexed files' bytes, each checked against the digest the zip was made with."""
    for entry in index.files:
        data = (build_dir / entry.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise InputError(
                f"{entry.path} changed while publish was reading the build",
                expected="a build directory nothing writes to during publish",
                fix="let the build finish, then publish again; nothing was published",
            )
        yield entry.path, data


def prepare(
    build_dir: Path,
    index: Index,
    key: CapgoPrivateKey,
    app: str,
    known: Mapping[str, CapgoFile] | None = None,
) -> Prepared:
    """Build the list object and bodies for the packed build (the files the index names)."""
    return Prepared(build(_read_files(build_dir, index), key, app, known=known))


def attach_files(
    result: CapgoResult,
    key: CapgoPrivateKey,
    build_dir: Path,
    index: Index,
    *,
    app: str | None,
    known: Mapping[str, CapgoFile] | None = None,
) -> tuple[CapgoResult, Prepared | None]:
    """The Capgo result with its signed ``files`` pointer, and what to upload (publish's hook).

    Without ``app`` the zip was made under a random key, which per-file bodies cannot share.
    """
    if app is None:
        return result, None
    prepared = prepare(build_dir, index, key, app, known)
    return replace(result, files=prepared.pointer), prepared


def known_files(
    store: Storage, app: str, manifest: ChannelManifest | None, key: CapgoPrivateKey | None
) -> dict[str, CapgoFile]:
    """Entries of the lists of a verified manifest's releases that a new list may reuse.

    Only lists made under this key's content key (same ``session_key``), read by their signed
    digest, and only entries whose body is stored. Anything unreadable is skipped: the files are
    then encoded again, which costs time, not correctness.
    """
    if key is None or manifest is None:
        return {}
    aes_key, iv = key.content_key(app)
    session_key = session_key_of(key, aes_key, iv)
    known: dict[str, CapgoFile] = {}
    try:
        for release in manifest.releases:
            capgo = release.capgo
            if capgo is None or capgo.files is None or capgo.session_key != session_key:
                continue
            data = store.fetch(list_key(app, capgo.files.sha256), max_bytes=capgo.files.length)
            if hashlib.sha256(data).hexdigest() != capgo.files.sha256:
                continue
            for entry in parse_list(data, count=capgo.files.count).files:
                known.setdefault(entry.sha256, entry)
        stored = set(store.list(file_key(app, ""))) if known else set()
    except Error:
        return {}
    return {sha: f for sha, f in known.items() if file_key(app, f.body_sha256) in stored}


def upload_files(store: Storage, app: str, prepared: Prepared) -> int:
    """Upload the bodies not yet stored, then the list object; returns how many bodies were new.

    Bodies are content-addressed and shared by releases, so most of a new release is already
    there; the list object comes last, so whatever it names is stored.
    """
    new = 0
    for sha, body in prepared.built.bodies.items():
        key = file_key(app, sha)
        if not store.exists(key):
            new += store.create(key, body)
    store.create(list_key(app, prepared.pointer.sha256), prepared.built.list_object)
    return new
