"""A project on a simulated clock and devices that fetch with ``otaseal fetch``, for key-lifecycle
tests (tests/integration/test_key_lifecycle.py, tests/attacks/test_root_lifecycle_attacks.py).

The project is a real ``otaseal init`` folder with a folder store; the clock is a value the test
moves. Devices run the real CLI in this process (``otaseal.cli.main``) with ``--now`` set to the
project's clock, each with its own state folder, so "an old device" keeps its state from step to
step and ships the app's root v1.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otaseal import cli
from otaseal import operations as ops
from otaseal.config import load_config
from otaseal.model import format_time
from otaseal.project import init_project

if TYPE_CHECKING:
    import pytest

APP = "com.example.app"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXAMPLE_WEB = Path(__file__).resolve().parents[1] / "examples" / "web"


@dataclass
class Clock:
    """The project's clock: the test moves it."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> datetime:
        self.now += timedelta(days=days)
        return self.now


@dataclass
class Lifecycle:
    """One project over the years, and the devices that follow its beta channel."""

    dir: Path
    clock: Clock
    shipped_root: Path
    labels: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, tmp_path: Path) -> Lifecycle:
        clock = Clock()
        directory = tmp_path / "project"
        init_project(APP, directory, now=clock.now)
        shipped = tmp_path / "shipped-root.json"
        shutil.copyfile(directory / "root.json", shipped)
        return cls(directory, clock, shipped)

    @property
    def store(self) -> Path:
        return self.dir / "store"

    def project(self) -> ops.Project:
        """A fresh view of otaseal.yml and root.json (as a new CI run would load them)."""
        config = load_config(self.dir / "otaseal.yml")
        return ops.Project(config, ops.open_store(config.store), clock=self.clock)

    def publish(self, label: str, channel: str = "beta") -> None:
        build = self.dir.parent / f"web-{label}"
        shutil.copytree(EXAMPLE_WEB, build)
        (build / "index.html").write_text(f"<!doctype html><title>{label}</title>")
        ops.publish(self.project(), build, channel=channel, label=label)
        self.labels.append(label)

    def set_key(self, role: str, ref: str) -> None:
        """Point keys.ROLE in otaseal.yml at ``ref`` (what the team does after a rotation)."""
        path = self.dir / "otaseal.yml"
        lines = path.read_text().splitlines()
        out = [f"  {role}: {ref}" if line.startswith(f"  {role}: ") else line for line in lines]
        path.write_text("\n".join(out) + "\n")

    def store_files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.store)): p.read_bytes()
            for p in sorted(self.store.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")
        }

    def fetch(
        self,
        capsys: pytest.CaptureFixture[str],
        device: str,
        *,
        root: Path | None = None,
        channel: str = "beta",
    ) -> tuple[int, dict[str, Any]]:
        """``otaseal fetch --json`` as device ``device`` (state kept in its own folder)."""
        state = self.dir.parent / "devices" / device
        state.mkdir(parents=True, exist_ok=True)
        out = state.parent / f"{device}-www"
        capsys.readouterr()
        code = cli.main(
            [
                "fetch",
                "--json",
                "--store",
                str(self.store),
                "--app",
                APP,
                "--channel",
                channel,
                "--root",
                str(root or self.shipped_root),
                "--decryption-key",
                str(self.dir / "keys" / "app-decryption.pem"),
                "--state",
                str(state / "state"),
                "--install-id",
                device,
                "--out",
                str(out),
                "--now",
                format_time(self.clock.now),
            ]
        )
        doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        return code, doc

    def installed_label(self, device: str) -> str | None:
        """The release label a device's last install put on disk (from its index.html)."""
        page = self.dir.parent / "devices" / f"{device}-www" / "index.html"
        if not page.exists():
            return None
        return page.read_text().split("<title>", 1)[1].split("</title>", 1)[0]
