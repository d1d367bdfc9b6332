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

from otaseal.errors import Error, InputError
from otaseal.progress import NO_PROGRESS, TerminalProgress

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from otaseal.client import FetchResult
    from otaseal.model import ChannelManifest, Patch, Release
    from otaseal.operations import Change, Project
    from otaseal.progress import Progress
    from otaseal.store import Fetcher


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


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    """Show every channel."""
    from otaseal.operations import release_dict, status  # noqa: PLC0415
    from otaseal.recipients import sealed_to_or_error  # noqa: PLC0415

    project = _project(args)
    rows = status(project)
    report_id = _report_keyid(project)
    channels: dict[str, object] = {}
    lines = [f"{project.app} in {project.store.describe()}"]
    for row in rows:
        m = row.manifest
        current = m.current if m else None
        sealed = sealed_to_or_error(project.store, project.app, current) if current else ()
        to_report = isinstance(sealed, tuple) and report_id in sealed
        if isinstance(sealed, tuple):
            sealed = tuple(k for k in sealed if k != report_id)
        channels[row.channel] = {
            "sealed_to": list(sealed) if isinstance(sealed, tuple) else None,
            "sealed_to_report_key": to_report,
            "sealed_to_error": sealed if isinstance(sealed, str) else None,
            "error": row.error,
            "pending_version": row.pending_version,
            "manifest_version": m.version if m else None,
            "expires": m.expires.isoformat().replace("+00:00", "Z") if m else None,
            "builtin": m.builtin if m else False,
            "current": release_dict(m.current) if m else None,
            "releases": _releases_doc(m),
        }
        if row.error:
            lines.append(f"  {row.channel:<12} ERROR {row.error}")
        elif m is None:
            lines.append(f"  {row.channel:<12} (empty)")
        else:
            lines.append(f"  {row.channel:<12} v{m.version}  {_serving(m)}  expires {m.expires:%F}")
        if current is not None:
            report = " (+ the CI report key)" if to_report else ""
            lines.append(f"  {'':<12} sealed to {_sealed_text(sealed)}{report}")
        lines.extend(_update_size_lines(m))
        if row.pending_version is not None:
            lines.append(
                f"  {'':<12} v{row.pending_version} was written but not yet pointed to (an "
                "interrupted publish); the next command on the channel completes it"
            )
    from otaseal.rootkeys.ops import status_notes  # noqa: PLC0415

    notes = status_notes(project, {r.channel: r.manifest for r in rows})
    now = project.clock()
    lines.extend(f"  {note.level.upper()}: {note.message(now)}" for note in notes)
    doc: dict[str, object] = {
        "app": project.app,
        "store": project.store.describe(),
        "channels": channels,
    }
    doc["expiry"] = [
        {
            "what": n.what,
            "expires": n.expires.isoformat().replace("+00:00", "Z"),
            "level": n.level,
            "message": n.message(now),
        }
        for n in notes
    ]
    if args.stats:
        doc["health"], health_lines = _status_health(args, project, now)
        lines.extend(health_lines)
    elif args.html or args.markdown:
        raise InputError(
            "--html and --markdown show device stats, but no --stats was given",
            expected="--stats URL, the database `otaseal serve` writes",
            fix="add --stats sqlite:///PATH (or postgresql://…)",
        )
    out.result(doc, lines)
    failing = any(n.level == "error" for n in notes)
    return 0 if all(r.error is None for r in rows) and not failing else 3


def _status_health(
    args: argparse.Namespace, project: Project, now: datetime
) -> tuple[dict[str, object], list[str]]:
    """``status --stats``: read the stats, write --html and --markdown; the JSON and text lines."""
    from otaseal.health import page  # noqa: PLC0415
    from otaseal.health import status as health  # noqa: PLC0415
    from otaseal.health.gather import read_status_health  # noqa: PLC0415
    from otaseal.serve.report import duration, window  # noqa: PLC0415

    since, until = window(args.since, args.until, now=now)
    stale_after = duration(args.stale_after)
    if stale_after is None or not stale_after:
        raise InputError(
            f"--stale-after {args.stale_after!r} is not a duration",
            expected="a positive duration such as 90m, 6h or 2d",
            fix="pass --stale-after 6h",
        )
    report = read_status_health(
        project, args.stats, since=since, until=until, stale_after=stale_after
    )
    if args.html:
        _write_text(Path(args.html), page.render(report))
    if args.markdown:
        from otaseal.action.health_markdown import render  # noqa: PLC0415

        _write_text(Path(args.markdown), render(report) + "\n")
    return health.to_json(report), health.text(report)


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write {path} ({exc.strerror})",
            fix="choose a path in a folder that exists and this user can write",
        ) from None


def _report_keyid(project: Project) -> str | None:
    """The CI report key's id, so status can tell it from the app's keys (ADR 0010)."""
    try:
        key = project.report_recipient()
    except Error:
        return None
    return key.keyid if key is not None else None


def _releases_doc(manifest: ChannelManifest | None) -> list[dict[str, object] | None]:
    """Each listed release for ``status --json``, with its full and typical delta size."""
    from otaseal.deltas import update_sizes  # noqa: PLC0415
    from otaseal.operations import release_dict  # noqa: PLC0415

    if manifest is None:
        return []
    return [
        (release_dict(size.release) or {}) | {"update": size.to_json()}
        for size in update_sizes(manifest.releases)
    ]


def _update_size_lines(manifest: ChannelManifest | None) -> list[str]:
    """One line per listed release: full size, typical delta and files changed."""
    from otaseal.deltas import update_sizes  # noqa: PLC0415

    if manifest is None or manifest.builtin:
        return []
    return [f"  {'':<12} {size.text()}" for size in update_sizes(manifest.releases)]


def _sealed_text(sealed: tuple[str, ...] | str) -> str:
    """Which decryption keys a release opens for (short key ids), or why that is unknown."""
    if isinstance(sealed, str):
        return f"(unreadable: {sealed})"
    return ", ".join(k[:12] for k in sealed)


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


def cmd_fetch(args: argparse.Namespace, out: Output) -> int:
    """Act as a device: verify and install the channel's release."""
    from otaseal.client import check_for_update  # noqa: PLC0415
    from otaseal.model import check_app_id, check_name, parse_time  # noqa: PLC0415
    from otaseal.operations import now_utc, open_store  # noqa: PLC0415
    from otaseal.secrets import resolve_decryption_key  # noqa: PLC0415

    check_app_id(args.app)
    check_name(args.channel, "channel name")
    if bool(args.store) == bool(args.base_url):
        raise InputError("fetch needs exactly one of --store or --base-url")
    fetcher: Fetcher
    if args.base_url:
        from otaseal.store.http import HttpFetcher  # noqa: PLC0415

        fetcher = HttpFetcher(args.base_url)
    else:
        fetcher = open_store(args.store, s3_endpoint=args.s3_endpoint, s3_lock_mode=False)
    try:
        now = parse_time(args.now) if args.now else now_utc()
    except ValueError:
        raise InputError(
            f"--now {args.now!r} is not a time otaseal reads (SPEC §1)",
            expected="YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM, from year 1 to 9999 in UTC, "
            "e.g. 2026-11-23T12:00:00Z",
        ) from None
    key_ref = args.decryption_key
    if ":" not in key_ref.split("/", 1)[0]:
        key_ref = "file:" + str(Path(key_ref).resolve())
    key = resolve_decryption_key(key_ref, mask=lambda _: None)
    initial_root = None
    if args.root:
        try:
            initial_root = Path(args.root).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read --root {args.root} ({exc.strerror})") from None
        _check_root_file(args.root, initial_root, args.app)
    with out.progress() as progress:
        result = check_for_update(
            fetcher,
            app=args.app,
            channel=args.channel,
            state_dir=Path(args.state),
            decryption_key=key,
            install_id=args.install_id,
            out_dir=Path(args.out),
            now=now,
            native=args.native,
            initial_root=initial_root,
            progress=progress,
        )
    release = result.release
    doc: dict[str, object] = {
        "status": result.status,
        "channel": result.channel,
        "manifest_version": result.manifest_version,
        "detail": result.detail,
        "label": release.label if release else None,
        "digest": release.sha256 if release else None,
        "out": str(Path(args.out)) if result.status == "installed" else None,
        "downloaded": result.downloaded,
        "delta": result.delta.to_json() if result.delta else None,
    }
    if result.status == "installed" and release:
        line = f"installed {release.label} (sha256 {release.sha256}) into {args.out}"
        line += _delta_text(result)
    elif result.status == "builtin":
        line = f"{args.channel}: back to the app's builtin build"
    else:
        line = f"up to date: {result.detail}" + (f" ({release.short})" if release else "")
    out.result(doc, [line])
    return 0


def _delta_text(result: FetchResult) -> str:
    """How the release came: by its patch, or in full (and why the patch was refused)."""
    report = result.delta
    if report is None:
        return f", {result.downloaded} bytes downloaded"
    base = report.base_label or report.base[:12]
    if report.used:
        return f" by its patch from {base}: {result.downloaded} bytes downloaded"
    return (
        f", the full bundle after the patch from {base} was refused ({report.refused}): "
        f"{result.downloaded} bytes downloaded"
    )


def _check_root_file(path: str, data: bytes, app: str) -> None:
    """A ``--root`` that is no root.json of ``app`` is the file's fault, not the store's."""
    from otaseal import trust  # noqa: PLC0415
    from otaseal.errors import MetadataError  # noqa: PLC0415

    try:
        trust.verify_trusted_root(data, app=app)
    except MetadataError as exc:
        raise type(exc)(
            f"--root {path} is not a root.json this device can trust: {exc.what}",
            expected=f"the root.json of the project for {app} (the file `root:` in otaseal.yml "
            "names, written by `otaseal init`), signed by its own root keys",
            fix="pass that file as --root; the store was not read",
        ) from None


def cmd_serve(args: argparse.Namespace, out: Output) -> int:  # noqa: ARG001 - logs, not results
    """Answer ``@capgo/capacitor-updater`` devices from the store's signed channel manifests."""
    from otaseal.config import CONFIG_NAME, find_config, load_config  # noqa: PLC0415
    from otaseal.extras import load  # noqa: PLC0415

    for module in ("starlette", "uvicorn", "msgspec"):
        load(module, needed_for="otaseal serve")
    try:
        from otaseal.serve.run import (  # noqa: PLC0415
            ServeOptions,
            default_stats_url,
            parse_root_option,
            serve,
        )
    except ImportError as exc:
        raise InputError(
            f"otaseal serve needs the serve extra ({exc.name} is not installed)",
            fix="pip install 'otaseal[serve]' (and 'otaseal[postgres]' for PostgreSQL stats)",
        ) from None
    config = None
    if args.config or (Path.cwd() / CONFIG_NAME).is_file():
        config = load_config(find_config(args.config))
    roots = tuple(parse_root_option(r) for r in args.root or ())
    if not roots and config is not None:
        roots = ((config.app, str(config.root)),)
    store = args.store or (config.store if config else None)
    if not store:
        raise InputError(
            "serve needs a store",
            expected="--store PATH or s3://bucket/prefix, or an otaseal.yml in the current folder",
            fix="pass --store",
        )
    for name, value in (
        ("--workers", args.workers),
        ("--stats-retention-days", args.stats_retention_days),
    ):
        if value < 1:
            raise InputError(
                f"{name} is {value}",
                expected="an integer of at least 1",
                fix=f"pass {name} 1 or more",
            )
    if not 0 <= args.port <= 65535:  # noqa: PLR2004 - TCP ports
        raise InputError(
            f"--port is {args.port}", expected="a TCP port from 1 to 65535", fix="pass --port 8765"
        )
    if args.cache_ttl < 0:
        raise InputError(
            f"--cache-ttl is {args.cache_ttl:g}",
            expected="0 or more seconds",
            fix="pass --cache-ttl 5",
        )
    serve(
        ServeOptions(
            store=store,
            roots=roots,
            stats=args.stats or default_stats_url(),
            public_url=args.public_url,
            s3_endpoint=args.s3_endpoint or (config.s3_endpoint if config else None),
            host=args.host,
            port=args.port,
            workers=args.workers,
            retention_days=args.stats_retention_days,
            default_channel=args.default_channel,
            self_assignable=tuple(args.self_assignable or ()),
            project_self_assignable=((config.app, config.self_assignable),) if config else (),
            cache_ttl=args.cache_ttl,
            manifest=args.manifest,
        )
    )
    return 0


def cmd_stats(args: argparse.Namespace, out: Output) -> int:
    """Print update checks, downloads, installs, failures and rollbacks per app/channel/release."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from otaseal.serve import report  # noqa: PLC0415
    from otaseal.serve.db import open_stats  # noqa: PLC0415
    from otaseal.serve.run import default_stats_url  # noqa: PLC0415

    since, until = report.window(args.since, args.until, now=datetime.now(UTC))
    db = open_stats(args.stats or default_stats_url(), create=False)
    try:
        db.migrate()
        counts = db.counts(since=since, until=until, app=args.app)
    finally:
        db.close()
    out.result(
        report.to_json(counts, since=since, until=until, app=args.app),
        report.text(counts, since=since, until=until, app=args.app),
    )
    return 0


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
