"""The attacker's tools for the negative vectors: byte surgery on zips, .cub files and JSON.

A zip is written field by field (``raw_zip``) so that any header can lie; ``.cub`` files are cut,
reordered and patched in place; signed JSON is edited member by member before it is signed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from otaseal import dsse
from otaseal.archive import INDEX_PATH, FileEntry, Index

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from otaseal.crypto import SigningKey


# --- zips -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One zip entry, with every header field an attack may want to lie about."""

    name: bytes
    data: bytes
    method: int = 8
    flags: int = 0x0800
    external: int = 0x81A40000
    crc: int | None = None
    size: int | None = None
    local_name: bytes | None = None
    raw: bytes | None = None


def deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


def raw_zip(entries: Sequence[Entry], *, prefix: bytes = b"") -> bytes:
    """A zip laid out as SPEC §14 says, written field by field so any field can lie."""
    out, central = bytearray(prefix), bytearray()
    for e in entries:
        body = e.raw if e.raw is not None else (deflate(e.data) if e.method == 8 else e.data)
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        local_name = e.name if e.local_name is None else e.local_name
        fixed = (20, e.flags, e.method, 0, 0x21, crc, len(body), size)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x0314,
            *fixed,
            len(e.name),
            0,
            0,
            0,
            0,
            e.external,
            len(out),
        )
        central += e.name
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fixed, len(local_name), 0)
        out += local_name + body
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0
    )
    return bytes(out + central + end)


def index_of(files: Mapping[str, bytes]) -> bytes:
    entries = sorted(files.items(), key=lambda item: item[0].encode())
    return Index(
        tuple(FileEntry(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in entries)
    ).to_json()


def entries_of(files: Mapping[str, bytes]) -> list[Entry]:
    return [Entry(p.encode(), d) for p, d in sorted(files.items(), key=lambda i: i[0].encode())]


def bundle_zip(
    files: Mapping[str, bytes],
    *,
    listed: Mapping[str, bytes] | None = None,
    entries: Sequence[Entry] | None = None,
    index: bytes | None = None,
    prefix: bytes = b"",
) -> bytes:
    """The index (of ``listed``, default ``files``) then ``entries`` (default: ``files``)."""
    first = Entry(INDEX_PATH.encode(), index_of(files if listed is None else listed))
    if index is not None:
        first = replace(first, data=index)
    return raw_zip([first, *(entries_of(files) if entries is None else entries)], prefix=prefix)


# --- metadata -------------------------------------------------------------------------------------
def encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def envelope(payload: bytes, signers: Sequence[SigningKey], *, kind: str = "") -> bytes:
    return dsse.sign(kind or dsse.PAYLOAD_TYPE_CHANNEL, payload, signers).to_json()


def edit(doc: Any, path: str, value: Any) -> Any:
    """A deep copy of ``doc`` with the member at ``a.b.0.c`` set, or deleted when ``value`` is
    ``DELETE``."""
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


DELETE = object()


def segments(cub: bytes, size: int) -> tuple[bytes, list[bytes]]:
    (length,) = struct.unpack_from(">I", cub, 12)
    body, full = cub[length:], size + 16
    return cub[:length], [body[i : i + full] for i in range(0, len(body), full)]


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def compressed_spki(der: bytes) -> bytes:
    """The same P-256 key in the compressed-point DER SPKI form: another key id, same key."""
    x, y = der[-64:-32], der[-32:]
    prefix = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")
    return prefix + bytes([2 + (y[-1] & 1)]) + x
