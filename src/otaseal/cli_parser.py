"""The command line's grammar: commands, their options, help text and examples.

Each command lists only the options it reads, every option says what it is for, and each
command's ``--help`` ends with an example. The functions that run the commands live in
:mod:`otaseal.cli`, which imports this module only when it parses arguments.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn

from otaseal import __version__, cli, cli_device, cli_status
from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable


class Parser(argparse.ArgumentParser):
    """Usage mistakes become ``InputError`` so they print like every other error."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting 2 from inside argparse."""
        raise InputError(f"{self.prog}: {message}", fix=f"see `{self.prog} --help`")


def percent(text: str) -> float:
    """``10``, ``12.5`` or ``10%``, as the Action's ``rollout`` input accepts."""
    try:
        return float(text.strip().removesuffix("%").strip())
    except ValueError:
        raise InputError(
            f"rollout {text!r} is not a number", expected="a percentage from 0 to 100"
        ) from None


_ALGORITHMS = ["ecdsa-p256-sha256", "ed25519"]
_ALGORITHM_HELP = "signature algorithm of the keys (default: ecdsa-p256-sha256)"


def _options(*adders: Callable[[argparse.ArgumentParser], None]) -> Parser:
    """A parent parser holding one group of options, added only to commands that read them."""
    parent = Parser(add_help=False)
    for add in adders:
        add(parent)
    return parent


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (messages: stderr)"
    )


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", help="otaseal.yml (default: ./otaseal.yml)")


def _store_options(p: argparse.ArgumentParser, *, device: bool = False) -> None:
    what = "the store to read" if device else "overrides otaseal.yml"
    p.add_argument("--store", metavar="STORE", help=f"folder or s3://bucket/prefix ({what})")
    p.add_argument(
        "--s3-endpoint", metavar="URL", help="endpoint URL of an S3-compatible service (MinIO, R2…)"
    )


def _lock_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--s3-lock-mode",
        action="store_true",
        help="use a lock object, for S3-compatible services without conditional writes",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each command lists only the options it reads."""
    plain = _options(_json_option)
    project = _options(_json_option, _config_option, _store_options, _lock_option)
    parser = Parser(
        prog="otaseal",
        description="Sealed live updates for Capacitor / Ionic: sign, encrypt, publish, fetch.",
        epilog="Run `otaseal COMMAND --help` for a command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"otaseal {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, title="commands", metavar="COMMAND"
    )

    def command(
        name: str,
        func: Callable[[argparse.Namespace, cli.Output], int],
        text: str,
        example: str,
        parent: Parser = project,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[parent],
            help=text,
            description=text,
            epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = command(
        "init",
        cli.cmd_init,
        "Create a project: keys, root.json, otaseal.yml, a store.",
        "otaseal init --app com.example.app --dir my-app --formats sealed,capgo",
        plain,
    )
    p.add_argument("--app", required=True, help="app id, e.g. com.example.app")
    p.add_argument("--dir", default=".", help="project directory (default: .)")
    p.add_argument("--algorithm", default=_ALGORITHMS[0], choices=_ALGORITHMS, help=_ALGORITHM_HELP)
    p.add_argument(
        "--formats",
        default="sealed",
        help="sealed (default) or sealed,capgo: also publish @capgo/capacitor-updater's format",
    )

    p = command(
        "keygen",
        cli.cmd_keygen,
        "Make one signing, encryption or Capgo (RSA-2048) key.",
        "otaseal keygen --kind signing --out keys/production-2.pem",
        plain,
    )
    p.add_argument(
        "--kind",
        required=True,
        choices=["signing", "encryption", "capgo"],
        help="what the key is for: signing metadata, decrypting bundles, or Capgo's RSA key",
    )
    p.add_argument("--out", required=True, help="private key path (public: .pub.pem)")
    p.add_argument("--algorithm", default=_ALGORITHMS[0], choices=_ALGORITHMS, help=_ALGORITHM_HELP)

    _release_commands(command)
    _recipients_command(sub, project)
    _device_commands(command, _options(_json_option, lambda p: _store_options(p, device=True)))
    _serve_command(command, _options(_config_option, _store_options))
    from otaseal.rootkeys.cli import add_root_commands  # noqa: PLC0415 - the group's own module

    add_root_commands(command, project, plain)
    return parser


def _release_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "publish",
        cli.cmd_publish,
        "Seal a web build and publish it to a channel.",
        "npm run build && otaseal publish dist --channel beta --label 1.4.2",
    )
    p.add_argument("build_dir", metavar="DIST", help="the web build (dist/, www/)")
    p.add_argument("--channel", required=True, help="channel to publish to, e.g. beta")
    p.add_argument("--label", help="human version, e.g. 1.4.2 (default: r<counter>)")
    p.add_argument(
        "--rollout",
        type=percent,
        default=100.0,
        metavar="PERCENT",
        help="percent of devices that get it, e.g. 10 or 10%% (default: 100)",
    )
    p.add_argument("--native-min", type=int, help="lowest native build this web build runs on")
    p.add_argument("--native-max", type=int, help="highest native build this web build runs on")
    p.add_argument("--commit", help="source commit SHA, recorded in the manifest")
    p.add_argument("--pr", type=int, help="pull request number, recorded in the manifest")
    p.add_argument(
        "--allow-file",
        action="append",
        metavar="PATTERN",
        help="ship files that look like secrets anyway (repeatable)",
    )
    p.add_argument(
        "--project-dir",
        metavar="DIR",
        help="the app's folder with package.json and capacitor.config, for the native "
        "fingerprint (default: DIST's parent if it has package.json, else the current folder)",
    )
    p.add_argument(
        "--replace-rollout",
        action="store_true",
        help="publish even though the channel's current release is in a staged rollout",
    )
    p.add_argument(
        "--accept-incompatible",
        action="store_true",
        help="publish even though the native layer changed and --native-min did not rise",
    )
    delta = p.add_mutually_exclusive_group()
    delta.add_argument(
        "--delta-from",
        action="append",
        metavar="LABEL|COUNTER",
        help="make a delta patch from this earlier release of the channel (repeatable; default: "
        "the releases the channel serves, at most 3; needs keys.report)",
    )
    delta.add_argument(
        "--no-delta", action="store_true", help="make no delta patches, only the full bundle"
    )

    p = command(
        "promote",
        cli.cmd_promote,
        "Serve a release of one channel on another.",
        "otaseal promote --from beta --to production --release 1.4.2 --rollout 10",
    )
    p.add_argument("--from", dest="source", required=True, help="channel that has the release")
    p.add_argument("--to", dest="target", required=True, help="channel that will serve it")
    p.add_argument("--release", help="label or digest (default: the source's current)")
    p.add_argument(
        "--rollout",
        type=percent,
        default=100.0,
        metavar="PERCENT",
        help="percent of the target's devices that get it (default: 100)",
    )

    p = command(
        "rollout",
        cli.cmd_rollout,
        "Change the current release's rollout.",
        "otaseal rollout --channel production --percent 50",
    )
    p.add_argument("--channel", required=True, help="channel whose current release changes")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--percent", type=percent, help="new share of devices, 0 to 100 (10 or 10%%)"
    )
    group.add_argument(
        "--pause", action="store_true", help="no more devices take it; those that have it keep it"
    )
    group.add_argument("--resume", action="store_true", help="undo --pause")

    p = command(
        "revert",
        cli.cmd_revert,
        "Serve an earlier release (or the builtin build) again.",
        "otaseal revert --channel production --to 1.4.1",
    )
    p.add_argument("--channel", required=True, help="channel to revert")
    p.add_argument("--to", help="label, digest or 'builtin' (default: the previous release)")

    p = command(
        "resign",
        cli.cmd_resign,
        "Re-sign a channel with a fresh expiry.",
        "otaseal resign --channel production",
    )
    p.add_argument("--channel", required=True, help="channel to re-sign")

    p = command(
        "history",
        cli.cmd_history,
        "List a channel's manifests.",
        "otaseal history --channel production --json",
    )
    p.add_argument("--channel", required=True, help="channel to list")

    p = command(
        "status",
        cli_status.cmd_status,
        "Show every channel's current release and rollout (with --stats: how each is doing).",
        "otaseal status --stats sqlite:///var/lib/otaseal/stats.db --html status.html",
    )
    _status_health_options(p)

    command(
        "audit",
        cli.cmd_audit,
        "Check the whole store: every root, manifest version and bundle (exit 3/4 on problems).",
        "otaseal audit --json > audit.json",
    )

    p = command(
        "guard",
        cli.cmd_guard,
        "Advance a staged rollout one step on healthy stats, pause or revert on failures.",
        "otaseal guard --channel production --stats sqlite:///var/lib/otaseal/stats.db",
    )
    p.add_argument("--channel", required=True, help="channel with a plan under rollout_plans")
    p.add_argument("--stats", help="the database serve writes (default: serve's default)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the decision; sign and change nothing"
    )


def _status_health_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stats",
        metavar="URL",
        help="the database `otaseal serve` writes (sqlite:///PATH or postgresql://…): adds "
        "devices, installs, failures, rollbacks, the failure rate's upper bound and adoption",
    )
    p.add_argument("--since", default="7d", help="stats window: duration back or ISO time (7d)")
    p.add_argument("--until", help="end of the stats window, ISO 8601 (default: now)")
    p.add_argument(
        "--stale-after",
        default="6h",
        metavar="DURATION",
        help="call stats stale when a release's newest event is older (default: 6h)",
    )
    p.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    p.add_argument(
        "--markdown", metavar="PATH", help="also write the markdown of the PR comment's section"
    )


OVERLAP_HELP = (
    "Keep the old and the new key listed until every installed app version in the field ships "
    "the new key; then remove the old one."
)
_RECIPIENT_ACTIONS = (
    ("list", "show the listed keys", "otaseal recipients list"),
    (
        "add",
        "list one more key in otaseal.yml",
        (
            "otaseal keygen --kind encryption --out keys/app-decryption-2.pem\n"
            "otaseal recipients add keys/app-decryption-2.pub.pem"
        ),
    ),
    ("remove", "drop a key from otaseal.yml", "otaseal recipients remove 3f9a2c71e0b4"),
)


def _recipients_command(sub: argparse._SubParsersAction[Parser], parent: Parser) -> None:
    text = "List, add or remove the app's decryption public keys (key rotation)."
    p = sub.add_parser(
        "recipients",
        help=text,
        description=f"{text} {OVERLAP_HELP}",
        epilog="example:\n  otaseal recipients add keys/app-decryption-2.pub.pem\n"
        "  otaseal recipients list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    for name, helptext, example in _RECIPIENT_ACTIONS:
        q = actions.add_parser(
            name,
            parents=[parent],
            help=helptext,
            description=f"{helptext.capitalize()}. {OVERLAP_HELP}",
            epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        q.set_defaults(func=cli.cmd_recipients)
        if name == "add":
            q.add_argument("key", metavar="KEYREF|PUBLIC_PEM_PATH", help="the new public key")
        elif name == "remove":
            q.add_argument("keyid", metavar="KEYID", help="key id, or its first 8+ hex digits")


def _device_commands(command: Callable[..., argparse.ArgumentParser], parent: Parser) -> None:
    p = command(
        "fetch",
        cli_device.cmd_fetch,
        "Act as a device: verify and install a channel's release.",
        "otaseal fetch --store store --app com.example.app --channel beta --root root.json \\\n"
        "    --decryption-key keys/app-decryption.pem --state device --install-id d1 --out www",
        parent,
    )
    p.add_argument(
        "--base-url", metavar="URL", help="read the store over plain HTTP(S) instead of --store"
    )
    p.add_argument("--app", required=True, help="app id, e.g. com.example.app")
    p.add_argument("--channel", required=True, help="channel the device follows")
    p.add_argument("--root", help="trusted root.json (needed on the first fetch)")
    p.add_argument("--decryption-key", required=True, help="file path or key reference")
    p.add_argument("--state", required=True, help="device state directory")
    p.add_argument(
        "--install-id", required=True, help="the device's install id (picks its rollout bucket)"
    )
    p.add_argument("--out", required=True, help="where the verified web build goes")
    p.add_argument("--native", type=int, help="the device's native build number")
    p.add_argument(
        "--now", help="reference time, e.g. 2026-11-23T12:00:00Z (SPEC §1 form), for tests"
    )

    p = command(
        "stats",
        cli_device.cmd_stats,
        "Print device stats per app, channel and release.",
        "otaseal stats --since 7d --app com.example.app",
        _options(_json_option),
    )
    p.add_argument("--stats", help="the database serve writes (default: serve's default)")
    p.add_argument("--app", help="one app (default: all)")
    p.add_argument("--since", default="24h", help="duration back (90m, 24h, 7d) or ISO time")
    p.add_argument("--until", help="ISO 8601 time, UTC unless it has an offset (default: now)")


def _serve_command(command: Callable[..., argparse.ArgumentParser], parent: Parser) -> None:
    p = command(
        "serve",
        cli_device.cmd_serve,
        "Serve @capgo/capacitor-updater devices (updates, stats).",
        "otaseal serve --store s3://my-bucket/updates --public-url https://cdn.example.com \\\n"
        "    --host 0.0.0.0 --port 8765",
        parent,
    )
    p.add_argument(
        "--root",
        action="append",
        metavar="[APP=]PATH",
        help="trusted root.json of an app (repeatable; default: the project's)",
    )
    p.add_argument(
        "--public-url",
        help="where devices download bundles, e.g. a CDN in front of the store "
        "(default: presigned S3 URLs, or serve itself for a folder store)",
    )
    p.add_argument("--stats", help="sqlite:///PATH (default) or postgresql://…")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    p.add_argument(
        "--workers", type=int, default=1, help="server processes (default: 1; 2 on two cores)"
    )
    p.add_argument(
        "--stats-retention-days",
        type=int,
        default=90,
        help="days device events are kept (default: 90)",
    )
    p.add_argument(
        "--default-channel",
        help="channel for devices that name none (default: production, or the only channel)",
    )
    p.add_argument(
        "--self-assignable",
        action="append",
        metavar="CHANNEL",
        help="a channel devices may pick themselves, for every app that has it (repeatable; "
        "added to otaseal.yml's self_assignable)",
    )
    p.add_argument(
        "--cache-ttl",
        type=float,
        default=5.0,
        help="seconds a verified manifest is reused (default: 5; expiry is checked every time)",
    )
    p.add_argument(
        "--no-manifest",
        dest="manifest",
        action="store_false",
        help="answer every plugin with the whole zip, never the per-file manifest (SPEC §18)",
    )
