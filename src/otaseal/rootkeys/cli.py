"""``otaseal root``: renew, add-key, remove-key, threshold, rotate-channel, propose, sign, publish.

The direct commands sign with the project's root key (or ``--key``) and publish in one step when
those keys meet both thresholds; otherwise ``propose`` / ``sign`` / ``publish`` collect the
signatures offline, one key holder at a time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from otaseal.cli import Output
    from otaseal.dsse import Signer
    from otaseal.operations import Project
    from otaseal.rootkeys.changes import Change
    from otaseal.rootkeys.ops import RootResult
    from otaseal.rootkeys.proposal import Proposal

_CHANGES = ("renew", "add-key", "remove-key", "threshold", "rotate-channel")


def _project(args: argparse.Namespace) -> Project:
    from otaseal.cli import _project as open_project  # noqa: PLC0415 - cli imports us lazily

    return open_project(args)


def _change(args: argparse.Namespace, project: Project) -> tuple[Change, Signer | None]:
    """The requested change, and rotate-channel's new key as a signer when it can sign."""
    from otaseal.rootkeys import changes, ops  # noqa: PLC0415

    kind = args.change
    if kind == "renew":
        return changes.Renew(), None
    if kind == "add-key":
        role = changes.role_name(args.role)
        return changes.AddKey(role, ops.resolve_public(project, args.keyref, role)), None
    if kind == "remove-key":
        return changes.RemoveKey(changes.role_name(args.role), args.keyid.lower()), None
    if kind == "threshold":
        return changes.SetThreshold(changes.role_name(args.role), args.n), None
    channel = changes.role_name(args.channel).removeprefix("channel:")
    public, signer = ops.rotation_key(project, args.keyref, channel)
    return changes.RotateChannel(channel, public), signer


def _channel_keys(args: argparse.Namespace, project: Project) -> dict[str, Signer]:
    from otaseal.rootkeys import ops  # noqa: PLC0415
    from otaseal.rootkeys.changes import role_name  # noqa: PLC0415

    refs: dict[str, str] = {}
    for item in args.channel_key or ():
        channel, sep, ref = item.partition("=")
        if not sep or not ref:
            raise InputError(
                f"--channel-key {item.split('=', 1)[0]!r}… is not CHANNEL=KEYREF",
                expected="e.g. --channel-key beta=file:keys/beta-2.pem",
            )
        refs[role_name(channel).removeprefix("channel:")] = ref
    return ops.channel_signers(project, refs)


def _result(out: Output, result: RootResult, verb: str) -> int:
    root = result.root
    out.result(
        {
            "root_version": root.version,
            "path": result.path,
            "expires": _time(root.expires),
            "resigned_channels": list(result.resigned),
            "roles": _roles(root),
        },
        [f"root v{root.version} {verb}: {result.path}; expires {_time(root.expires)}"],
    )
    return 0


def _time(moment: object) -> str:
    from otaseal.model import format_time  # noqa: PLC0415

    return format_time(moment)  # type: ignore[arg-type]


def _roles(root: object) -> dict[str, object]:
    from otaseal.model import Root  # noqa: PLC0415

    assert isinstance(root, Root)  # noqa: S101 - typed loosely to keep imports lazy
    return {
        name: {"keyids": sorted(role.keyids), "threshold": role.threshold}
        for name, role in sorted(root.roles.items())
    }


# --- commands ------------------------------------------------------------------------------------
def cmd_change(args: argparse.Namespace, out: Output) -> int:
    """A direct change: sign with the keys at hand and publish, when they are enough."""
    from otaseal.rootkeys import ops  # noqa: PLC0415

    project = _project(args)
    change, rotation_signer = _change(args, project)
    signers = _channel_keys(args, project)
    if rotation_signer is not None:
        signers.setdefault(change.channel, rotation_signer)  # type: ignore[union-attr]
    result = ops.apply(
        project,
        change,
        expires_in=args.expires_in,
        key_refs=args.key or (),
        channel_signers=signers,
        notice=out.notice,
    )
    return _result(out, result, "published")


def cmd_propose(args: argparse.Namespace, out: Output) -> int:
    """Write the unsigned next root for offline signing."""
    from otaseal.rootkeys import ops  # noqa: PLC0415

    project = _project(args)
    change, _ = _change(args, project)
    proposal = ops.make_proposal(project, change, expires_in=args.expires_in)
    _write_new(Path(args.out), proposal.to_json())
    out.notice(
        f"sign it on each root key holder's machine: `otaseal root sign {args.out} --app "
        f"{project.app} --key KEYREF`; it needs {_needs(proposal)}"
    )
    return _proposal_result(out, proposal, args.out, "proposed")


def _needs(proposal: Proposal) -> str:
    from otaseal.rootkeys.proposal import tally  # noqa: PLC0415

    return tally(proposal).describe()


def _proposal_result(out: Output, proposal: Proposal, path: str, verb: str) -> int:
    from otaseal.rootkeys.proposal import tally  # noqa: PLC0415

    counted = tally(proposal)
    out.result(
        {
            "root_version": proposal.next.version,
            "path": path,
            "expires": _time(proposal.next.expires),
            "signed_by": sorted(k for k, _ in proposal.envelope.signatures),
            "old_root_signatures": len(counted.old_signed),
            "old_root_threshold": counted.old_threshold,
            "new_root_signatures": len(counted.new_signed),
            "new_root_threshold": counted.new_threshold,
            "ready": counted.ready,
            "roles": _roles(proposal.next),
        },
        [
            f"root v{proposal.next.version} {verb} in {path}: {counted.describe()}"
            + ("; ready: `otaseal root publish " + path + "`" if counted.ready else "")
        ],
    )
    return 0


def _write_new(path: Path, data: bytes) -> None:
    try:
        with path.open("xb") as handle:
            handle.write(data)
    except FileExistsError:
        raise InputError(
            f"{path} already exists", fix="pass another --out; a proposal is never overwritten"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror})") from None


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the proposal {path} ({exc.strerror})",
            fix="pass the file `otaseal root propose --out` wrote",
        ) from None


def _sign_app(args: argparse.Namespace) -> str:
    """The app the signer means to sign for: --app, else the project's."""
    from otaseal.config import CONFIG_NAME, find_config, load_config  # noqa: PLC0415
    from otaseal.model import check_app_id  # noqa: PLC0415

    if args.app:
        return check_app_id(args.app)
    if args.config or (Path.cwd() / CONFIG_NAME).is_file():
        return load_config(find_config(args.config)).app
    raise InputError(
        "root sign does not know which app you mean to sign for",
        expected="--app APP_ID, or an otaseal.yml (--config)",
        fix="pass --app so a proposal for another app cannot be signed by mistake",
    )


def cmd_sign(args: argparse.Namespace, out: Output) -> int:
    """Add one signature to a proposal; needs only the proposal file and that key."""
    import os  # noqa: PLC0415

    from otaseal.rootkeys import proposal as proposals  # noqa: PLC0415
    from otaseal.secrets import resolve_signer  # noqa: PLC0415

    app = _sign_app(args)
    proposal = proposals.load(_read(args.proposal), app=app, source=args.proposal)
    signer = resolve_signer(args.key, role="root", mask=lambda _: None, env=os.environ)
    signed = proposals.add_signature(proposal, signer)
    path = Path(args.proposal)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(signed.to_json())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path} ({exc.strerror})") from None
    out.notice(f"signed root v{signed.next.version} with key {signer.keyid[:12]}")
    return _proposal_result(out, signed, args.proposal, "signed")


def cmd_publish(args: argparse.Namespace, out: Output) -> int:
    """Store a proposal once a threshold of the old and of the new root keys signed it."""
    from otaseal.rootkeys import ops  # noqa: PLC0415
    from otaseal.rootkeys import proposal as proposals  # noqa: PLC0415

    project = _project(args)
    proposal = proposals.load(_read(args.proposal), app=project.app, source=args.proposal)
    result = ops.publish(
        project, proposal, channel_signers=_channel_keys(args, project), notice=out.notice
    )
    return _result(out, result, "published")


def cmd_resign_channels(args: argparse.Namespace, out: Output) -> int:
    """Re-sign what the newest root no longer accepts; catch root.json up with the store."""
    from otaseal.rootkeys import ops  # noqa: PLC0415

    project = _project(args)
    result = ops.resign_channels(
        project, channel_signers=_channel_keys(args, project), notice=out.notice
    )
    return _result(out, result, "is the newest root")


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    """The newest root: version, expiry, roles and key ids."""
    from otaseal.rootkeys import ops  # noqa: PLC0415

    root, _ = ops.newest_root(_project(args))
    lines = [f"{root.app} root v{root.version}, expires {_time(root.expires)}"]
    for name, role in sorted(root.roles.items()):
        lines.append(f"  {name:<22} {role.threshold} of {len(role.keyids)}")
        lines += [f"    {k} ({root.keys[k].algorithm})" for k in sorted(role.keyids)]
    out.result(
        {"app": root.app, "root_version": root.version, "expires": _time(root.expires)}
        | {"roles": _roles(root)},
        lines,
    )
    return 0


# --- parser --------------------------------------------------------------------------------------
def _change_arguments(p: argparse.ArgumentParser, kind: str) -> None:
    if kind in {"add-key", "remove-key", "threshold"}:
        p.add_argument("--role", required=True, help="root, or a channel: beta / channel:beta")
    if kind == "add-key":
        p.add_argument("keyref", metavar="KEYREF", help="public or private key, kms://, …")
    elif kind == "remove-key":
        p.add_argument("keyid", metavar="KEYID", help="key id (or 8+ hex digit prefix)")
    elif kind == "threshold":
        p.add_argument("n", metavar="N", type=int, help="signatures the role needs")
    elif kind == "rotate-channel":
        p.add_argument("channel", metavar="CH", help="channel whose key is replaced")
        p.add_argument("keyref", metavar="NEWKEYREF", help="the new key (file:, kms://, …)")
    p.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="365d (default), 52w, 720h, or an RFC 3339 time",
    )


_HELP = {
    "renew": "Same keys, a new expiry (root v N+1).",
    "add-key": "Add a key to a role.",
    "remove-key": "Remove a key from a role.",
    "threshold": "Set how many of a role's keys must sign.",
    "rotate-channel": "Replace a channel's key (revokes the old one) and re-sign the channel.",
}
_EXAMPLES = {
    "renew": "otaseal root renew --expires-in 365d",
    "add-key": "otaseal root add-key --role root keys/root-2.pub.pem",
    "remove-key": "otaseal root remove-key --role root 763b35df6c5b",
    "threshold": "otaseal root threshold --role root 2",
    "rotate-channel": "otaseal root rotate-channel beta file:keys/beta-2.pem",
}


def _channel_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channel-key",
        action="append",
        metavar="CH=KEYREF",
        help="a channel's new key, to re-sign a channel the new root no longer accepts",
    )


def add_root_commands(
    command: Callable[..., argparse.ArgumentParser],
    project: argparse.ArgumentParser,
    plain: argparse.ArgumentParser,
) -> None:
    """Register ``otaseal root …`` through the ``command`` helper of ``otaseal.cli_parser``."""
    group = command(
        "root",
        cmd_show,
        "Renew root.json, change its keys and thresholds, sign offline (k-of-n).",
        "otaseal root renew\n"
        "otaseal root propose threshold --role root 2 --out next.root.json\n"
        "otaseal root sign next.root.json --app com.example.app --key file:keys/root-2.pem\n"
        "otaseal root publish next.root.json",
        type(project)(add_help=False),
    )
    sub = group.add_subparsers(
        dest="root_command",
        required=True,
        parser_class=type(group),
        title="root commands",
        metavar="COMMAND",
    )

    def child(
        name: str, func: Callable[..., int], text: str, example: str, parent: object
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[parent],  # type: ignore[list-item]
            help=text,
            description=text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func, change=name)
        return p

    child(
        "show", cmd_show, "Show the newest root's roles and key ids.", "otaseal root show", project
    )
    for kind in _CHANGES:
        p = child(kind, cmd_change, _HELP[kind], _EXAMPLES[kind], project)
        _change_arguments(p, kind)
        p.add_argument(
            "--key",
            action="append",
            metavar="KEYREF",
            help="root key(s) to sign with (default: keys.root of otaseal.yml); repeatable",
        )
        _channel_key_option(p)

    p = child(
        "propose",
        cmd_propose,
        "Write the unsigned next root for offline k-of-n signing.",
        "otaseal root propose add-key --role root keys/root-2.pub.pem --out next.root.json",
        type(project)(add_help=False),
    )
    kinds = p.add_subparsers(
        dest="change", required=True, parser_class=type(group), metavar="CHANGE"
    )
    for kind in _CHANGES:
        example = _EXAMPLES[kind].replace("otaseal root ", "otaseal root propose ", 1)
        k = kinds.add_parser(
            kind,
            parents=[project],
            help=_HELP[kind],
            description=_HELP[kind],
            epilog=f"example:\n  {example} --out next.root.json",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _change_arguments(k, kind)
        k.add_argument("--out", required=True, help="the proposal file to write")

    p = child(
        "sign",
        cmd_sign,
        "Add one root signature to a proposal (offline: only the file and the key).",
        "otaseal root sign next.root.json --app com.example.app --key file:keys/root-2.pem",
        plain,
    )
    p.add_argument("proposal", metavar="FILE", help="the proposal file")
    p.add_argument("--key", required=True, metavar="KEYREF", help="one root key (file:, kms://, …)")
    p.add_argument("--app", help="the app you mean to sign for (default: otaseal.yml's)")
    p.add_argument("--config", metavar="PATH", help="otaseal.yml (for the app id)")

    p = child(
        "publish",
        cmd_publish,
        "Store a proposal once the old and the new root thresholds are met.",
        "otaseal root publish next.root.json",
        project,
    )
    p.add_argument("proposal", metavar="FILE", help="the signed proposal file")
    _channel_key_option(p)

    p = child(
        "resign-channels",
        cmd_resign_channels,
        "Finish an interrupted root change: re-sign channels the newest root no longer accepts.",
        "otaseal root resign-channels --channel-key beta=file:keys/beta-2.pem",
        project,
    )
    _channel_key_option(p)
