"""Concurrent publishers in separate processes lose no release and publish none twice.

Each worker is its own process with its own ``Project`` and store client; all of them wait at a
start gate and then hit the same channel at once, on a folder and on S3 (moto over loopback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from helpers import (
    finish,
    make_build,
    open_gate,
    start_worker,
    worker_spec,
)

from otaseal.config import load_config
from otaseal.operations import Project, history, open_store, publish
from otaseal.store import manifest_key, pointer_key

if TYPE_CHECKING:
    from pathlib import Path

    from servers import Server

PUBLISHERS = 20


@pytest.fixture(params=["folder", "s3"])
def store_url(request: pytest.FixtureRequest, project_dir: Path) -> tuple[str, str | None]:
    """The store under test: the project's folder, or a fresh bucket on the moto server."""
    if request.param == "folder":
        return str(project_dir / "store"), None
    moto: Server = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("moto_bucket")
    return f"s3://{bucket}/releases", moto.url


def _project(project_dir: Path, store_url: tuple[str, str | None]) -> Project:
    url, endpoint = store_url
    return Project(load_config(project_dir / "otaseal.yml"), open_store(url, s3_endpoint=endpoint))


def test_twenty_parallel_publishes_each_land_exactly_once(
    tmp_path: Path, project_dir: Path, store_url: tuple[str, str | None]
) -> None:
    url, endpoint = store_url
    gate = tmp_path / "gate"
    gate.mkdir()
    labels = [f"1.0.{i}" for i in range(PUBLISHERS)]
    procs = []
    for label in labels:
        build = make_build(tmp_path / "builds" / label, f"build {label}")
        spec = worker_spec(
            tmp_path,
            label,
            config=str(project_dir / "otaseal.yml"),
            store=url,
            s3_endpoint=endpoint,
            gate=str(gate),
            op="publish",
            args={"build_dir": str(build), "channel": "beta", "label": label},
        )
        procs.append(start_worker(spec))
    open_gate(gate, PUBLISHERS, procs)
    results = [finish(p) for p in procs]

    # Every publisher was told it published, each at its own version.
    assert not any(r["noop"] for r in results)
    assert sorted(r["version"] for r in results) == list(range(1, PUBLISHERS + 1))

    project = _project(project_dir, store_url)
    manifests = history(project, "beta")
    assert [m.version for m in manifests] == list(range(1, PUBLISHERS + 1))
    events = [m.event for m in manifests]
    assert sorted(events) == sorted(f"publish {label}" for label in labels)
    for manifest in manifests:
        current = manifest.current
        assert current is not None
        assert manifest.event == f"publish {current.label}"
    by_label = {r["label"]: r for r in results}
    for manifest in manifests:
        assert manifest.current is not None
        assert by_label[manifest.current.label]["version"] == manifest.version
        assert by_label[manifest.current.label]["sha256"] == manifest.current.sha256
    counters = [m.current.counter for m in manifests if m.current]
    assert len(set(counters)) == PUBLISHERS
    assert counters == sorted(counters), "release counters follow the version order"

    # The pointer is exactly the highest versioned manifest.
    pointer, _ = project.store.read(pointer_key(project.app, "beta"))
    newest, _ = project.store.read(manifest_key(project.app, "beta", PUBLISHERS))
    assert pointer == newest
    # Each release's bundle is in the store.
    for result in results:
        assert project.store.exists(f"{project.app}/bundles/{result['sha256']}.cub")


@pytest.mark.parametrize("ref", ["1.0.0", None], ids=["named-release", "source-current"])
def test_promote_racing_a_publish_both_succeed(
    tmp_path: Path, project_dir: Path, store_url: tuple[str, str | None], ref: str | None
) -> None:
    url, endpoint = store_url
    project = _project(project_dir, store_url)
    first = publish(project, make_build(tmp_path / "b1", "one"), channel="beta", label="1.0.0")
    gate = tmp_path / "gate"
    gate.mkdir()
    common = {
        "config": str(project_dir / "otaseal.yml"),
        "store": url,
        "s3_endpoint": endpoint,
        "gate": str(gate),
    }
    promoter = start_worker(
        worker_spec(
            tmp_path,
            "promote",
            op="promote",
            args={"source": "beta", "target": "production", "ref": ref, "rollout": 100.0},
            **common,
        )
    )
    publisher = start_worker(
        worker_spec(
            tmp_path,
            "publish",
            op="publish",
            args={
                "build_dir": str(make_build(tmp_path / "b2", "two")),
                "channel": "beta",
                "label": "1.1.0",
            },
            **common,
        )
    )
    open_gate(gate, 2, [promoter, publisher])
    promoted, published = finish(promoter), finish(publisher)

    assert published["version"] == 2
    assert not published["noop"]
    assert promoted["version"] == 1
    assert promoted["event"] == f"promote {promoted['label']} from beta"
    if ref is not None:
        assert promoted["sha256"] == first.release.sha256

    # Production serves the promoted release, with the identity it has on beta.
    production = history(project, "production")
    assert [m.version for m in production] == [1]
    served = production[0].current
    assert served is not None
    assert served.sha256 == promoted["sha256"]
    beta = history(project, "beta")
    assert [m.event for m in beta] == ["publish 1.0.0", "publish 1.1.0"]
    on_beta = {m.current.sha256: m.current for m in beta if m.current}
    origin = on_beta[served.sha256]
    assert (served.label, served.counter, served.plaintext_sha256) == (
        origin.label,
        origin.counter,
        origin.plaintext_sha256,
    )
    # Beta's pointer has the new release.
    pointer, _ = project.store.read(pointer_key(project.app, "beta"))
    newest, _ = project.store.read(manifest_key(project.app, "beta", 2))
    assert pointer == newest


@pytest.fixture(params=["folder", "s3", "s3-lock-mode"])
def any_store(request: pytest.FixtureRequest, project_dir: Path) -> tuple[str, str | None, bool]:
    """Folder, moto S3 with conditional writes, and moto S3 through the lock object."""
    if request.param == "folder":
        return str(project_dir / "store"), None, False
    moto: Server = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("moto_bucket")
    return f"s3://{bucket}/releases", moto.url, request.param == "s3-lock-mode"


def test_parallel_publishes_to_two_channels_never_share_a_release_counter(
    tmp_path: Path, project_dir: Path, any_store: tuple[str, str | None, bool]
) -> None:
    """Publishes to beta and production at once: counters are unique per app (SPEC §7.2).

    Without a store-level claim each publisher reads the other channel's counters before
    either has written, and both pick the same one.
    """
    url, endpoint, lock_mode = any_store
    per_channel = 3 if lock_mode else 5  # the lock serialises writers: keep the run short
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = []
    for channel in ("beta", "production"):
        for i in range(per_channel):
            label = f"{channel}-{i}"
            spec = worker_spec(
                tmp_path,
                label,
                config=str(project_dir / "otaseal.yml"),
                store=url,
                s3_endpoint=endpoint,
                s3_lock_mode=lock_mode,
                gate=str(gate),
                op="publish",
                args={
                    "build_dir": str(make_build(tmp_path / "builds" / label, label)),
                    "channel": channel,
                    "label": label,
                },
            )
            procs.append(start_worker(spec))
    open_gate(gate, len(procs), procs)
    results = [finish(p) for p in procs]

    counters = [r["counter"] for r in results]
    assert len(set(counters)) == 2 * per_channel, f"a counter was used twice: {sorted(counters)}"
    project = Project(
        load_config(project_dir / "otaseal.yml"),
        open_store(url, s3_endpoint=endpoint, s3_lock_mode=lock_mode),
    )
    for channel in ("beta", "production"):
        manifests = history(project, channel)
        assert [m.version for m in manifests] == list(range(1, per_channel + 1))
        on_channel = [m.current.counter for m in manifests if m.current]
        assert on_channel == sorted(on_channel), "counters increase with the channel's versions"
    # Each counter in a manifest was claimed in the store first.
    claimed = {int(k.rsplit("/", 1)[-1]) for k in project.store.list(f"{project.app}/counters/")}
    assert set(counters) <= claimed
