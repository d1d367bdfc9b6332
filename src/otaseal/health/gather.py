"""I/O around :mod:`otaseal.health.status`: read the manifests and the stats database once.

The CLI (``status --stats``) and the Action (``status`` with ``stats:``) both call
:func:`read_status_health`; the decision of what to show stays pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otaseal.health.stats import DEFAULT_STALE_AFTER
from otaseal.health.status import StatusHealth, status_health

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from otaseal.operations import Project
    from otaseal.serve.db import StatsDb


def gather(
    project: Project,
    db: StatsDb,
    *,
    stats: str,
    since: datetime,
    until: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> StatusHealth:
    """Every channel's manifest and the app's stats in ``[since, until)``."""
    from otaseal.operations import status  # noqa: PLC0415 - operations pulls in the formats

    rows = status(project)
    app = project.app
    return status_health(
        app=app,
        stats=stats,
        channels=[(r.channel, r.manifest, r.error) for r in rows],
        counts=db.counts(since=since, until=until, app=app),
        newest=db.newest(app, until=until),
        hourly={
            r.channel: db.adoption(app, r.channel, since=since, until=until)
            for r in rows
            if r.error is None
        },
        since=since,
        until=until,
        stale_after=stale_after,
    )


def read_status_health(
    project: Project,
    url: str,
    *,
    since: datetime,
    until: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> StatusHealth:
    """Open the stats database ``url`` names (it must exist), gather, close."""
    from otaseal.serve.db import open_stats  # noqa: PLC0415
    from otaseal.serve.stats_url import parse_stats_url  # noqa: PLC0415

    where = str(parse_stats_url(url))
    db = open_stats(url, create=False)
    try:
        db.migrate()
        return gather(project, db, stats=where, since=since, until=until, stale_after=stale_after)
    finally:
        db.close()
