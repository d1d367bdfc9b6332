"""``otaseal status``: every channel, what it serves, its update sizes, expiry and device health.

Split from :mod:`otaseal.cli` (which keeps ``Output``, the project loader and the error-to-exit
rule); the grammar is :mod:`otaseal.cli_parser`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.cli import Output, _project, _serving
from otaseal.errors import Error, InputError

if TYPE_CHECKING:
    import argparse
    from datetime import datetime

    from otaseal.model import ChannelManifest
    from otaseal.operations import Project


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
