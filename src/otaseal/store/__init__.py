"""Where sealed releases live: the ``Storage`` seam and the read-only ``Fetcher`` devices use.

Layout (folder and S3 share it)::

    <app>/root/<N>.root.json            immutable, all versions kept
    <app>/bundles/<sha256>.cub          immutable ciphertext, written first
    <app>/channels/<ch>/<version>.json  immutable signed manifest, create-only
    <app>/channels/<ch>/manifest.json   the pointer, written last, compare-and-swap
    <app>/counters/<N>                  release counter N claimed (create-only); not for devices

Write order is bundle → versioned manifest → pointer, so a crash at any step leaves the channel
serving the last complete release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: Cap on any metadata object a client reads (root or manifest), before parsing.
METADATA_MAX_BYTES = 512 * 1024


def root_key(app: str, version: int) -> str:
    """Key of root version ``version``."""
    return f"{app}/root/{version}.root.json"


def bundle_key(app: str, sha256: str) -> str:
    """Key of a sealed bundle, named by its ciphertext digest."""
    return f"{app}/bundles/{sha256}.cub"


def capgo_key(app: str, sha256: str) -> str:
    """Key of a release's Capgo-format artifact, named by its own (ciphertext) digest."""
    return f"{app}/bundles/{sha256}.capgo.zip"


def index_key(app: str, sha256: str) -> str:
    """Key of a release's file index, sealed to the CI report key only (see ADR 0005)."""
    return f"{app}/indexes/{sha256}.cub"


def counter_key(app: str, counter: int) -> str:
    """Key that claims release counter ``counter`` for one publish (see ``otaseal.counters``)."""
    return f"{app}/counters/{counter}"


def manifest_key(app: str, channel: str, version: int) -> str:
    """Key of an immutable versioned channel manifest."""
    return f"{app}/channels/{channel}/{version}.json"


def pointer_key(app: str, channel: str) -> str:
    """Key of a channel's pointer (the current manifest, replaced by compare-and-swap)."""
    return f"{app}/channels/{channel}/manifest.json"


class Fetcher(Protocol):
    """Read-only access, all a device needs (folder, S3, or plain HTTP(S))."""

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        """Return the whole object; raise ``LengthError`` past ``max_bytes``, ``NotFoundError``."""
        ...

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        """Yield the object in chunks, stopping with ``LengthError`` past ``max_bytes``."""
        ...


class Storage(Fetcher, Protocol):
    """Read-write access for publishers, with the two conditional writes the protocol needs."""

    def describe(self) -> str:
        """A human name for messages, e.g. ``s3://bucket/prefix`` (never credentials)."""
        ...

    def read(self, key: str) -> tuple[bytes, str]:
        """Return ``(data, etag)``; raise ``NotFoundError``."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def head(self, key: str, *, length: int) -> bytes:
        """The first ``length`` bytes of the object (all of it when shorter); ``NotFoundError``.

        For a bundle's ``.cub`` header: ``status`` and ``audit`` read it without the segments.
        """
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Create-only write; False (and nothing written) when the key already exists."""
        ...

    def create_from_file(self, key: str, path: Path) -> bool:
        """Create-only streaming upload of a file; False when the key already exists."""
        ...

    def replace(self, key: str, data: bytes, *, etag: str | None) -> str:
        """Compare-and-swap: write only if the current etag is ``etag`` (None: must not exist).

        Returns the new etag; raises ``ConflictError`` when someone else won.
        """
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...
