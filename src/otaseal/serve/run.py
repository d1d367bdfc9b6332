"""``otaseal serve``: options, trust pins, store and stats database; starts uvicorn.

With ``--workers N`` above 1 uvicorn needs an import string, so the options travel to each worker
process as JSON in ``OTASEAL_SERVE_OPTIONS`` and :func:`app_from_env` builds the app there. The
parent opens everything once first, so a wrong ``--root`` or ``--stats`` fails before any worker
starts, and migrates the stats database once. Nothing but the database holds state: replicas can
run side by side behind a load balancer.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal import dsse, trust
from otaseal.errors import Error, InputError
from otaseal.model import Root

if TYPE_CHECKING:
    from otaseal.serve.app import HotPath
    from otaseal.serve.db import StatsDb
    from otaseal.serve.service import BundleUrls, Service
    from otaseal.store import Storage

ENV_OPTIONS = "OTASEAL_SERVE_OPTIONS"
log = logging.getLogger("otaseal.serve")


def default_stats_url() -> str:
    """``sqlite:///$XDG_STATE_HOME/otaseal/stats.sqlite`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return "sqlite:///" + str(Path(state) / "otaseal" / "stats.sqlite")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Everything ``otaseal serve`` was told; JSON-able so workers can rebuild the app."""

    store: str
    roots: tuple[tuple[str, str], ...]  # (app or "", root.json path)
    stats: str
    public_url: str | None = None
    s3_endpoint: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    retention_days: int = 90
    default_channel: str | None = None
    self_assignable: tuple[str, ...] = ()
    project_self_assignable: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (app, channels)
    cache_ttl: float = 5.0
    manifest: bool = True  # --no-manifest: zip answers only (SPEC §18)

    def to_json(self) -> str:
        """For ``OTASEAL_SERVE_OPTIONS``."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        """Back from ``OTASEAL_SERVE_OPTIONS``."""
        doc = json.loads(text)
        doc["roots"] = tuple(tuple(r) for r in doc["roots"])
        doc["self_assignable"] = tuple(doc["self_assignable"])
        doc["project_self_assignable"] = tuple(
            (app, tuple(chs)) for app, chs in doc["project_self_assignable"]
        )
        return cls(**doc)


def parse_root_option(text: str) -> tuple[str, str]:
    """``APP=PATH`` or a bare ``PATH`` (the app is then read from the root itself)."""
    app, sep, path = text.partition("=")
    return (app, path) if sep and "/" not in app else ("", text)


def load_root(app: str, path: str) -> tuple[str, bytes]:
    """Read a pinned root.json and check that it is signed by its own root threshold."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read --root {path} ({exc.strerror})",
            expected="the app's root.json (the trust pin devices ship with)",
            fix="pass --root APP=PATH to the project's root.json",
        ) from None
    try:
        found = Root.from_payload(dsse.Envelope.from_json(data).payload).app
        trust.verify_trusted_root(data, app=app or found)
    except Error as exc:
        raise InputError(
            f"--root {path} is not a valid root.json for {app or found!r}: {exc.what}",
            expected="a root.json signed by its own root keys",
            fix="pass the root.json that `otaseal init` made for the app",
        ) from None
    return app or found, data


def default_channel(root: Root, wanted: str | None) -> str:
    """``--default-channel`` if the app has it, else ``production``, else its only channel."""
    channels = root.channels()
    if wanted:
        return wanted if wanted in channels else ""
    if "production" in channels:
        return "production"
    return channels[0] if len(channels) == 1 else ""


def open_stats(url: str) -> StatsDb:
    """The stats database behind ``--stats URL`` (``sqlite:///path`` or ``postgresql://``)."""
    from otaseal.serve.db import open_stats as open_url  # noqa: PLC0415

    return open_url(url)


def _urls(options: ServeOptions, store: Storage) -> BundleUrls:
    from otaseal.serve.service import PresignedUrls, PublicUrls, ServedUrls  # noqa: PLC0415

    if options.public_url:
        return PublicUrls(options.public_url)
    presign = getattr(store, "presign", None)
    if presign is not None:
        return PresignedUrls(store)  # type: ignore[arg-type]
    return ServedUrls()


def build_service(options: ServeOptions, *, stats: StatsDb | None = None) -> Service:
    """Open the store and the stats database, load the trust pins."""
    from otaseal.operations import open_store  # noqa: PLC0415
    from otaseal.serve.service import AppTrust, Service  # noqa: PLC0415

    if not options.roots:
        raise InputError(
            "serve has no app to serve",
            expected="--root APP=PATH (repeatable), or run it inside an otaseal project",
            fix="pass --root com.example.app=root.json",
        )
    store = open_store(options.store, s3_endpoint=options.s3_endpoint)
    per_app = dict(options.project_self_assignable)
    apps: dict[str, AppTrust] = {}
    for wanted, path in options.roots:
        app, data = load_root(wanted, path)
        root = Root.from_payload(dsse.Envelope.from_json(data).payload)
        channels = set(root.channels())
        assignable = (set(options.self_assignable) | set(per_app.get(app, ()))) & channels
        apps[app] = AppTrust(
            app=app,
            root=data,
            default_channel=default_channel(root, options.default_channel),
            self_assignable=frozenset(assignable),
        )
    return Service(
        store=store,
        apps=apps,
        stats=stats if stats is not None else open_stats(options.stats),
        urls=_urls(options, store),
        cache_ttl=options.cache_ttl,
        retention_days=options.retention_days,
        background_refresh=True,
        manifest_mode=options.manifest,
    )


def _configure_logging() -> None:
    logger = logging.getLogger("otaseal")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def app_from_env() -> HotPath:
    """The uvicorn factory for worker processes (options from ``OTASEAL_SERVE_OPTIONS``)."""
    from otaseal.serve.app import create_app  # noqa: PLC0415

    _configure_logging()
    return create_app(build_service(ServeOptions.from_json(os.environ[ENV_OPTIONS])))


def check_listen(host: str, port: int) -> None:
    """Fail with a clear message before start-up when ``host:port`` cannot be listened on.

    uvicorn would log its own error and exit 3 (our "metadata rejected" code) after start-up.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"cannot listen on {host}:{port} ({reason})",
            expected="a free port on an address of this machine, e.g. --host 127.0.0.1 "
            "--port 8765 (0.0.0.0 for every interface)",
            fix="pick another --port, stop the process that holds it, or fix --host",
        ) from None


def serve(options: ServeOptions) -> None:
    """Check everything, migrate the stats database once, then run uvicorn until stopped."""
    import uvicorn  # noqa: PLC0415

    from otaseal.serve.app import create_app  # noqa: PLC0415

    _configure_logging()
    check_listen(options.host, options.port)
    stats = open_stats(options.stats)
    stats.migrate()
    service = build_service(options, stats=stats)
    for app, pinned in sorted(service.apps.items()):
        log.info(
            "serving %s (default channel %s, self-assignable %s)",
            app,
            pinned.default_channel or "none",
            ", ".join(sorted(pinned.self_assignable)) or "none",
        )
    common = {
        "host": options.host,
        "port": options.port,
        "http": "httptools",
        "loop": "uvloop",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
    }
    if options.workers <= 1:
        uvicorn.run(create_app(service), **common)  # type: ignore[arg-type]
        return
    stats.close()
    os.environ[ENV_OPTIONS] = options.to_json()
    uvicorn.run(
        "otaseal.serve.run:app_from_env",
        factory=True,
        workers=options.workers,
        **common,  # type: ignore[arg-type]
    )
