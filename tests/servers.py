"""Real servers for integration tests, started on 127.0.0.1 and stopped by PID.

Each launcher picks a free loopback port, starts the server as a child process in its own process
group, waits until it answers a real request, and returns a handle whose ``stop()`` kills it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    extra: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(
    argv: list[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _wait(check: object, server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # noqa: BLE001, S110 - polling until ready
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready in {timeout}s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
            return bool(r.status < 500)
    except urllib.error.HTTPError as e:
        return e.code < 500


def start_moto() -> Server:
    """moto server (S3, KMS, Secrets Manager) on loopback."""
    port = free_port()
    proc = _spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
    server = Server("moto", proc, f"http://127.0.0.1:{port}")
    _wait(lambda: _http_ok(server.url + "/moto-api/"), server)
    return server


def start_seaweedfs(access_key: str = "otaseal-test", secret_key: str = "otaseal-secret") -> Server:
    """SeaweedFS ``weed mini`` with real SigV4, every listener on 127.0.0.1."""
    work = Path(tempfile.mkdtemp(prefix="otaseal-weed-"))
    ports = {k: free_port() for k in ("master", "volume", "filer", "s3", "grpc")}
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    argv = [
        str(BIN / "weed"),
        f"-logdir={work}",  # glog writes into $TMPDIR otherwise, and nothing removes it
        "mini",
        f"-dir={work}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-webdav=false",
    ]
    proc = _spawn(argv, env=env, log=work / "weed.log")
    server = Server(
        "seaweedfs",
        proc,
        f"http://127.0.0.1:{ports['s3']}",
        {"access_key": access_key, "secret_key": secret_key},
        workdir=work,
    )
    _wait(lambda: _http_ok(server.url), server, timeout=90)
    return server


def start_openbao(token: str = "root-test") -> Server:
    """OpenBao dev server (Vault API) on loopback."""
    port = free_port()
    proc = _spawn(
        [
            str(BIN / "bao"),
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={token}",
        ]
    )
    server = Server("openbao", proc, f"http://127.0.0.1:{port}", {"token": token})
    _wait(lambda: _http_ok(server.url + "/v1/sys/health"), server)
    return server
