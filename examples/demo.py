"""The whole otaseal story on the example web build, with the real CLI and a folder store.

init → publish to beta → a device fetches and verifies → promote to production at 10 % → two
devices, one inside and one outside the cohort → raise to 100 % → the second device gets it →
revert → both go back → flip one byte of a stored bundle → a new device refuses it → a phone
running ``@capgo/capacitor-updater`` updates through ``otaseal serve`` and reports back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import requests

from otaseal.crypto import CapgoPublicKey, load_capgo_public_key
from otaseal.formats.capgo import recover_checksum, verify_artifact
from otaseal.formats.capgo_files import open_body
from otaseal.trust import rollout_bucket

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"
APP = "com.example.demo"


def step(title: str) -> None:
    """A heading in the demo's output; bold only on a terminal, so logs and pipes get plain text."""
    bold = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(f"\n\033[1m== {title}\033[0m" if bold else f"\n== {title}", flush=True)


def otaseal(*args: str, cwd: Path, expect: int = 0) -> dict[str, object]:
    """Run the real CLI with --json; show the command and its human-readable result."""
    shown = " ".join(a if len(a) < 60 else a[:57] + "…" for a in args)
    print(f"$ otaseal {shown}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "otaseal", *args, "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.stderr.strip():
        print("  " + proc.stderr.strip().replace("\n", "\n  "))
    if proc.returncode != expect:
        print(proc.stdout)
        sys.exit(f"demo: expected exit {expect}, got {proc.returncode}")
    doc: dict[str, object] = json.loads(proc.stdout)
    if "event" in doc:
        state = "unchanged" if doc["noop"] else f"v{doc['manifest_version']} ({doc['event']})"
        print(f"  {doc['channel']}: {state}")
    return doc


def device(
    work: Path,
    name: str,
    channel: str,
    *,
    expect: int = 0,
) -> dict[str, object]:
    """One device's update check."""
    result = otaseal(
        "fetch",
        "--store",
        "project/store",
        "--app",
        APP,
        "--channel",
        channel,
        "--root",
        "project/root.json",
        "--decryption-key",
        "project/keys/app-decryption.pem",
        "--state",
        f"{name}/state",
        "--install-id",
        name,
        "--out",
        f"{name}/www",
        cwd=work,
        expect=expect,
    )
    if expect == 0:
        print(
            f"  {name}: {result['status']}"
            + (f" {result['label']} ({str(result['digest'])[:12]})" if result["label"] else "")
            + (f" — {result['detail']}" if result.get("detail") else "")
            + _how_it_came(result)
        )
    return result


def _how_it_came(result: dict[str, object]) -> str:
    """', by its 599-byte patch from 1.0.0' when a delta did the install."""
    delta = result.get("delta")
    if result["status"] != "installed" or not isinstance(delta, dict) or not delta.get("used"):
        return ""
    return f", by its {delta['bytes']}-byte patch from {delta['base_label'] or 'the installed one'}"


def pick_devices(salt: str, basis_points: int) -> tuple[str, str]:
    """One install id inside the cohort and one outside (the rule is public: see SPEC)."""
    ids = [f"device-{i}" for i in range(1, 500)]
    inside = next(i for i in ids if rollout_bucket(APP, "production", salt, i) < basis_points)
    outside = next(i for i in ids if rollout_bucket(APP, "production", salt, i) >= basis_points)
    return inside, outside


class PluginPhone:
    """A phone running ``@capgo/capacitor-updater`` 8 with ``publicKey`` set, on its shipped build.

    It does what the plugin does (docs/self-hosting.md): POST the info object to ``updateUrl``;
    with a ``manifest`` in the reply (plugin 8 takes it), reuse each file its shipped build already
    has and GET only the others, each opened with the session key and checked against its signed
    hash; otherwise GET the zip ``url``, recover the AES key and the checksum, decrypt, compare and
    unzip. Then switch, and report to ``statsUrl``.
    """

    def __init__(self, base: str, public_key: CapgoPublicKey, shipped: Path) -> None:
        self.base = base
        self.public_key = public_key
        self.shipped = shipped  # the web build inside the app (public/ of the native project)
        self.version_name = "1.0"  # on its builtin bundle the plugin reports the native version
        self.info = {
            "platform": "android",
            "device_id": str(uuid.uuid4()),
            "app_id": APP,
            "custom_id": "",
            "version_build": "1.0",
            "version_code": "1",
            "version_os": "15",
            "plugin_version": "8.51.23",
            "is_emulator": False,
            "is_prod": True,
            "defaultChannel": "beta",
            "key_id": public_key.key_id,
        }

    def check(self) -> dict[str, Any]:
        """One update check (``POST updateUrl``)."""
        body = self.info | {"version_name": self.version_name}
        reply: dict[str, Any] = requests.post(f"{self.base}/updates", json=body, timeout=10).json()
        shown = {k: (v if len(str(v)) < 40 else str(v)[:37] + "…") for k, v in reply.items()}
        answer = json.dumps(shown, ensure_ascii=False)
        print(f"  POST /updates (running {self.version_name}) → {answer}")
        return reply

    def install(self, reply: dict[str, Any]) -> list[str]:
        """Download (per file or the zip), verify, switch, and report ``set``."""
        names = self._by_manifest(reply) if "manifest" in reply else self._by_zip(reply)
        old, self.version_name = self.version_name, reply["version"]
        now = int(time.time() * 1000)
        events = [
            self.info | {"action": a, "version_name": v, "old_version_name": o, "timestamp": now}
            for a, v, o in (
                ("download_complete", self.version_name, ""),
                ("set", self.version_name, old),
            )
        ]
        requests.post(f"{self.base}/stats", json=events, timeout=10).raise_for_status()
        print(f"  POST /stats: download_complete, set {self.version_name} (notifyAppReady called)")
        return names

    def _by_zip(self, reply: dict[str, Any]) -> list[str]:
        body = requests.get(reply["url"], timeout=30).content
        plain = io.BytesIO()
        verify_artifact(
            io.BytesIO(body),
            public_key=self.public_key,
            session_key=reply["session_key"],
            checksum=reply["checksum"],
            out=plain,
        )
        with zipfile.ZipFile(plain) as archive:
            names = archive.namelist()
        print(f"  GET the url: {len(body)} bytes; session key and signed checksum verify")
        return names

    def _by_manifest(self, reply: dict[str, Any]) -> list[str]:
        names, fetched, reused = [], 0, 0
        for entry in reply["manifest"]:
            name = entry["file_name"].removesuffix(".br")  # the .br says how the body travels
            want = recover_checksum(entry["file_hash"], self.public_key)
            have = self.shipped / name
            if have.is_file() and hashlib.sha256(have.read_bytes()).hexdigest() == want:
                reused += 1
            else:
                body = requests.get(entry["download_url"], timeout=30).content
                open_body(
                    entry["file_name"],
                    body,
                    file_hash=entry["file_hash"],
                    session_key=reply["session_key"],
                    public_key=self.public_key,
                )
                fetched += len(body)
            names.append(name)
        changed = len(names) - reused
        print(
            f"  manifest mode: {len(names)} files, {reused} reused from the shipped build, "
            f"{changed} downloaded ({fetched} bytes), each checked against its signed hash"
        )
        return names


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_update(work: Path, project: Path) -> None:
    """Start ``otaseal serve`` on loopback and let a plugin-style phone update through it."""
    port, stats = free_port(), f"sqlite:///{work / 'stats.sqlite'}"
    base = f"http://127.0.0.1:{port}"
    print(f"$ otaseal serve --port {port} --stats {stats}")
    server = subprocess.Popen(
        [sys.executable, "-m", "otaseal", "serve", "--port", str(port), "--stats", stats],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            sys.exit("demo: otaseal serve did not start")
        key = load_capgo_public_key((project / "keys" / "capgo.pub.pem").read_bytes())
        phone = PluginPhone(base, key, shipped=WEB)
        reply = phone.check()
        names = phone.install(reply)
        print(f"  installed {reply['version']}: {len(names)} files, index.html at the root")
        if phone.check().get("kind") != "up_to_date":
            sys.exit("demo: the phone should be up to date now")
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"$ otaseal stats --stats {stats}")
    table = subprocess.run(
        [sys.executable, "-m", "otaseal", "stats", "--stats", stats],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    print("  " + table.stdout.strip().replace("\n", "\n  "))


def main() -> None:
    """Run the story in a temporary directory."""
    work = Path(tempfile.mkdtemp(prefix="otaseal-demo-"))
    project = work / "project"
    try:
        step("1. a new project: keys, signed root.json, otaseal.yml, a folder store")
        created = otaseal(
            "init", "--app", APP, "--dir", str(project), "--formats", "sealed,capgo", cwd=work
        )
        print(f"  created {created['config']}, keys for {', '.join(created['keys'])}")  # type: ignore[arg-type]

        step("2. publish examples/web to beta")
        v1 = otaseal("publish", str(WEB), "--channel", "beta", "--label", "1.0.0", cwd=project)
        print(
            f"  {v1['files']} files sealed: {v1['bundle_size']} bytes, sha256 {v1['bundle_sha256']}"
        )
        otaseal("publish", str(WEB), "--channel", "beta", "--label", "1.0.0", cwd=project)

        step("3. a beta device fetches, verifies and installs it")
        device(work, "tester", "beta")
        for path in sorted((work / "tester" / "www").rglob("*")):
            if path.is_file():
                print(f"    {path.relative_to(work / 'tester' / 'www')}  {path.stat().st_size} B")

        step("4. a second build goes to beta, then to production for 10 % of devices")
        build2 = work / "web-1.1.0"
        shutil.copytree(WEB, build2)
        index = build2 / "index.html"
        index.write_text(index.read_text().replace("web build 1.0.0", "web build 1.1.0"))
        v2 = otaseal("publish", str(build2), "--channel", "beta", "--label", "1.1.0", cwd=project)
        for patch in v2["patches"]:  # type: ignore[attr-defined]
            print(
                f"  delta patch from {patch['base_label']}: {patch['bytes']} bytes instead of "
                f"{v2['bundle_size']} ({patch['changed']} changed file(s)); devices on "
                f"{patch['base_label']} download only that"
            )
        otaseal(
            "promote", "--from", "beta", "--to", "production", "--release", "1.0.0", cwd=project
        )
        promoted = otaseal(
            "promote", "--from", "beta", "--to", "production", "--rollout", "10", cwd=project
        )
        release = promoted["release"]
        assert isinstance(release, dict)  # noqa: S101 - demo sanity
        inside, outside = pick_devices(str(release["rollout_salt"]), 1000)

        step(f"5. two production devices: {inside} is inside the 10 % cohort, {outside} is not")
        device(work, inside, "production")
        device(work, outside, "production")

        step("6. raise production to 100 %: the second device gets 1.1.0 too")
        otaseal("rollout", "--channel", "production", "--percent", "100", cwd=project)
        device(work, outside, "production")

        step("7. revert production: both devices go back to 1.0.0")
        otaseal("revert", "--channel", "production", cwd=project)
        device(work, inside, "production")
        device(work, outside, "production")
        status = otaseal("status", cwd=project)
        for name, row in status["channels"].items():  # type: ignore[attr-defined]
            current = row["current"] or {}
            print(
                f"  {name:<11} v{row['manifest_version']}  {current.get('label')} "
                f"at {current.get('rollout')} %"
            )

        step("8. an attacker flips one byte of the stored bundle: a new device refuses it")
        sha = str(v1["bundle_sha256"])
        bundle = project / "store" / APP / "bundles" / f"{sha}.cub"
        data = bytearray(bundle.read_bytes())
        data[len(data) // 2] ^= 0x01
        bundle.write_bytes(bytes(data))
        refused = device(work, "new-device", "production", expect=4)
        print(f"  refused: {refused['error']['type']}")  # type: ignore[index]
        print(f"  nothing installed: {not (work / 'new-device' / 'www').exists()}")

        step("9. a phone with @capgo/capacitor-updater updates from beta through otaseal serve")
        serve_and_update(work, project)
        print("\ndemo finished: every step above ran the real CLI against a folder store.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
