"""``capgo probe`` (``@capgo/cli`` 8.68.1) against ``otaseal serve`` reports the published update.

The probe makes one real ``POST`` to ``plugins.CapacitorUpdater.updateUrl`` and exits 0 whatever
the answer, so the test reads its output ("Update available: <label>"). When this user may drop
the network, the server and the probe run together in a fresh network namespace with only
loopback up (``unshare -n``), so the CLI cannot reach anything else; otherwise both use the
host's 127.0.0.1. The CLI comes from ``capgo_support`` (installed once from npm).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import make_build, ok_json, otaseal
from tests.integration.capgo_support import make_project, needs_node, offline_prefix

from servers import free_port

APP = "com.example.probe"
pytestmark = needs_node

# Started as ``python driver.py SPEC.json`` (inside ``unshare -n`` when allowed): bring loopback
# up if in a new namespace, start serve, wait for /healthz, run the probe, stop serve by PID.
DRIVER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time, urllib.request
    spec = json.load(open(sys.argv[1]))
    if spec["namespace"]:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    log = open(spec["log"], "wb")
    serve = subprocess.Popen(spec["serve"], cwd=spec["project"], stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(spec["health"], timeout=2).read()
                break
            except OSError:
                if serve.poll() is not None or time.monotonic() > deadline:
                    sys.exit("serve did not start")
                time.sleep(0.2)
        probe = subprocess.run(spec["probe"], cwd=spec["folder"], env=spec["env"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=120)
        print(json.dumps({"code": probe.returncode, "out": probe.stdout, "err": probe.stderr}))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=20)
    """
)


def test_capgo_probe_reports_the_update_otaseal_serve_offers(tmp_path: Path) -> None:
    project = tmp_path / "project"
    ok_json(
        otaseal("init", "--app", APP, "--dir", str(project), "--formats", "sealed,capgo", "--json")
    )
    build = make_build(tmp_path / "build", "1.0.5")
    ok_json(
        otaseal(
            "publish", str(build), "--channel", "beta", "--label", "1.0.5", "--json", cwd=project
        )
    )

    namespace = bool(offline_prefix())
    port = 8765 if namespace else free_port()
    capgo = make_project(
        tmp_path / "capacitor",
        APP,
        capacitor={
            "plugins": {
                "CapacitorUpdater": {
                    "updateUrl": f"http://127.0.0.1:{port}/updates",
                    "defaultChannel": "beta",
                }
            }
        },
    )
    gradle = capgo.folder / "android" / "app" / "build.gradle"
    gradle.parent.mkdir(parents=True)
    gradle.write_text(
        'android {\n defaultConfig {\n  versionCode 7\n  versionName "1.2.0"\n }\n}\n'
    )

    spec = {
        "namespace": namespace,
        "project": str(project),
        "folder": str(capgo.folder),
        "log": str(tmp_path / "serve.log"),
        "health": f"http://127.0.0.1:{port}/healthz",
        "serve": [
            sys.executable,
            "-m",
            "otaseal",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stats",
            f"sqlite:///{tmp_path / 'stats.sqlite'}",
        ],
        "probe": [str(capgo.cli), "probe", "--platform", "android"],
        "env": {**os.environ, "CAPGO_DISABLE_TELEMETRY": "true", "CI": "true"},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run(
        [
            *offline_prefix(),
            sys.executable,
            str(tmp_path / "driver.py"),
            str(tmp_path / "spec.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr + (tmp_path / "serve.log").read_text()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, result
    assert "Update available: 1.0.5" in result["out"], result
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
