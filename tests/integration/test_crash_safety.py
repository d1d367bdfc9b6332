"""A publish killed with SIGKILL at any step of the write order breaks nothing.

The publish runs in its own process on the real store, wrapped in ``helpers.KillSwitch``: the
process kills itself right before or right after one write (bundle → index → versioned manifest →
pointer). Afterwards devices still get the last complete release, no object in the store is
partial, and re-running the same publish makes the new release current.
"""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import (
    APP,
    assert_objects_complete,
    installed_text,
    make_build,
    start_worker,
    worker_spec,
)

from otaseal.client import check_for_update
from otaseal.config import load_config
from otaseal.crypto import load_decryption_key
from otaseal.operations import Project, history, now_utc, open_store, publish, read_head, status
from otaseal.store import manifest_key, pointer_key

if TYPE_CHECKING:
    from pathlib import Path

    from otaseal.client import FetchResult
    from servers import Server

# (when, write kind) → which release the pointer (what devices read) has right after the crash.
STEPS = [
    pytest.param("before", "bundle", "1.0.0", id="before-bundle"),
    pytest.param("after", "bundle", "1.0.0", id="after-bundle"),
    pytest.param("after", "index", "1.0.0", id="after-index"),
    pytest.param("after", "manifest", "1.0.0", id="after-versioned-manifest"),
    pytest.param("before", "pointer", "1.0.0", id="before-pointer-cas"),
    pytest.param("after", "pointer", "1.1.0", id="after-pointer-cas"),
]


@pytest.fixture(params=["folder", "s3"])
def store_url(request: pytest.FixtureRequest, project_dir: Path) -> tuple[str, str | None]:
    """The store under test: the project's folder, or a fresh bucket on the moto server."""
    if request.param == "folder":
        return str(project_dir / "store"), None
    moto: Server = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("moto_bucket")
    return f"s3://{bucket}/releases", moto.url


class Device:
    """A device on the beta channel reading the store directly (the store is its Fetcher)."""

    def __init__(self, project: Project, project_dir: Path, home: Path, install_id: str) -> None:
        self.project, self.home, self.install_id = project, home, install_id
        self.key = load_decryption_key((project_dir / "keys" / "app-decryption.pem").read_bytes())
        self.root = (project_dir / "root.json").read_bytes()

    def check(self) -> FetchResult:
        return check_for_update(
            self.project.store,
            app=APP,
            channel="beta",
            state_dir=self.home / "state",
            decryption_key=self.key,
            install_id=self.install_id,
            out_dir=self.home / "www",
            now=now_utc(),
            initial_root=self.root,
        )

    def running(self) -> str:
        return installed_text(self.home / "www")


def _crash_publish(
    tmp_path: Path,
    project_dir: Path,
    store_url: tuple[str, str | None],
    build: Path,
    *,
    when: str,
    kind: str,
) -> subprocess.CompletedProcess[str]:
    spec = worker_spec(
        tmp_path,
        f"crash-{when}-{kind}",
        config=str(project_dir / "otaseal.yml"),
        store=store_url[0],
        s3_endpoint=store_url[1],
        kill={"when": when, "kind": kind},
        op="publish",
        args={"build_dir": str(build), "channel": "beta", "label": "1.1.0"},
    )
    proc = start_worker(spec)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("when", "kind", "served_after_crash"), STEPS)
def test_publish_killed_mid_write_leaves_the_last_complete_release(  # noqa: PLR0917
    tmp_path: Path,
    project_dir: Path,
    store_url: tuple[str, str | None],
    when: str,
    kind: str,
    served_after_crash: str,
) -> None:
    url, endpoint = store_url
    project = Project(
        load_config(project_dir / "otaseal.yml"), open_store(url, s3_endpoint=endpoint)
    )
    publish(project, make_build(tmp_path / "v1", "1.0.0"), channel="beta", label="1.0.0")
    old_device = Device(project, project_dir, tmp_path / "old-device", "device-old")
    assert old_device.check().status == "installed"
    pointer_before, _ = project.store.read(pointer_key(APP, "beta"))
    build = make_build(tmp_path / "v2", "1.1.0")

    crashed = _crash_publish(tmp_path, project_dir, store_url, build, when=when, kind=kind)

    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert f"SIGKILL {when} {kind}" in crashed.stderr
    assert crashed.stdout == ""
    assert_objects_complete(project.store, project)
    pointer_now, _ = project.store.read(pointer_key(APP, "beta"))
    if served_after_crash == "1.0.0":
        assert pointer_now == pointer_before, "the pointer still names the previous release"
    # The device that had the previous release keeps it; a new device installs what is served.
    old = old_device.check()
    assert old.status == ("up_to_date" if served_after_crash == "1.0.0" else "installed")
    assert old_device.running() == served_after_crash
    new_device = Device(project, project_dir, tmp_path / "new-device", "device-new")
    fresh = new_device.check()
    assert fresh.status == "installed"
    assert fresh.release is not None
    assert fresh.release.label == served_after_crash
    assert new_device.running() == served_after_crash

    # Re-running the same publish succeeds and makes 1.1.0 current, with one manifest for it.
    rerun = publish(project, build, channel="beta", label="1.1.0")
    assert rerun.release.label == "1.1.0"
    # Once the versioned manifest exists, the re-run finds its build there and only heals the
    # pointer; before that, it publishes version 2 itself.
    assert rerun.noop == (kind in {"manifest", "pointer"})
    manifests = history(project, "beta")
    assert [m.version for m in manifests] == [1, 2]
    assert [m.event for m in manifests] == ["publish 1.0.0", "publish 1.1.0"]
    pointer_after, _ = project.store.read(pointer_key(APP, "beta"))
    newest, _ = project.store.read(manifest_key(APP, "beta", 2))
    assert pointer_after == newest, "the re-run moved the pointer to the new release"
    head = read_head(project, "beta")
    assert head.pointer_version == 2
    assert [
        s.manifest.current.label
        for s in status(project)
        if s.channel == "beta" and s.manifest and s.manifest.current
    ] == ["1.1.0"]
    assert_objects_complete(project.store, project)
    for device in (old_device, new_device):
        result = device.check()
        assert device.running() == "1.1.0", result


def test_status_after_a_crash_before_the_pointer_shows_what_devices_get(
    tmp_path: Path, project_dir: Path
) -> None:
    store_url = (str(project_dir / "store"), None)
    project = Project(load_config(project_dir / "otaseal.yml"), open_store(store_url[0]))
    publish(project, make_build(tmp_path / "v1", "1.0.0"), channel="beta", label="1.0.0")
    build = make_build(tmp_path / "v2", "1.1.0")
    crashed = _crash_publish(tmp_path, project_dir, store_url, build, when="before", kind="pointer")
    assert crashed.returncode == -signal.SIGKILL

    device = Device(project, project_dir, tmp_path / "device", "device-1")
    served = device.check().release
    assert served is not None
    assert served.label == "1.0.0"
    beta = next(s for s in status(project) if s.channel == "beta")
    assert beta.manifest is not None
    assert beta.manifest.current is not None
    assert beta.manifest.current.label == served.label
