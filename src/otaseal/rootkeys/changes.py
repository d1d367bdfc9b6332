"""Pure: the current root and one requested change -> the next root value, or an ``InputError``.

Every change writes version N+1 with a fresh ``issued`` and ``expires``; a device walks to it
when a threshold of the old and of the new root keys signed it (SPEC §6.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from otaseal.errors import InputError
from otaseal.model import Role, Root, channel_role, check_name, format_time, parse_time

if TYPE_CHECKING:
    from otaseal.crypto import PublicKey

DEFAULT_LIFETIME = timedelta(days=365)
_DURATION_RE = re.compile(r"(-?[0-9]{1,6})([dwh])")
_UNITS = {"d": timedelta(days=1), "w": timedelta(weeks=1), "h": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class Renew:
    """Same keys and thresholds, a new expiry."""


@dataclass(frozen=True, slots=True)
class AddKey:
    """Add ``public`` to ``role`` (a channel role that does not exist yet is created, 1-of-1)."""

    role: str
    public: PublicKey


@dataclass(frozen=True, slots=True)
class RemoveKey:
    """Take ``keyid`` out of ``role``; the key leaves the key table when no role lists it."""

    role: str
    keyid: str


@dataclass(frozen=True, slots=True)
class SetThreshold:
    """How many of ``role``'s keys must sign."""

    role: str
    threshold: int


@dataclass(frozen=True, slots=True)
class RotateChannel:
    """The channel's role gets only ``public``: every old key of the channel is revoked."""

    channel: str
    public: PublicKey


Change = Renew | AddKey | RemoveKey | SetThreshold | RotateChannel


def role_name(text: str) -> str:
    """``root``, ``channel:beta`` or just ``beta`` -> the role's name in root.json."""
    if text == "root":
        return text
    channel = text.removeprefix("channel:")
    check_name(channel, "channel name")
    return channel_role(channel)


def parse_expiry(text: str, now: datetime) -> datetime:
    """``365d``, ``52w``, ``720h`` from ``now``, or an RFC 3339 time; never in the past."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match:
        expires = now + int(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            expires = parse_time(text.strip())
        except ValueError:
            raise InputError(
                f"--expires-in {text!r} is neither a duration nor a time",
                expected="a duration such as 365d, 52w or 720h, or a time such as "
                "2027-06-01T00:00:00Z",
                fix="pass e.g. `--expires-in 365d`",
            ) from None
    if expires <= now:
        raise InputError(
            f"the new root would expire at {format_time(expires)}, which is not after now "
            f"({format_time(now)})",
            expected="an expiry in the future, typically a year away",
            fix="pass e.g. `--expires-in 365d`; devices refuse an expired root",
        )
    return expires


def next_root(current: Root, change: Change, *, now: datetime, expires: datetime) -> Root:
    """Root ``current.version + 1`` with ``change``; refuses what devices could not use."""
    if expires <= now:
        raise InputError(
            f"the new root would expire at {format_time(expires)}, not after now",
            expected="an expiry in the future",
            fix="pass e.g. `--expires-in 365d`",
        )
    keys, roles = dict(current.keys), dict(current.roles)
    if isinstance(change, AddKey):
        _add_key(keys, roles, change.role, change.public)
    elif isinstance(change, RemoveKey):
        _remove_key(roles, change.role, change.keyid)
    elif isinstance(change, SetThreshold):
        role = _existing(roles, change.role)
        _check_threshold(change.role, change.threshold, len(role.keyids))
        if change.threshold == role.threshold:
            raise _nothing(f"{change.role} already needs {role.threshold} signature(s)")
        roles[change.role] = Role(role.keyids, change.threshold)
    elif isinstance(change, RotateChannel):
        name = channel_role(change.channel)
        role = _existing(roles, name)
        new_id = change.public.keyid
        if role.keyids == (new_id,):
            raise _nothing(f"{name} already has only the key {new_id[:12]}")
        _refuse_other_role(roles, name, new_id)
        keys[new_id] = change.public
        roles[name] = Role((new_id,), 1)
    used = {k for role in roles.values() for k in role.keyids}
    return replace(
        current,
        version=current.version + 1,
        issued=now,
        expires=expires,
        keys={k: v for k, v in sorted(keys.items()) if k in used},
        roles={n: Role(tuple(sorted(r.keyids)), r.threshold) for n, r in sorted(roles.items())},
    )


def _existing(roles: dict[str, Role], name: str) -> Role:
    role = roles.get(name)
    if role is None:
        raise InputError(
            f"root.json has no role {name!r}",
            expected="one of " + ", ".join(sorted(roles)),
            fix="pick a listed role (root or channel:NAME)",
        )
    return role


def _refuse_other_role(roles: dict[str, Role], name: str, keyid: str) -> None:
    """One key, one role: a leaked beta key must not sign root or production."""
    others = sorted(n for n, r in roles.items() if n != name and keyid in r.keyids)
    if others:
        raise InputError(
            f"the key {keyid[:12]} already signs for {', '.join(others)}",
            expected=f"a key that no other role lists, for {name}",
            fix="make a new key with `otaseal keygen --kind signing --out keys/NEW.pem`",
        )


def _add_key(
    keys: dict[str, PublicKey], roles: dict[str, Role], name: str, public: PublicKey
) -> None:
    keyid = public.keyid
    role = roles.get(name)
    if name != "root" and role is None:
        role = Role((), 1)
    role = _existing(roles, name) if role is None else role
    if keyid in role.keyids:
        raise _nothing(f"{name} already lists the key {keyid[:12]}")
    _refuse_other_role(roles, name, keyid)
    keys[keyid] = public
    roles[name] = Role((*role.keyids, keyid), role.threshold)


def _remove_key(roles: dict[str, Role], name: str, keyid: str) -> None:
    role = _existing(roles, name)
    matches = [k for k in role.keyids if k == keyid or (len(keyid) >= 8 and k.startswith(keyid))]  # noqa: PLR2004
    if len(matches) != 1:
        raise InputError(
            f"{name} has no key {keyid[:64]!r}" if not matches else f"{keyid!r} is ambiguous",
            expected="a key id (or a unique prefix of 8+ hex digits) of "
            + ", ".join(k[:12] for k in role.keyids),
            fix="see the key ids with `otaseal root show`",
        )
    left = tuple(k for k in role.keyids if k != matches[0])
    if not left:
        raise InputError(
            f"{matches[0][:12]} is the last key of {name}",
            expected="a role that keeps at least one key",
            fix=f"add the replacement first (`otaseal root add-key --role {name} KEYREF`), "
            "then remove this one"
            + ("" if name == "root" else f", or use `otaseal root rotate-channel {name[8:]}`"),
        )
    if role.threshold > len(left):
        raise InputError(
            f"removing {matches[0][:12]} leaves {name} {len(left)} key(s) for a threshold of "
            f"{role.threshold}",
            expected="a threshold no higher than the keys that stay",
            fix=f"lower it first: `otaseal root threshold --role {name} {len(left)}`",
        )
    roles[name] = Role(left, role.threshold)


def _check_threshold(name: str, threshold: int, count: int) -> None:
    if not 1 <= threshold <= count:
        raise InputError(
            f"a threshold of {threshold} for {name}, which has {count} key(s)",
            expected=f"a threshold from 1 to {count}",
            fix="add keys first (`otaseal root add-key`) to raise the threshold further",
        )


def _nothing(what: str) -> InputError:
    return InputError(what, expected="a change to make", fix="nothing was written")
