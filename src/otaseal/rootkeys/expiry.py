"""Pure: which roots and channel manifests expire soon, for ``status`` (CLI and Action).

From 60 days before an expiry ``status`` warns; from 14 days it fails, so a scheduled job goes
red while there is still time to renew the root or re-sign the channel. A manifest signed for
less than 120 days (30 by default) warns only in the second half of its life: otherwise a freshly
re-signed channel would warn from the day it was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from otaseal.model import format_time

if TYPE_CHECKING:
    from collections.abc import Mapping

    from otaseal.model import ChannelManifest, Root

WARN_BEFORE = timedelta(days=60)
FAIL_BEFORE = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class ExpiryNote:
    """One piece of metadata close to (or past) its expiry."""

    what: str  # "root v3" or "beta manifest v12"
    expires: datetime
    level: Literal["warning", "error"]
    fix: str

    def message(self, now: datetime) -> str:
        """One paragraph for people."""
        left = self.expires - now
        when = (
            f"expired at {format_time(self.expires)}"
            if left <= timedelta(0)
            else f"expires at {format_time(self.expires)}, in {left.days} day(s)"
        )
        return f"{self.what} {when}: {self.fix}"


def expiry_notes(
    root: Root, manifests: Mapping[str, ChannelManifest | None], *, now: datetime
) -> tuple[ExpiryNote, ...]:
    """Notes for the root and each channel manifest expiring within 60 days of ``now``."""
    items = [
        (
            f"root v{root.version}",
            root.issued,
            root.expires,
            "renew it with `otaseal root renew` (devices refuse an expired root)",
        )
    ]
    for channel, manifest in sorted(manifests.items()):
        if manifest is not None:
            items.append(
                (
                    f"{channel} manifest v{manifest.version}",
                    manifest.issued,
                    manifest.expires,
                    (
                        f"re-sign it with `otaseal resign --channel {channel}` (devices refuse "
                        "an expired manifest)"
                    ),
                )
            )
    notes = []
    for what, issued, expires, fix in items:
        warn_before = min(WARN_BEFORE, max((expires - issued) / 2, FAIL_BEFORE))
        if expires - now <= FAIL_BEFORE:
            notes.append(ExpiryNote(what, expires, "error", fix))
        elif expires - now <= warn_before:
            notes.append(ExpiryNote(what, expires, "warning", fix))
    return tuple(notes)
