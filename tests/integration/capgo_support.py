"""Capgo's CLI for tests: installed once from npm, run offline in a throwaway Capacitor project.

The pinned CLI (``tests/integration/capgo_cli``: package.json and its lock) is installed into
``tests/.cache/capgo-cli`` (gitignored) and kept while the lock file is unchanged. A project
folder is laid out as the interop reference's recipe says (§8): ``capacitor.config.json``,
``package.json``, and a stub ``@capgo/capacitor-updater`` 8.51.23 so the CLI emits V3
checksums. Each run sets ``CAPGO_DISABLE_TELEMETRY=true`` and goes under ``unshare -n`` when
this user may drop the network, so nothing leaves the machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PINNED = HERE / "capgo_cli"
CACHE = HERE.parent / ".cache" / "capgo-cli"
CLI_VERSION = "8.68.1"
UPDATER_VERSION = "8.51.23"  # the plugin version the CLI must detect to emit V3 checksums
MISSING = (
    "node and npm are not installed, so Capgo's CLI cannot run (Debian: nodejs npm); "
    "the Capgo interop tests are skipped"
)
needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason=MISSING
)


@functools.cache
def offline_prefix() -> tuple[str, ...]:
    """``unshare -n`` when this user may drop the network, else nothing."""
    if shutil.which("unshare") is None:
        return ()
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ("unshare", "-n") if probe.returncode == 0 else ()


def install_cli() -> Path:
    """Install the pinned CLI once (kept across runs while the lock file is unchanged)."""
    lock = (PINNED / "package-lock.json").read_bytes()
    marker = CACHE / ".installed"
    stamp = hashlib.sha256(lock).hexdigest().encode()
    if not (marker.is_file() and marker.read_bytes() == stamp):
        CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINNED / name, CACHE / name)
        # `npm ci` refuses this lock (darwin-only optional helpers); `npm install` with the lock
        # installs the locked, integrity-checked versions all the same.
        subprocess.run(
            ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=600,
        )
        meta = json.loads((CACHE / "node_modules" / "@capgo" / "cli" / "package.json").read_text())
        assert meta["version"] == CLI_VERSION
        marker.write_bytes(stamp)
    return CACHE / "node_modules" / ".bin" / "capgo"


@dataclass(frozen=True)
class Capgo:
    """Capgo's CLI and a Capacitor project folder to run it in."""

    cli: Path
    folder: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """One CLI run in the project folder, offline, stdin closed."""
        env = {**os.environ, "CAPGO_DISABLE_TELEMETRY": "true", "CI": "true"}
        return subprocess.run(
            [*offline_prefix(), str(self.cli), *args],
            cwd=self.folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    @property
    def private_key(self) -> Path:
        return self.folder / ".capgo_key_v2"

    @property
    def public_key(self) -> Path:
        return self.folder / ".capgo_key_v2.pub"


def make_project(folder: Path, app: str, *, capacitor: dict[str, object] | None = None) -> Capgo:
    """A Capacitor project in ``folder`` for the pinned CLI (installed on first use)."""
    cli = install_cli()
    updater = folder / "node_modules" / "@capgo" / "capacitor-updater"
    updater.mkdir(parents=True)
    (updater / "package.json").write_text(
        json.dumps({"name": "@capgo/capacitor-updater", "version": UPDATER_VERSION})
    )
    (folder / "package.json").write_text(
        json.dumps(
            {
                "name": "interop",
                "version": "1.0.0",
                "dependencies": {"@capgo/capacitor-updater": UPDATER_VERSION},
            }
        )
    )
    config = {"appId": app, "appName": "interop", "webDir": "dist", **(capacitor or {})}
    (folder / "capacitor.config.json").write_text(json.dumps(config))
    return Capgo(cli, folder)


def json_of(stdout: str) -> dict[str, str]:
    """The one JSON object a ``--json`` command prints (possibly over several lines)."""
    doc, _ = json.JSONDecoder().raw_decode(stdout[stdout.index("{") :])
    assert isinstance(doc, dict)
    return doc
