"""The ``otaseal`` commands, and the one place errors become exit codes (grammar: ``cli_parser``).

Heavy modules (archive, sealing, boto3) are imported inside the commands that need them, so
``otaseal --version`` and ``--help`` start fast. With ``--json`` a command prints exactly one
JSON object on stdout; messages go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from otaseal.errors import Error
from otaseal.progress import NO_PROGRESS, TerminalProgress

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence

    from otaseal.model import ChannelManifest, Patch, Release
    from otaseal.operations import Change, Project
    from otaseal.progress import Progress


@dataclass
class Output:
    """Where a command reports: JSON on stdout, or lines for people."""

    json_mode: bool
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _line: TerminalProgress | None = field(default=None, init=False, repr=False)

    def notice(self, text: str) -> None:
        """A message for people: stderr in JSON mode, stdout otherwise."""
        if self._line is not None:  # the progress line comes back on its next update
            self._line.close()
        print(text, file=self.err if self.json_mode else self.out)

    @contextlib.contextmanager
    def progress(self) -> Iterator[Progress]:
        """A progress line on stderr while the block runs, only when a person watches it.

        Silent under ``--json`` and when stderr is not a terminal (CI logs, pipes, the Action).
        """
        if self.json_mode or not self.err.isatty():
            yield NO_PROGRESS
            return
        self._line = TerminalProgress(self.err)
        try:
            yield self._line
        finally:
            self._line.close()
            self._line = None

    def result(self, doc: dict[str, object], lines: Sequence[str]) -> None:
        """The command's one result."""
        if self.json_mode:
            print(json.dumps(doc, sort_keys=True), file=self.out)
        else:
            for line in lines:
                print(line, file=self.out)


def _project(args: argparse.Namespace) -> Project:
    from otaseal.config import find_config, load_config  # noqa: PLC0415
    from otaseal.operations import Project, open_store  # noqa: PLC0415

    config = load_config(find_config(args.config))
    store = args.store or config.store
    return Project(
        config,
        open_store(
            store,
            s3_endpoint=args.s3_endpoint or config.s3_endpoint,
            s3_lock_mode=args.s3_lock_mode or config.s3_lock_mode,
        ),
    )


# --- commands ----------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace, out: Output) -> int:
    """Create a project."""
    from otaseal.operations import now_utc  # noqa: PLC0415
    from otaseal.project import init_project  # noqa: PLC0415

    result = init_project(
        args.app,
        Path(args.dir),
        now=now_utc(),
        algorithm=args.algorithm,
        formats=args.formats.split(","),
    )
    doc: dict[str, object] = {
        "config": str(result.config),
        "root": str(result.root),
        "store": str(result.store),
        "keys": {k: str(v) for k, v in result.keys.items()},
        "decryption_key": str(result.decryption_key),
        "formats": list(result.formats),
    }
    lines = [
        f"created {result.config}",
        f"  root       {result.root} (version 1)",
        f"  store      {result.store}",
        *(f"  key        {role}: {path} (0600)" for role, path in result.keys.items()),
        f"  decryption {result.decryption_key} (0600; ships inside the app)",
    ]
    if result.capgo_private_key and result.capgo_public_key:
        doc |= {
            "capgo_private_key": str(result.capgo_private_key),
            "capgo_public_key": str(result.capgo_public_key),
            "capacitor_public_key": json.loads(result.capacitor_public_key or '""'),
        }
        lines += [
            f"  capgo      {result.capgo_private_key} (0600; CI only)",
            f"  capgo pub  {result.capgo_public_key} (ships inside the app)",
            "In capacitor.config, under plugins.CapacitorUpdater:",
            f'  "publicKey": {result.capacitor_public_key}',
        ]
    lines.append("Private keys were written 0600 and are never printed. Keep keys/ out of git.")
    out.result(doc, lines)
    return 0


def cmd_keygen(args: argparse.Namespace, out: Output) -> int:
    """Make one key."""
    from otaseal.project import keygen  # noqa: PLC0415

    result = keygen(args.kind, Path(args.out), algorithm=args.algorithm)
    doc: dict[str, object] = {
        "kind": result.kind,
        "private_key": str(result.private_key),
        "public_key": str(result.public_key),
        "keyid": result.keyid,
        "algorithm": result.algorithm,
    }
    lines = [
        f"{result.kind} key ({result.algorithm}) written to {result.private_key} (0600)",
        f"public key {result.public_key}",
        f"key id {result.keyid}",
    ]
    if result.capacitor_public_key is not None:
        doc |= {
            "key_id": result.keyid,
            "capacitor_public_key": json.loads(result.capacitor_public_key),
        }
        lines += [
            "In capacitor.config, under plugins.CapacitorUpdater:",
            f'  "publicKey": {result.capacitor_public_key}',
            "Set keys.capgo in otaseal.yml to the private key and add capgo to `formats`.",
        ]
    out.result(doc, lines)
    return 0


def _change_doc(change: Change) -> dict[str, object]:
    from otaseal.operations import release_dict  # noqa: PLC0415

    manifest = change.manifest
    return {
        "channel": change.channel,
        "manifest_version": manifest.version,
        "noop": change.noop,
        "event": manifest.event,
        "builtin": manifest.builtin,
        "release": release_dict(manifest.current),
        "previous": release_dict(change.previous),
        "expires": manifest.expires.isoformat().replace("+00:00", "Z"),
    }


def _serving(manifest: ChannelManifest) -> str:
    """What a manifest serves, for people: builtin, nothing, or release and rollout."""
    current = manifest.current
    if manifest.builtin:
        return "the app's builtin build"
    if current is None:
        return "nothing"
    paused = (
        " (paused: no device moves to it; devices already on it keep it)" if current.paused else ""
    )
    return f"{current.short} at {current.rollout_bp / 100:g} %{paused}"


def _change_lines(change: Change) -> list[str]:
    manifest = change.manifest
    verb = "unchanged" if change.noop else f"v{manifest.version} ({manifest.event})"
    return [f"{change.channel}: {verb}: serves {_serving(manifest)}"]


def cmd_publish(args: argparse.Namespace, out: Output) -> int:
    """Seal and publish a build."""
    from otaseal.publishing import publish  # noqa: PLC0415

    project = _project(args)
    with out.progress() as progress:
        result = publish(
            project,
            Path(args.build_dir),
            channel=args.channel,
            label=args.label,
            rollout=args.rollout,
            native_min=args.native_min,
            native_max=args.native_max,
            commit=args.commit,
            pr=args.pr,
            allow=args.allow_file or (),
            notice=out.notice,
            progress=progress,
            project_dir=Path(args.project_dir) if args.project_dir else None,
            replace_rollout=args.replace_rollout,
            accept_incompatible=args.accept_incompatible,
            delta_from=args.delta_from or (),
            delta=not args.no_delta,
        )
    release = result.release
    doc = _change_doc(result.change) | {
        "label": release.label,
        "release_counter": release.counter,
        "bundle_sha256": release.sha256,
        "bundle_size": release.length,
        "plaintext_size": release.plaintext_length,
        "files": release.files,
        "unpacked_size": release.unpacked_size,
        "store": result.store,
        "warnings": list(result.warnings),
        "formats": ["sealed", "capgo"] if release.capgo else ["sealed"],
        "native_fingerprint": result.native_fingerprint,
        "replaced_rollout": _replaced_doc(result.replaced_rollout),
        "patches": [_patch_doc(p) for p in result.patches],
    }
    lines = _change_lines(result.change)
    if not result.noop:
        lines.append(
            f"  {release.files} files, {release.unpacked_size} bytes → sealed bundle "
            f"{release.length} bytes, sha256 {release.sha256}"
        )
        lines += [
            f"  delta patch from {p.base_label or p.base[:12]}: {p.length} bytes, "
            f"{p.changed} file{'' if p.changed == 1 else 's'} changed"
            for p in result.patches
        ]
    if release.capgo is not None:
        doc["capgo"] = {
            "path": result.capgo_path,
            "session_key": release.capgo.session_key,
            "checksum": release.capgo.checksum,
        }
        if not result.noop:
            lines.append(
                f"  Capgo artifact {release.capgo.length} bytes at {result.capgo_path} "
                f"(key_id {release.capgo.key_id})"
            )
    out.result(doc, lines)
    return 0


def _patch_doc(patch: Patch) -> dict[str, object]:
    """One delta patch of a publish, for ``--json``."""
    return {
        "base_label": patch.base_label,
        "base_sha256": patch.base,
        "sha256": patch.sha256,
        "bytes": patch.length,
        "changed": patch.changed,
    }


def _replaced_doc(release: Release | None) -> dict[str, object] | None:
    """The staged rollout a publish replaced (``--replace-rollout``), for ``--json``."""
    if release is None:
        return None
    return {
        "label": release.label,
        "bundle_sha256": release.sha256,
        "rollout": release.rollout_bp / 100,
        "paused": release.paused,
    }


def cmd_promote(args: argparse.Namespace, out: Output) -> int:
    """Promote a release to another channel."""
    from otaseal.operations import promote  # noqa: PLC0415

    change = promote(
        _project(args),
        source=args.source,
        target=args.target,
        ref=args.release,
        rollout=args.rollout,
    )
    out.result(_change_doc(change), _change_lines(change))
    return 0


def cmd_rollout(args: argparse.Namespace, out: Output) -> int:
    """Change a rollout."""
    from otaseal.operations import set_rollout  # noqa: PLC0415

    change = set_rollout(
        _project(args),
        channel=args.channel,
        percent=args.percent,
        pause=args.pause,
        resume=args.resume,
    )
    out.result(_change_doc(change), _change_lines(change))
    return 0


def cmd_revert(args: argparse.Namespace, out: Output) -> int:
    """Revert a channel."""
    from otaseal.operations import revert  # noqa: PLC0415

    change = revert(_project(args), channel=args.channel, to=args.to)
    out.result(_change_doc(change), _change_lines(change))
    return 0


def cmd_guard(args: argparse.Namespace, out: Output) -> int:
    """Advance, pause or revert a staged rollout on its plan, or hold and say why."""
    from otaseal.guard import open_guard_stats, plan_for, run_guard  # noqa: PLC0415

    project = _project(args)
    plan_for(project, args.channel)  # a missing plan is a config error before any database
    db = open_guard_stats(args.stats, lambda text: out.notice(f"otaseal: {text}"))
    try:
        result = run_guard(project, channel=args.channel, db=db, dry_run=args.dry_run)
    finally:
        if db is not None:
            db.close()
    lines = [result.summary()]
    if result.change is not None and not result.change.noop:
        lines.append(f"signed {args.channel} manifest v{result.change.manifest.version}")
    elif result.dry_run:
        lines.append("dry run: nothing signed")
    out.result(result.to_dict(), lines)
    return 0


def cmd_resign(args: argparse.Namespace, out: Output) -> int:
    """Refresh a channel's expiry."""
    from otaseal.operations import resign  # noqa: PLC0415

    change = resign(_project(args), channel=args.channel)
    out.result(_change_doc(change), _change_lines(change))
    return 0


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    """List a channel's manifests."""
    from otaseal.operations import history, release_dict  # noqa: PLC0415

    manifests = history(_project(args), args.channel)
    entries = [
        {
            "version": m.version,
            "issued": m.issued.isoformat().replace("+00:00", "Z"),
            "event": m.event,
            "builtin": m.builtin,
            "release": release_dict(m.current),
        }
        for m in manifests
    ]
    lines = [
        f"v{m.version}  {m.issued:%Y-%m-%d %H:%M}  {m.event:<32} {_serving(m)}" for m in manifests
    ] or [f"{args.channel}: no manifests yet"]
    out.result({"channel": args.channel, "history": entries}, lines)
    return 0


def cmd_recipients(args: argparse.Namespace, out: Output) -> int:
    """List, add or remove the app's public decryption keys in otaseal.yml."""
    from otaseal import recipients  # noqa: PLC0415

    project = _project(args)
    if args.action == "list":
        current = recipients.listed(project)
        listing = [{"keyid": e.keyid, "ref": e.ref} for e in current]
        out.result({"recipients": listing}, [f"{e.keyid[:12]}  {e.ref}" for e in current])
        return 0
    if args.action == "add":
        change = recipients.add(project, args.key)
        verb, after = "added", f"overlap: {recipients.OVERLAP_RULE}"
    else:
        change = recipients.remove(project, args.keyid)
        verb = "removed"
        after = (
            f"apps that ship only the key {change.changed.keyid[:12]} cannot decrypt releases "
            "published from now on; releases already published keep the keys they were sealed to"
        )
    keys, changed = change.recipients, change.changed
    short = ", ".join(e.keyid[:12] for e in keys)
    plural = "s" if len(keys) != 1 else ""
    out.result(
        {
            "action": args.action,
            "keyid": changed.keyid,
            "ref": changed.ref,
            "recipients": [{"keyid": e.keyid, "ref": e.ref} for e in keys],
            "overlap_rule": recipients.OVERLAP_RULE,
        },
        [
            f"{verb} recipient {changed.keyid[:12]} ({changed.ref}) in {project.config.path.name}",
            f"releases published from now on are sealed to {len(keys)} key{plural}: {short}",
            after,
        ],
    )
    return 0


def cmd_audit(args: argparse.Namespace, out: Output) -> int:
    """Walk the whole store: 3 for metadata a device would refuse, 4 for bundle problems."""
    from otaseal.audit_run import run_audit  # noqa: PLC0415

    report = run_audit(_project(args))
    out.result(report.to_json(), report.lines())
    return report.exit_code


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the grammar is :mod:`otaseal.cli_parser`."""
    from otaseal.cli_parser import build_parser as grammar  # noqa: PLC0415 - it imports this module

    return grammar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every otaseal error becomes one message and a non-zero exit."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in arguments)
    try:
        parser = build_parser()
        if not arguments:  # a request for the command list, not a mistake
            parser.print_help(out.out)
            return 0
        args = parser.parse_args(arguments)
        return int(args.func(args, out))
    except Error as exc:
        print(f"otaseal: error: {exc.diagnostics()}", file=out.err)
        if out.json_mode:
            print(
                json.dumps({"error": {"type": type(exc).__name__, "message": exc.diagnostics()}}),
                file=out.out,
            )
        return exc.exit_code
    except KeyboardInterrupt:
        print("otaseal: interrupted", file=out.err)
        return 130
