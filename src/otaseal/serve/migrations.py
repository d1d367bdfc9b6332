"""The numbered SQL migrations shipped in ``schema/<dialect>/NNNN_name.sql``, and the version rule.

Both backends number their files alike, so one number means one schema on SQLite and
PostgreSQL. Each backend records applied numbers in its ``schema_version`` table and applies the
missing ones in order, one transaction each.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

from otaseal.serve.db import StatsError

_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

SCHEMA_VERSION_TABLE = "schema_version"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step."""

    number: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """The dialect's migrations in order (``sqlite`` or ``postgres``)."""
    folder = resources.files("otaseal.serve").joinpath("schema", dialect)
    found = [
        Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (m := _NAME.fullmatch(entry.name))
    ]
    found.sort(key=lambda m: m.number)
    if [m.number for m in found] != list(range(1, len(found) + 1)):
        raise StatsError(
            f"the {dialect} schema files are not numbered 0001, 0002, … without gaps",
            fix="reinstall otaseal",
        )
    return found


def check_not_newer(current: int, latest: int, where: str) -> None:
    """Refuse a database migrated by a newer otaseal: its tables may mean something else."""
    if current > latest:
        raise StatsError(
            f"the stats database {where} is at schema version {current}, newer than this "
            f"otaseal knows (version {latest})",
            expected=f"schema version {latest} or older",
            fix="run the otaseal version that migrated it (or newer), or point --stats at "
            "another database",
        )


def sqlite_statements(sql: str) -> list[str]:
    """Split a script into complete statements (the sqlite3 module runs one at a time)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        statements.append(buffer.strip())
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
