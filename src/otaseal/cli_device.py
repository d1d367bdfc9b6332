"""The device side of the CLI: ``fetch`` (the reference client), ``serve`` and ``stats``.

Split from :mod:`otaseal.cli` (which keeps ``Output``, the project loader and the error-to-exit
rule); the grammar is :mod:`otaseal.cli_parser`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.errors import InputError

if TYPE_CHECKING:
    import argparse

    from otaseal.cli import Output
    from otaseal.client import FetchResult
    from otaseal.store import Fetcher


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
