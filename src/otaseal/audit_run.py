"""The I/O around :mod:`otaseal.audit`: list the app's keys, read metadata, hash named objects.

Reads only (``Storage.list``, ``fetch``, ``stream``); writes nothing. A store that cannot be
listed or read is a ``StoreError`` (exit 5); everything else becomes a finding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otaseal import audit, trust
from otaseal.errors import Error, InputError, LengthError, NotFoundError
from otaseal.formats.capgo_files import FileList, parse_list
from otaseal.model import format_time

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from otaseal.operations import Project
    from otaseal.store import Storage


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything ``otaseal audit`` found, and what it looked at."""

    app: str
    store: str
    now: datetime
    findings: tuple[audit.Finding, ...]
    metadata: audit.MetadataAudit
    objects: int

    @property
    def exit_code(self) -> int:
        """0, or 3 (metadata a device would refuse) before 4 (bundle problems)."""
        return audit.exit_code(self.findings)

    def to_json(self) -> dict[str, object]:
        """One object with every finding."""
        roots = self.metadata.roots
        return {
            "app": self.app,
            "store": self.store,
            "audit_time": format_time(self.now),
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "errors": sum(f.severity == "error" for f in self.findings),
            "warnings": sum(f.severity == "warning" for f in self.findings),
            "objects": self.objects,
            "roots": {
                "versions": [r.version for r in roots],
                "newest": roots[-1].version if roots else None,
                "expires": format_time(roots[-1].expires) if roots else None,
            },
            "channels": {
                name: {"versions": c.versions, "newest": c.newest, "pointer": c.pointer}
                for name, c in self.metadata.channels.items()
            },
            "bundles_checked": len(self.metadata.expected),
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> list[str]:
        """The report for people: a summary line, then one line per finding."""
        roots = self.metadata.roots
        chain = f"roots v1..v{roots[-1].version}" if roots else "no usable root"
        channels = ", ".join(
            f"{n} v{c.pointer if c.pointer is not None else '-'}"
            for n, c in self.metadata.channels.items()
        )
        hashed = len(self.metadata.expected)
        summary = (
            f"audit of {self.app} in {self.store} at {format_time(self.now)}: {chain}; channels "
            f"{channels or 'none'}; {hashed} object(s) hashed of {self.objects} listed"
        )
        out = [summary]
        out += [f"  {f.severity.upper():<7} {f.code}  {f.key}: {f.message}" for f in self.findings]
        errors = sum(f.severity == "error" for f in self.findings)
        warnings = len(self.findings) - errors
        if errors:
            out.append(
                f"{errors} error(s), {warnings} warning(s): devices would refuse what the "
                "errors name; fix them before the next release"
            )
        else:
            out.append(f"OK: nothing a device would refuse ({warnings} warning(s))")
        return out


def run_audit(project: Project) -> AuditReport:
    """Audit the project's store at the project's clock."""
    now = project.clock()
    store, app = project.store, project.app
    keys = store.list(app + "/")
    metadata_keys = [k for k in keys if _is_metadata(app, k)]
    objects: dict[str, bytes | None] = {}
    for key in metadata_keys:
        try:
            objects[key] = store.fetch(key, max_bytes=trust.METADATA_MAX_BYTES)
        except LengthError:
            objects[key] = None
        except NotFoundError:
            continue  # deleted since the listing: audited as missing
    try:
        shipped = project.config.root.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the project's root.json at {project.config.root} ({exc.strerror})",
            fix="set `root:` in otaseal.yml to the root.json the app ships",
        ) from None
    listed = [k for k in keys if k in objects or not _is_metadata(app, k)]
    meta = audit.audit_metadata(
        app, listed, objects, shipped=shipped, channels=project.config.channels, now=now
    )
    present = set(keys)
    measured = {
        key: _measure(store, key, want.length) if key in present else None
        for key, want in meta.expected.items()
    }
    bodies = audit.expected_bodies(app, _intact_lists(store, meta.expected, measured))
    findings = (
        *meta.findings,
        *audit.check_objects(meta.expected, measured),
        *audit.check_objects(
            bodies,
            {k: _measure(store, k, e.length) if k in present else None for k, e in bodies.items()},
        ),
        *audit.check_orphans(app, keys, meta.expected),
    )
    return AuditReport(app, store.describe(), now, findings, meta, len(keys))


def _intact_lists(
    store: Storage,
    expected: Mapping[str, audit.Expected],
    measured: Mapping[str, audit.Measured | None],
) -> dict[str, tuple[audit.Expected, FileList]]:
    """The Capgo file lists that are as signed (a bad one is already a finding), parsed."""
    out: dict[str, tuple[audit.Expected, FileList]] = {}
    for key, want in expected.items():
        got = measured.get(key)
        if not key.endswith(".capgo-files.json") or got is None or got.sha256 != want.sha256:
            continue
        try:
            data = store.fetch(key, max_bytes=want.length)
            count = len(json.loads(data).get("files", ()))
            out[key] = (want, parse_list(data, count=count))
        except (Error, ValueError, AttributeError):
            continue  # changed since it was measured, or signed but unreadable: serve refuses it
    return out


def _is_metadata(app: str, key: str) -> bool:
    rest = key.removeprefix(app + "/")
    return rest.startswith(("root/", "channels/")) and rest.endswith(".json")


def _measure(store: Storage, key: str, length: int) -> audit.Measured | None:
    """Length and SHA-256, reading at most the signed length + 1 bytes."""
    digest, seen = hashlib.sha256(), 0
    try:
        for chunk in store.stream(key, max_bytes=length):
            digest.update(chunk)
            seen += len(chunk)
    except LengthError:
        return audit.Measured(length + 1, None)
    except NotFoundError:
        return None
    return audit.Measured(seen, digest.hexdigest())
