"""A device in the loop: the plugin's side of the protocol against ``otaseal serve`` on loopback.

The device does what ``@capgo/capacitor-updater`` 8.51.23 does (capgo-protocol.md §3): check,
download the ``url``, recover the session key and checksum with the app's public key, decrypt and
compare (``formats.capgo.verify_artifact``), report ``set``; a bundle that never calls
``notifyAppReady()`` is reported ``update_fail`` and rolled back. Between checks the real CLI
publishes, promotes and reverts; ``otaseal serve`` runs as a child process. Once on a folder store
(serve hands the artifact out itself) and once on moto S3 (presigned URLs).
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from helpers import make_build, ok_json, otaseal
from serve_support import DEVICE, OTHER_DEVICE, Client, start_serve

from otaseal.crypto import load_capgo_public_key
from otaseal.formats.capgo import verify_artifact

if TYPE_CHECKING:
    from otaseal.crypto import CapgoPublicKey

APP = "com.example.app"
NATIVE = "1.2.0"


@dataclass
class PluginDevice:
    """One phone running the plugin with ``publicKey`` set; ``version_name`` is what it runs."""

    client: Client
    public_key: CapgoPublicKey
    device_id: str = DEVICE
    version_name: str = NATIVE  # on its builtin bundle the plugin reports the native version
    files: dict[str, bytes] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {
            "platform": "android",
            "device_id": self.device_id,
            "app_id": APP,
            "custom_id": "",
            "version_build": NATIVE,
            "version_code": "7",
            "version_os": "14",
            "version_name": self.version_name,
            "plugin_version": "8.51.23",
            "is_emulator": False,
            "is_prod": True,
            "install_source": "google_play",
            "defaultChannel": "",
            "key_id": self.public_key.key_id,
        }

    def check(self) -> dict[str, Any]:
        reply = self.client.call("POST", "/updates", self.info())
        assert reply.status == 200, reply.doc
        doc: dict[str, Any] = reply.doc
        return doc

    def report(self, *actions: tuple[str, str, str]) -> None:
        events = [
            self.info()
            | {
                "action": action,
                "version_name": version,
                "old_version_name": old,
                "timestamp": int(time.time() * 1000) + len(self.sent),
            }
            for action, version, old in actions
        ]
        self.sent.extend(events)
        assert self.client.call("POST", "/stats", events).doc == {"status": "ok"}

    def download(self, reply: dict[str, Any]) -> dict[str, bytes]:
        """GET the url, decrypt and verify as the plugin does, unzip."""
        got = self.client.session.get(reply["url"], timeout=30)
        assert got.status_code == 200
        assert "content-encoding" not in got.headers
        plain = io.BytesIO()
        verify_artifact(
            io.BytesIO(got.content),
            public_key=self.public_key,
            session_key=reply["session_key"],
            checksum=reply["checksum"],
            out=plain,
        )
        with zipfile.ZipFile(plain) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
        assert "index.html" in files  # bundleExists on both platforms
        return files

    def update(self, reply: dict[str, Any]) -> None:
        """Install the reply's bundle; the new bundle calls notifyAppReady()."""
        files = self.download(reply)
        old, self.version_name, self.files = self.version_name, reply["version"], files
        self.report(("download_complete", reply["version"], ""), ("set", reply["version"], old))

    def update_and_fail(self, reply: dict[str, Any]) -> None:
        """Install it, but it never calls notifyAppReady(): rollback to the previous bundle."""
        self.download(reply)
        failed, back = reply["version"], self.version_name
        self.report(
            ("set", failed, back),
            ("app_launch_timeout", failed, ""),
            ("update_fail", failed, ""),
            ("reset", back, failed),
            ("delete", failed, ""),
        )

    def text(self) -> str:
        html = self.files["index.html"].decode()
        return html.split("<p>", 1)[1].split("</p>", 1)[0]


def up_to_date(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "up_to_date" and "url" not in doc


class Project:
    """An otaseal project driven through the CLI, as CI would."""

    def __init__(self, home: Path, extra: list[str]) -> None:
        self.home, self.extra = home, extra
        self.builds = 0

    def run(self, *args: str) -> dict[str, Any]:
        return ok_json(otaseal(*args, "--json", *self.extra, cwd=self.home))

    def publish(self, label: str, channel: str = "production") -> dict[str, Any]:
        self.builds += 1
        build = make_build(self.home.parent / f"build-{self.builds}", label)
        doc = self.run("publish", str(build), "--channel", channel, "--label", label)
        assert doc["capgo"]["checksum"]
        return doc


def make_project(tmp_path: Path, store: str | None = None, endpoint: str | None = None) -> Project:
    home = tmp_path / "project"
    ok_json(
        otaseal("init", "--app", APP, "--dir", str(home), "--formats", "sealed,capgo", "--json")
    )
    config = home / "otaseal.yml"
    doc = yaml.safe_load(config.read_text())
    if store:
        doc["store"] = store
        doc["s3_endpoint"] = endpoint
    config.write_text(yaml.safe_dump(doc))
    return Project(home, [])


def wait_for(device: PluginDevice, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    """Stats are written off the request path: poll the check until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        doc = device.check()
        if predicate(doc) or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


def the_loop(project: Project, server: Any, tmp_path: Path) -> None:
    public = load_capgo_public_key((project.home / "keys" / "capgo.pub.pem").read_bytes())
    client = Client(server.url)
    phone = PluginDevice(client, public)
    other = PluginDevice(client, public, device_id=OTHER_DEVICE)

    # 1. first release: check, download, verify, set; the next check is up to date
    reply = phone.check()
    assert reply["version"] == "1.0.0", reply
    phone.update(reply)
    assert phone.text() == "1.0.0"
    assert up_to_date(phone.check())

    # 2. a newer release reaches production by promotion from beta
    project.publish("1.0.1", channel="beta")
    project.run("promote", "--from", "beta", "--to", "production")
    reply = phone.check()
    assert reply["version"] == "1.0.1", reply
    phone.update(reply)
    assert phone.text() == "1.0.1"
    assert up_to_date(phone.check())

    # 3. revert: the device goes back to the older release
    project.run("revert", "--channel", "production")
    reply = phone.check()
    assert reply["version"] == "1.0.0", reply
    phone.update(reply)
    assert phone.text() == "1.0.0"
    assert up_to_date(phone.check())

    # 4. a release that fails to boot on this device is not offered to it again
    project.publish("1.0.2")
    reply = phone.check()
    assert reply["version"] == "1.0.2", reply
    phone.update_and_fail(reply)
    after = wait_for(phone, lambda doc: doc.get("version") != "1.0.2")
    assert up_to_date(after), after
    for _ in range(3):
        assert up_to_date(phone.check())
    assert other.check()["version"] == "1.0.2"  # other devices still get it


def test_device_loop_on_a_folder_store(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.publish("1.0.0")
    stats = f"sqlite:///{tmp_path / 'stats.sqlite'}"
    server = start_serve(
        "--stats", stats, "--cache-ttl", "0", cwd=project.home, log=tmp_path / "serve.log"
    )
    try:
        the_loop(project, server, tmp_path)
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    assert "PRIVATE KEY" not in log
    # what the device reported, as `otaseal stats` counts it per channel and release
    doc = ok_json(otaseal("stats", "--stats", stats, "--since", "1d", "--json", cwd=project.home))
    rows = {(r["channel"], r["version"]): r for r in doc["releases"]}
    assert rows[("production", "1.0.0")]["installs"] == 2  # first install, then the revert
    assert rows[("production", "1.0.1")]["installs"] == 1
    assert rows[("production", "1.0.2")]["rollbacks"] == 1
    assert rows[("production", "1.0.0")]["checks"] >= 1  # identical checks within a minute: 1


def test_device_loop_on_moto_s3(tmp_path: Path, moto: Any, moto_bucket: str) -> None:
    project = make_project(tmp_path, f"s3://{moto_bucket}/releases", moto.url)
    project.publish("1.0.0")
    stats = f"sqlite:///{tmp_path / 'stats.sqlite'}"
    server = start_serve(
        "--stats", stats, "--cache-ttl", "0", cwd=project.home, log=tmp_path / "serve.log"
    )
    try:
        url = (
            Client(server.url)
            .call(
                "POST",
                "/updates",
                PluginDevice(
                    Client(server.url),
                    load_capgo_public_key((project.home / "keys" / "capgo.pub.pem").read_bytes()),
                ).info(),
            )
            .doc["url"]
        )
        assert url.startswith(f"{moto.url}/{moto_bucket}/releases/{APP}/bundles/")
        assert "Signature=" in url or "X-Amz-Signature=" in url  # presigned, no public URL
        the_loop(project, server, tmp_path)
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
