"""Release counters, claimed in the store so that no two publishes of an app share one.

A publish claims ``<app>/counters/<N>`` with a create-only write before any manifest names
``N``. The store's create-only primitive (``If-None-Match: *`` on S3, a hard link on a folder,
the app's lock object in S3 lock mode) gives each ``N`` to exactly one publisher, whichever
channel it writes; a loser tries ``N + 1``. Reading other channels' manifests first is not
enough: two publishes to two channels at once would both see the same highest counter.
Gaps are allowed (a publish that claims and then fails, or finds nothing new, leaves one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from otaseal.errors import StoreError
from otaseal.model import format_time
from otaseal.store import counter_key

if TYPE_CHECKING:
    from datetime import datetime

    from otaseal.store import Storage

#: Claims tried before giving up (each loss means another publisher took that number).
MAX_CLAIMS = 1000


def highest_claimed(store: Storage, app: str) -> int:
    """The highest counter claimed so far, 0 for a store without claims (or from before them)."""
    prefix = f"{app}/counters/"
    numbers = [
        int(name)
        for key in store.list(prefix)
        if (name := key.removeprefix(prefix)).isdigit() and not name.startswith("0")
    ]
    return max(numbers, default=0)


def claim_counter(
    store: Storage, app: str, *, above: int, channel: str, sha256: str, now: datetime
) -> int:
    """Claim the lowest free counter greater than ``above`` and every counter claimed so far.

    The claim records which channel and bundle took the number, for ``otaseal audit`` and for
    people reading the store; devices never read it.
    """
    number = max(above, highest_claimed(store, app)) + 1
    note = json.dumps(
        {"channel": channel, "bundle_sha256": sha256, "claimed": format_time(now)},
        sort_keys=True,
    ).encode()
    for _attempt in range(MAX_CLAIMS):
        if store.create(counter_key(app, number), note + b"\n"):
            return number
        number += 1
    raise StoreError(
        f"could not claim a release counter for {app} after {MAX_CLAIMS} attempts",
        expected="a free counter within a few attempts",
        fix="too many publishes at once, or a damaged counters/ folder in the store; re-run",
    )
