"""``--stats URL`` -> a StatsDb backend.

Accepted forms:

- ``sqlite:///abs/path.db``: an absolute path (a file URL's path: empty host, then the path);
- ``sqlite:relative/path.db``: no slashes after the colon, relative to the working directory;
- ``postgresql://user@host:port/db?...`` or ``postgres://…``: handed to libpq as it is.

Refused: a host in a SQLite URL (``sqlite://host/x``), ``:memory:`` (every worker and thread must
see the same file), query strings on SQLite, and any other scheme. The driver of a backend is
imported only when that backend is opened. The caller runs ``migrate()`` after opening. With
``create`` (the server), a missing SQLite file and its folders are made; ``otaseal stats`` opens
with ``create=False`` and gets a :class:`StatsError` for a file that is not there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from otaseal.serve.db import StatsDb

_FORMS = "sqlite:///absolute/path.db, sqlite:relative/path.db, or postgresql://user@host:5432/db"


@dataclass(frozen=True, slots=True)
class StatsUrl:
    """A parsed ``--stats`` value: which backend and where."""

    backend: str  # "sqlite" or "postgres"
    path: Path | None = None  # sqlite
    conninfo: str = ""  # postgres, as given

    def __str__(self) -> str:
        """The location without any password, for messages and logs."""
        return str(self.path) if self.path is not None else redact(self.conninfo)


def _bad(url: str, why: str) -> InputError:
    return InputError(
        f"--stats {redact(url)!r} {why}",
        expected=_FORMS,
        fix="pass one of those forms, e.g. --stats sqlite:///var/lib/otaseal/stats.db",
    )


def parse_stats_url(url: str) -> StatsUrl:
    """Parse a ``--stats`` value; a malformed one is an :class:`InputError`."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise _bad(url, "has no scheme")
    if scheme == "sqlite":
        return StatsUrl("sqlite", path=_sqlite_path(url, rest))
    if scheme in {"postgresql", "postgres"}:
        try:
            parts = urlsplit(url)
            _ = parts.port  # a non-numeric port raises here
        except ValueError as exc:
            raise _bad(url, f"is not a valid URL ({exc})") from None
        if not rest.startswith("//"):
            raise _bad(url, "is not a URL (expected // after the scheme)")
        return StatsUrl("postgres", conninfo=url)
    raise _bad(url, f"has the unknown scheme {scheme!r}")


def _sqlite_path(url: str, rest: str) -> Path:
    if "?" in rest or "#" in rest:
        raise _bad(url, "has a query or fragment, which SQLite URLs do not take")
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host:
            raise _bad(url, f"names the host {host!r}; SQLite is a local file")
        if not slash or not path:
            raise _bad(url, "has no file path")
        raw = "/" + path.lstrip("/")
    else:
        raw = rest
    raw = unquote(raw)
    if not raw or raw == ":memory:" or raw.endswith("/"):
        raise _bad(url, "does not name a file")
    return Path(raw)


def redact(url: str) -> str:
    """The URL without a password (in the user info or a ``password=`` parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = parts.username or ""
            host = netloc.rpartition("@")[2]
            netloc = f"{user}:***@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*"
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def open_stats(url: str, *, create: bool = True, clock: Callable[[], float] = time.time) -> StatsDb:
    """Open the backend ``url`` names (not migrated); ``create=False`` wants an existing SQLite."""
    target = parse_stats_url(url)
    if target.path is not None:
        from otaseal.serve.sqlite import SqliteStatsDb  # noqa: PLC0415

        return SqliteStatsDb(target.path, create=create, clock=clock)
    try:
        from otaseal.serve.postgres import PostgresStatsDb  # noqa: PLC0415
    except ImportError as exc:
        raise InputError(
            f"--stats {target} needs the postgres extra ({exc.name} is not installed)",
            fix="install it: pip install 'otaseal[postgres]'",
        ) from None
    return PostgresStatsDb(target.conninfo, clock=clock)
