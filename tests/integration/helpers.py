"""Helpers for the release-management integration tests, and the worker they start.

Imported, it offers: running the ``otaseal`` CLI, tiny web builds, store snapshots (folder and
bucket), a public-read bucket policy, a device install check. Run as a script
(``python helpers.py SPEC.json``) it is the worker the concurrency and crash tests start in their
own processes: it opens the project's real store, optionally wraps it in :class:`KillSwitch` (the
process SIGKILLs itself right before or right after one kind of write), optionally waits at a
start gate so every worker hits the store at once, runs one operation and prints one JSON line.
No test hook lives in ``src/``: the wrapper sits between the real operation and the real store.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from otaseal.store import Storage

HERE = Path(__file__).resolve()
PYTHON = sys.executable
APP = "com.example.app"
#: Kinds of store write, in the order a publish makes them.
WRITE_KINDS = ("root", "bundle", "index", "manifest", "pointer")


# --- the CLI ---------------------------------------------------------------------------------
def otaseal(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m otaseal ARGS`` as a user would; never raises on a non-zero exit."""
    return subprocess.run(
        [PYTHON, "-m", "otaseal", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
        env=env,
    )


def one_json(stdout: str) -> dict[str, Any]:
    """The single JSON object a ``--json`` command prints on stdout."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one JSON line on stdout, got {stdout!r}"
    doc = json.loads(lines[0])
    assert isinstance(doc, dict), doc
    return doc


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON result of a command that must succeed."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}\n{result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    return one_json(result.stdout)


def error_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``error`` object of a command that must fail cleanly (no traceback)."""
    assert result.returncode != 0, f"expected a failure, got success: {result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    doc = one_json(result.stdout)
    assert set(doc) == {"error"}, doc
    error = doc["error"]
    assert isinstance(error, dict), doc
    assert error.get("type"), doc
    assert isinstance(error.get("message"), str), doc
    assert error["message"], doc
    return error


# --- builds and devices ----------------------------------------------------------------------
def make_build(path: Path, text: str) -> Path:
    """A tiny web build whose index.html says ``text``."""
    (path / "assets").mkdir(parents=True)
    (path / "index.html").write_text(f"<!doctype html><title>{text}</title><p>{text}</p>\n")
    (path / "assets" / "app.js").write_text(f"console.log({text!r});\n")
    return path


def installed_text(out_dir: Path) -> str:
    """What the installed build's index.html says (see :func:`make_build`)."""
    html = (out_dir / "index.html").read_text()
    return str(html.split("<p>", 1)[1].split("</p>", 1)[0])


# --- store snapshots -------------------------------------------------------------------------
def folder_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (directories as None, files with their bytes)."""
    if not root.exists():
        return {}
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if not path.is_file():
            out[name] = None
            continue
        try:
            out[name] = path.read_bytes()
        except PermissionError:  # a file a test made unreadable: compare its mode instead
            out[name] = f"mode {path.stat().st_mode:o}".encode()
    return out


def bucket_snapshot(client: Any, bucket: str) -> dict[str, bytes]:
    """Every object in ``bucket`` with its bytes."""
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            out[item["Key"]] = body.read()
    return out


def allow_public_read(client: Any, bucket: str) -> None:
    """Anonymous GETs, as a bucket website or CDN origin has; listing stays private."""
    client.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject"],
                        "Resource": [f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            }
        ),
    )


def assert_objects_complete(store: Storage, project: Any, app: str = APP) -> None:
    """Every stored bundle hashes to its name and every channel object verifies: nothing partial."""
    from otaseal import trust

    root, _ = project.root()
    for key in store.list(f"{app}/"):
        data, _ = store.read(key)
        parts = key.split("/")
        if parts[1] == "bundles":
            assert parts[2] == hashlib.sha256(data).hexdigest() + ".cub", f"partial {key}"
        elif parts[1] == "channels":
            manifest = trust.verify_channel_signature(root, data, channel=parts[2])
            if parts[3] != "manifest.json":
                assert parts[3] == f"{manifest.version}.json", key


# --- the worker ------------------------------------------------------------------------------
def key_kind(key: str) -> str:
    """Which step of the write order a store key belongs to."""
    parts = key.split("/")
    if parts[1] == "root":
        return "root"
    if parts[1] == "bundles":
        return "bundle"
    if parts[1] == "indexes":
        return "index"
    if parts[1] == "channels":
        return "pointer" if parts[-1] == "manifest.json" else "manifest"
    return parts[1]


def _die(when: str, kind: str, key: str) -> None:
    sys.stderr.write(f"SIGKILL {when} {kind} {key}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class KillSwitch:
    """A ``Storage`` that SIGKILLs its own process right ``when`` ("before"/"after") a write of
    ``kind`` (one of :data:`WRITE_KINDS`); every call goes to the real store."""

    inner: Storage
    when: str
    kind: str

    def _write(self, key: str, call: Callable[[], Any]) -> Any:
        kind = key_kind(key)
        if (self.when, self.kind) == ("before", kind):
            _die(self.when, kind, key)
        result = call()
        sys.stderr.write(f"wrote {kind} {key} -> {result!r}\n")
        if (self.when, self.kind) == ("after", kind):
            _die(self.when, kind, key)
        return result

    def create(self, key: str, data: bytes) -> bool:
        return bool(self._write(key, lambda: self.inner.create(key, data)))

    def create_from_file(self, key: str, path: Path) -> bool:
        return bool(self._write(key, lambda: self.inner.create_from_file(key, path)))

    def replace(self, key: str, data: bytes, *, etag: str | None) -> str:
        return str(self._write(key, lambda: self.inner.replace(key, data, etag=etag)))

    def describe(self) -> str:
        return self.inner.describe()

    def read(self, key: str) -> tuple[bytes, str]:
        return self.inner.read(key)

    def head(self, key: str, *, length: int) -> bytes:
        return self.inner.head(key, length=length)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        return self.inner.fetch(key, max_bytes=max_bytes)

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        return self.inner.stream(key, max_bytes=max_bytes)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)


def worker_spec(tmp: Path, name: str, **spec: Any) -> Path:
    """Write a worker spec (see :func:`run_worker`) and return its path."""
    path = tmp / f"spec-{name}.json"
    path.write_text(json.dumps({"name": name, **spec}))
    return path


def start_worker(spec: Path) -> subprocess.Popen[str]:
    """Start the worker on ``spec`` in its own process.

    Its temp dir sits beside the spec: a worker that SIGKILLs itself mid-publish cannot remove
    its ``otaseal-publish-*`` folder, and the test's ``tmp_path`` goes away with the test.
    """
    tmp = spec.with_suffix(".tmp")
    tmp.mkdir(exist_ok=True)
    return subprocess.Popen(
        [PYTHON, str(HERE), str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )


def open_gate(
    gate: Path, count: int, procs: list[subprocess.Popen[str]], timeout: float = 60
) -> None:
    """Wait until ``count`` workers are ready at the gate, then let them all go at once."""
    deadline = time.monotonic() + timeout
    while len(list(gate.glob("ready-*"))) < count:
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                msg = f"a worker exited before the gate opened: {err}"
                raise AssertionError(msg)
        if time.monotonic() > deadline:
            msg = "workers did not reach the gate"
            raise AssertionError(msg)
        time.sleep(0.02)
    (gate / "go").touch()


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    """The JSON line of a worker that must succeed."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker exit {proc.returncode}\n{err}"
    return one_json(out)


def _operate(project: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from otaseal import operations

    args = spec["args"]
    if spec["op"] == "publish":
        change = operations.publish(project, Path(args.pop("build_dir")), **args).change
    elif spec["op"] == "promote":
        change = operations.promote(project, **args)
    else:
        msg = f"unknown op {spec['op']}"
        raise ValueError(msg)
    release = change.manifest.current
    assert release is not None
    return {
        "name": spec["name"],
        "version": change.manifest.version,
        "noop": change.noop,
        "event": change.manifest.event,
        "label": release.label,
        "counter": release.counter,
        "sha256": release.sha256,
    }


def run_worker(spec: dict[str, Any]) -> None:
    """Open the store, arm the kill switch, wait at the gate, run the operation, print JSON."""
    from otaseal.config import load_config
    from otaseal.operations import Project, open_store

    config = load_config(Path(spec["config"]))
    real = open_store(
        spec.get("store") or config.store,
        s3_endpoint=spec.get("s3_endpoint"),
        s3_lock_mode=spec.get("s3_lock_mode", False),
    )
    store: Storage = real
    if spec.get("kill"):
        store = KillSwitch(real, spec["kill"]["when"], spec["kill"]["kind"])
    project = Project(config, store)
    # Warm up everything the race does not measure: imports, keys, root, the S3 client.
    for module in ("otaseal.archive", "otaseal.formats.sealed"):
        importlib.import_module(module)

    project.root()
    project.recipients()
    real.list(f"{config.app}/root/")
    if spec.get("gate"):
        gate = Path(spec["gate"])
        (gate / f"ready-{spec['name']}").touch()
        while not (gate / "go").exists():
            time.sleep(0.005)
    print(json.dumps(_operate(project, spec)), flush=True)


if __name__ == "__main__":
    run_worker(json.loads(Path(sys.argv[1]).read_text()))
