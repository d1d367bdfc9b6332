"""Fail-closed publishing: what ``publish`` refuses to put on top of a channel's current release.

Pure checks over the release a channel serves now and the facts of the new build; each raises an
``InputError`` (exit 2) that names the override. ``publish`` runs them after its no-op check
(a byte-identical build is never refused) and before it uploads or signs anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otaseal.errors import InputError
from otaseal.model import FULL_ROLLOUT
from otaseal.native import compare

if TYPE_CHECKING:
    from otaseal.model import Release
    from otaseal.native import NativeChange, NativeLayer


def is_partial_rollout(release: Release | None) -> bool:
    """A staged rollout under way: some but not all devices, paused or not."""
    return release is not None and 0 < release.rollout_bp < FULL_ROLLOUT


def verify_no_partial_rollout(current: Release | None, channel: str, *, replace: bool) -> None:
    """Refuse to replace a staged rollout unless ``replace`` (``--replace-rollout``).

    A paused rollout counts: someone stopped it on evidence, and a publish on top would hand a
    new build to every device without anyone deciding so.
    """
    if replace or current is None or not is_partial_rollout(current):
        return
    paused = ", paused" if current.paused else ""
    raise InputError(
        f"{channel} is in a staged rollout: its current release {current.short} reaches "
        f"{current.rollout_bp / 100:g} % of devices{paused}",
        expected="a channel whose current release reaches every device (100 %) or none (0 %), "
        "so that a publish does not silently end a rollout someone is watching",
        fix=f"finish it (`otaseal rollout --channel {channel} --percent 100`) or revert it "
        f"(`otaseal revert --channel {channel}`) first, or pass `--replace-rollout` to replace "
        "it with this build; nothing was uploaded or signed",
    )


def is_new_native_range(current: Release, native_min: int | None) -> bool:
    """``--native-min`` given and above the current release's (any value when it has none)."""
    if native_min is None:
        return False
    return current.native_min is None or native_min > current.native_min


def native_change(current: Release | None, layer: NativeLayer | None) -> NativeChange | None:
    """What changed since ``current`` was published; None when unchanged or not comparable."""
    if current is None or layer is None or current.native_fingerprint is None:
        return None
    return compare(current.native_fingerprint, dict(current.native_packages or ()), layer)


def verify_native_compatible(
    current: Release | None,
    layer: NativeLayer | None,
    channel: str,
    *,
    native_min: int | None,
    accept: bool,
) -> NativeChange | None:
    """Refuse a changed native layer without a new native range, unless ``accept``.

    Returns the change it let through (with a new range, or accepted), for the notice.
    """
    change = native_change(current, layer)
    if change is None or current is None or layer is None:
        return None
    if accept or is_new_native_range(current, native_min):
        return change
    floor = f"{current.native_min}" if current.native_min is not None else "none"
    raise InputError(
        f"the native layer changed since {channel}'s current release {current.short}: "
        f"{change.describe(layer.config_file)}",
        expected="a web build for the native build devices already run, or a new native "
        f"compatibility range: `--native-min N` above the current release's ({floor})",
        fix="ship a native build with this change to the app stores first, then publish with "
        "`--native-min N` (N: that build's number) so that older apps keep a release they can "
        "run; or, when this web build does not depend on the change, pass "
        "`--accept-incompatible`; nothing was uploaded or signed",
    )


def verify_publish(
    current: Release | None,
    layer: NativeLayer | None,
    channel: str,
    *,
    native_min: int | None,
    replace_rollout: bool,
    accept_incompatible: bool,
) -> Release | None:
    """Both checks, in the order people fix them; returns the staged rollout being replaced."""
    verify_no_partial_rollout(current, channel, replace=replace_rollout)
    verify_native_compatible(
        current, layer, channel, native_min=native_min, accept=accept_incompatible
    )
    return current if is_partial_rollout(current) else None
