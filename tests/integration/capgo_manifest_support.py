"""Shared by the manifest-mode tests and attacks: two real builds, a publishing project with the
Capgo format, a ``serve`` service on its folder store, and the plugin-playing device.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capgo_manifest_device import ManifestDevice
from tests.conftest import APP, NOW

from otaseal import crypto
from otaseal import operations as ops
from otaseal.config import load_config
from otaseal.project import init_project
from otaseal.serve.db import open_stats
from otaseal.serve.service import AppTrust, ServedUrls, Service

if TYPE_CHECKING:
    from serve_support import Client

BIG_JS = "".join(f"export const value{n} = {n * 7919 % 1000};\n" for n in range(900))
VENDOR = "".join(f"function vendor{n}() {{ return '{n:08x}'; }}\n" for n in range(700))
NATIVE = "1.2.0"


def build_a(folder: Path) -> Path:
    """Release A: index.html, a big app.js (Brotli), a vendor file, an empty file, a small one."""
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><script src=assets/app.js></script>A")
    (folder / "assets").mkdir()
    (folder / "assets" / "app.js").write_text(BIG_JS + "// notifyAppReady A\n")
    (folder / "assets" / "vendor.js").write_text(VENDOR)
    (folder / "assets" / "empty.css").write_bytes(b"")
    (folder / "assets" / "small.txt").write_text("same in A and B\n")
    return folder


def build_b(a: Path, folder: Path) -> Path:
    """Release B: app.js and index.html changed, one file added; vendor, empty, small unchanged."""
    shutil.copytree(a, folder)
    (folder / "index.html").write_text("<!doctype html><script src=assets/app.js></script>B")
    (folder / "assets" / "app.js").write_text(BIG_JS + "// notifyAppReady B\n")
    (folder / "assets" / "new.js").write_text("console.log('new in B');\n")
    return folder


@dataclass
class Setup:
    project: ops.Project
    public: crypto.CapgoPublicKey
    root_bytes: bytes
    a: Path
    b: Path
    tmp: Path

    def publish(self, build: Path, label: str) -> Any:
        return ops.publish(self.project, build, channel="production", label=label)

    def service(self, **kwargs: Any) -> Service:
        stats = open_stats(f"sqlite:///{self.tmp / 'stats.sqlite'}")
        stats.migrate()
        kwargs.setdefault("urls", ServedUrls())
        return Service(
            store=self.project.store,
            apps={APP: AppTrust(APP, self.root_bytes, "production")},
            stats=stats,
            clock=lambda: NOW,
            cache_ttl=0.0,
            **kwargs,
        )

    def device(self, name: str = "device") -> ManifestDevice:
        return ManifestDevice(self.public, self.tmp / name)

    def objects(self) -> set[str]:
        folder = Path(self.project.store.describe()) / APP / "capgo-files"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def make_setup(tmp_path: Path, store: str | None = None, endpoint: str | None = None) -> Setup:
    """A fresh project (sealed + capgo formats) and builds A and B under ``tmp_path``.

    ``store`` (e.g. ``s3://bucket/prefix`` with its ``endpoint``) replaces the project's folder.
    """
    directory = tmp_path / "project"
    init_project(APP, directory, now=NOW, formats=("sealed", "capgo"))
    config = load_config(directory / "otaseal.yml")
    if store is not None:
        config = replace(config, store=store, s3_endpoint=endpoint)
    opened = ops.open_store(config.store, s3_endpoint=config.s3_endpoint)
    project = ops.Project(config, opened, clock=lambda: NOW)
    public = crypto.load_capgo_public_key((directory / "keys" / "capgo.pub.pem").read_bytes())
    a = build_a(tmp_path / "web-a")
    b = build_b(a, tmp_path / "web-b")
    return Setup(project, public, config.root.read_bytes(), a, b, tmp_path)


def check(client: Client, setup: Setup, **info: Any) -> dict[str, Any]:
    info.setdefault("version_name", NATIVE)
    reply = client.check(key_id=setup.public.key_id, **info)
    assert reply.status == 200, reply.doc
    return reply.doc
