"""Support for the ``otaseal serve`` tests: a real uvicorn in a thread, a client that checks every
reply against ``tests/contracts/capgo-serve-replies.schema.json``, and Capgo-bearing releases on
the attack tests' repository simulator.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import requests
import uvicorn

from otaseal.model import CapgoArtifact
from otaseal.store import capgo_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.applications import Starlette

    from otaseal.model import Release

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "contracts" / "capgo-serve-replies.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
KEY_ID = "MIIBCgKCAQEAqJikYizo"
DEVICE = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
OTHER_DEVICE = "0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70"


def check_reply(form: str, doc: object) -> None:
    """Validate ``doc`` against the contract's definition ``form`` (updates, stats, ...)."""
    schema = {"$ref": f"#/$defs/{form}", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(doc)


def form_of(method: str, path: str) -> str:
    """Which contract definition a reply of ``method path`` must match."""
    if path.startswith("/updates"):
        return "updates"
    if path.startswith("/stats"):
        return "stats"
    if path.startswith("/channel_self"):
        return {"POST": "channel_set", "PUT": "channel_get", "GET": "channel_list"}.get(
            method, "error"
        )
    if path.startswith("/healthz"):
        return "healthz"
    return "error"


@contextmanager
def serve_in_thread(app: Starlette) -> Iterator[str]:
    """Run ``app`` on uvicorn bound to 127.0.0.1 port 0 in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@dataclass
class Reply:
    status: int
    headers: Any
    doc: Any
    raw: bytes


@dataclass
class Client:
    """HTTP to the server under test; every JSON reply is checked against the contract."""

    base: str
    session: requests.Session = field(default_factory=requests.Session)
    replies: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # loopback only: no proxies from the environment

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        form: str | None = None,
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        response = self.session.request(
            method,
            self.base + path,
            data=data,
            params=params,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=20,
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        doc = json.loads(response.content)
        check_reply(form or form_of(method, path), doc)
        assert "Traceback" not in response.text
        reply = Reply(response.status_code, response.headers, doc, response.content)
        self.replies.append(reply)
        return reply

    def check(self, **info: Any) -> Reply:
        return self.call("POST", "/updates", plugin_info(**info))

    def stats(self, events: object) -> Reply:
        return self.call("POST", "/stats", events)


def plugin_info(**fields: Any) -> dict[str, Any]:
    """The real plugin's info object (capgo-protocol.md §3.1), then ``fields``."""
    doc: dict[str, Any] = {
        "platform": "android",
        "device_id": DEVICE,
        "app_id": "com.example.app",
        "custom_id": "",
        "version_build": "1.2.0",
        "version_code": "7",
        "version_os": "14",
        "version_name": "1.2.0",
        "plugin_version": "8.51.23",
        "is_emulator": False,
        "is_prod": True,
        "install_source": "google_play",
        "defaultChannel": "",
        "key_id": KEY_ID,
    }
    doc.update(fields)
    return doc


def stat(
    action: str, version_name: str, *, timestamp: int | None = 1_795_000_000_000, **info: Any
) -> dict[str, Any]:
    """One stats event as the plugin's queue sends it."""
    event = plugin_info(**info) | {
        "action": action,
        "version_name": version_name,
        "old_version_name": "",
    }
    if timestamp is not None:
        event["timestamp"] = timestamp
    return event


def with_capgo(repo: Any, release: Release, *, key_id: str = KEY_ID) -> Release:
    """``release`` with a stored stand-in Capgo artifact (well-formed values; bytes unverified)."""
    data = f"capgo artifact of {release.label}\n".encode() * 64
    digest = hashlib.sha256(data).hexdigest()
    repo.put(capgo_key(repo.app, digest), data)
    artifact = CapgoArtifact(
        sha256=digest,
        length=len(data),
        session_key="AAAAAAAAAAAAAAAAAAAAAA==:" + "QUJD" * 4,
        checksum=hashlib.sha256(release.label.encode()).hexdigest() * 8,
        key_id=key_id,
    )
    return replace(release, capgo=artifact)


def publish_capgo(repo: Any, channel: str, label: str, **changes: Any) -> Release:
    """An honest publish on the simulator whose release carries a Capgo artifact."""
    bundle = repo.build(label=label)
    repo.upload(bundle)
    release = with_capgo(repo, repo.release(bundle, label=label, **changes))
    served = repo.served.get(channel)
    older = served.releases if served else ()
    repo.serve_manifest(repo.manifest(channel, (release, *older)[:5]))
    return release


def start_serve(*args: str, cwd: Path, log: Path, env: dict[str, str] | None = None) -> Any:
    """``otaseal serve ARGS`` as a child process on a free loopback port, ready on /healthz."""
    import subprocess
    import sys

    from servers import Server, _http_ok, _wait, free_port

    port = free_port()
    argv = [sys.executable, "-m", "otaseal", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, *args],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Server("otaseal serve", proc, f"http://127.0.0.1:{port}")
    try:
        _wait(lambda: _http_ok(server.url + "/healthz"), server, timeout=60)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{log.read_text()}") from None
    return server
