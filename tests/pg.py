"""A real PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir, on 127.0.0.1.

Started once per session, stopped by data directory (``pg_ctl -m fast stop``), never by name.
``initdb`` refuses to run as root, so as root both run through ``runuser -u <user> --`` (the
``postgres`` account if there is one, else ``nobody``) in a directory that user owns. Each test
gets its own database, copied from a template that was migrated once.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from servers import free_port

PACKAGE = "postgresql"


def find_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else None


def _run_as() -> list[str]:
    """The argv prefix that drops root (empty when not root)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        probe = subprocess.run(
            ["runuser", "-u", user, "--", "true"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return ["runuser", "-u", user, "--"]
    msg = "running as root and neither `postgres` nor `nobody` can run a command via runuser"
    raise RuntimeError(msg)


@dataclass
class Postgres:
    """A running server; ``url(db)`` is a libpq URL for one of its databases."""

    bin: Path
    root: Path
    port: int
    prefix: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, name: str, template: str | None = None) -> str:
        extra = f" TEMPLATE {template}" if template else ""
        self.sql(f"CREATE DATABASE {name}{extra}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
            cwd=self.root,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb and start a throwaway server; the caller stops it."""
    bin_dir = find_bin()
    if bin_dir is None:
        msg = f"no pg_ctl on PATH or in /usr/lib/postgresql/*/bin (Debian package {PACKAGE})"
        raise FileNotFoundError(msg)
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="otaseal-pg-"))
    if prefix:
        user = prefix[2]
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    server = Postgres(bin_dir, root, port, prefix)

    def run(*argv: str) -> None:
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, cwd=root
        )
        if done.returncode != 0:
            server.stop()
            msg = f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
            raise RuntimeError(msg)

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(server.data),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(server.data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        options,
        "start",
    )
    return server
