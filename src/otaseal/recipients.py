"""Device decryption key rotation: the ``recipients:`` of otaseal.yml, and whom a bundle opens for.

Every release is sealed to every listed recipient, so during a rotation apps that ship the old
decryption key and apps that ship the new one both update. The overlap rule: keep both keys
listed until every installed app version in the field ships the new key, then remove the old
one. Releases already published keep the recipients they were sealed to (``status`` shows them,
read from each bundle's header).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.errors import ConfigError, Error, InputError, KeyMaterialError
from otaseal.store import bundle_key

if TYPE_CHECKING:
    from otaseal.config import Config
    from otaseal.crypto import RecipientKey
    from otaseal.model import Release
    from otaseal.operations import Project
    from otaseal.store import Storage

#: Most recipients a ``.cub`` header holds (SPEC §13).
MAX_RECIPIENTS = 16
#: Largest ``.cub`` header: 75 fixed bytes and 145 per recipient (SPEC §13).
MAX_HEADER_BYTES = 75 + 145 * MAX_RECIPIENTS
OVERLAP_RULE = (
    "keep both keys listed until every installed app version in the field ships the new "
    "decryption key; then remove the old one"
)
_BLOCK_START = re.compile(r"^recipients\s*:")
_LIST_ITEM = re.compile(r"^\s+-\s")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One ``recipients:`` entry: the reference as written and the key it names."""

    ref: str
    keyid: str


@dataclass(frozen=True, slots=True)
class RecipientsChange:
    """The recipients after ``add`` or ``remove``, and which key changed."""

    recipients: tuple[Recipient, ...]
    changed: Recipient


def listed(project: Project) -> tuple[Recipient, ...]:
    """The configured recipients, each resolved and checked (never a signing key)."""
    keys = project.recipients()
    return tuple(
        Recipient(ref, key.keyid) for ref, key in zip(_raw_refs(project.config), keys, strict=True)
    )


def add(project: Project, ref: str) -> RecipientsChange:
    """List one more public decryption key in otaseal.yml (a key reference or a .pub.pem path)."""
    from otaseal.secrets import resolve_recipient  # noqa: PLC0415

    current = listed(project)
    written = _written_ref(ref, project.config.path.parent)
    key = resolve_recipient(
        _absolute(written, project.config.path.parent), mask=project.mask, env=project.environment
    )
    _refuse_signing_key(project, key, ref)
    for entry in current:
        if entry.keyid == key.keyid:
            raise InputError(
                f"the key {ref} (key id {key.keyid[:12]}) is already a recipient, as {entry.ref}",
                expected="a public decryption key that is not listed yet",
                fix="nothing to do: releases are already sealed to it",
            )
    if len(current) >= MAX_RECIPIENTS:
        raise InputError(
            f"otaseal.yml already lists {len(current)} recipients",
            expected=f"at most {MAX_RECIPIENTS} (what a .cub header holds)",
            fix="remove a key that no installed app version ships any more",
        )
    added = Recipient(written, key.keyid)
    refs = [*_raw_refs(project.config), written]
    _rewrite(project.config, refs)
    return RecipientsChange((*current, added), added)


def remove(project: Project, keyid: str) -> RecipientsChange:
    """Drop the recipient whose key id is ``keyid`` (or starts with it, 8+ hex digits)."""
    current = listed(project)
    wanted = keyid.strip().lower()
    hits = [
        e
        for e in current
        if e.keyid == wanted or (len(wanted) >= 8 and e.keyid.startswith(wanted))  # noqa: PLR2004
    ]
    ids = ", ".join(e.keyid[:12] for e in current)
    if len(hits) != 1:
        raise InputError(
            f"{'no' if not hits else len(hits)} recipient key ids match {keyid!r}",
            expected=f"the key id (or its first 8+ hex digits) of one of: {ids}",
            fix="see `otaseal recipients list`",
        )
    if len(current) == 1:
        raise InputError(
            f"{hits[0].keyid[:12]} is the only recipient",
            expected="at least one recipient left: no device could decrypt a release otherwise",
            fix="add the new key first (`otaseal recipients add keys/app-decryption-2.pub.pem`), "
            "then remove the old one once every installed app version ships the new key",
        )
    raw = _raw_refs(project.config)
    index = current.index(hits[0])
    _rewrite(project.config, [r for i, r in enumerate(raw) if i != index])
    return RecipientsChange(tuple(e for e in current if e is not hits[0]), hits[0])


def sealed_to(store: Storage, app: str, release: Release) -> tuple[str, ...]:
    """Key ids a release's ``.cub`` header wraps its content key to; reads the header only."""
    import io  # noqa: PLC0415

    from otaseal.formats.sealed import read_header  # noqa: PLC0415

    head = store.head(bundle_key(app, release.sha256), length=MAX_HEADER_BYTES)
    return read_header(io.BytesIO(head)).recipient_keyids


def sealed_to_or_error(store: Storage, app: str, release: Release) -> tuple[str, ...] | str:
    """:func:`sealed_to`, or the one-paragraph reason it could not be read."""
    try:
        return sealed_to(store, app, release)
    except Error as exc:
        return exc.diagnostics()


# --- otaseal.yml --------------------------------------------------------------------------------
def _raw_refs(config: Config) -> list[str]:
    """The references as written in the file (``Config`` holds them made absolute)."""
    import yaml  # noqa: PLC0415

    doc = yaml.safe_load(config.path.read_text(encoding="utf-8"))
    return [str(r) for r in doc["recipients"]]


def _written_ref(ref: str, base: Path) -> str:
    """A bare path becomes ``file:PATH``, relative to otaseal.yml's folder when it is inside."""
    if ":" in ref.split("/", 1)[0]:
        return ref
    path = Path(ref).expanduser().resolve()
    try:
        return "file:" + path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return "file:" + str(path)


def _absolute(ref: str, base: Path) -> str:
    if ref.startswith("file:"):
        path = Path(ref.removeprefix("file:")).expanduser()
        return "file:" + str(path if path.is_absolute() else base / path)
    return ref


def _refuse_signing_key(project: Project, key: RecipientKey, ref: str) -> None:
    root, _ = project.root()
    if key.keyid in root.keys:
        roles = sorted(n for n, r in root.roles.items() if key.keyid in r.keyids)
        raise KeyMaterialError(
            f"{ref} is the public key of the {', '.join(roles) or 'root.json'} signing key "
            f"(key id {key.keyid[:12]})",
            expected="an app decryption public key, made by `otaseal keygen --kind encryption`",
            fix="make one (`otaseal keygen --kind encryption --out keys/app-decryption-2.pem`) "
            "and add its .pub.pem; devices could not decrypt bundles sealed to a signing key",
        )


def _rewrite(config: Config, refs: list[str]) -> None:
    """Replace the ``recipients:`` block of otaseal.yml, keeping every other line as it is."""
    from otaseal.config import load_config  # noqa: PLC0415

    path = config.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _BLOCK_START.match(line)]
    if len(starts) != 1:
        raise ConfigError(
            f"{path} has {len(starts)} top-level `recipients:` lines",
            expected="exactly one",
            fix="fix otaseal.yml by hand",
        )
    start = end = starts[0]
    head = lines[start]
    if head.split("#", 1)[0].split(":", 1)[1].strip():  # a flow list: `recipients: [a, b]`
        head = "recipients:" + (f"  {head[head.index('#') :]}" if "#" in head else "\n")
    end = start + 1
    while end < len(lines) and (_LIST_ITEM.match(lines[end]) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep blank lines that separate the next block
    block = [head if head.endswith("\n") else head + "\n", *(f"  - {ref}\n" for ref in refs)]
    _write_atomically(path, "".join([*lines[:start], *block, *lines[end:]]))
    try:
        ok = _raw_refs(load_config(path)) == refs
    except ConfigError:  # pragma: no cover - a layout this edit misread
        ok = False
    if not ok:  # pragma: no cover - a layout this edit misread
        _write_atomically(path, "".join(lines))
        raise ConfigError(
            f"could not edit `recipients:` in {path} safely; it was left as it was",
            fix="edit the list by hand",
        )


def _write_atomically(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".otaseal-yml-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(name).chmod(path.stat().st_mode & 0o777)
        Path(name).replace(path)
    finally:
        Path(name).unlink(missing_ok=True)
