"""Load on the update endpoint: ``otaseal serve`` against nginx and a bare Python handler, by wrk.

    python bench/serve_load.py          # 3 interleaved repeats of everything (make bench-serve)
    python bench/serve_load.py --quick         # 1 repeat, 5 s per run: a smoke check
    python bench/serve_load.py --only nginx --only bare   # contenders whose name has a substring
    python bench/serve_load.py --repeat 5 --duration 20

Everything runs on 127.0.0.1: each server is started by this script in its own process group,
in a temporary folder, and stopped by its PID (PostgreSQL by ``pg_ctl stop``, which reads the
postmaster's PID file). wrk runs ``-t2 -c64 --latency`` on the same two cores as the server, as
issue 9 asks, with ``bench/serve_load.lua`` replaying a fixed list of plugin requests (see
``workload``). The figures are medians over interleaved repeats; the comparisons that matter
are ratios within one run: serve ÷ the bare handler, serve ÷ nginx.

Contenders:
- ``nginx``: one static JSON answer to every POST (``return 200``): the HTTP floor here.
- ``bare <stack>``: ``bench/serve_bare.py`` under uvicorn, parse the body, answer a fixed JSON:
  the floor of a Python stack. The candidate stacks for ADR 0006 run with 2 workers; the
  chosen one (Starlette + uvicorn with uvloop/httptools + msgspec) with 1 and 2.
- ``serve sqlite`` / ``serve postgres``: ``otaseal serve`` on a project made by ``otaseal init``
  with three channels, each with two published releases, with 1 and 2 workers.

Needs ``wrk`` and ``nginx`` (Debian: ``apt-get install -y wrk nginx-light``), and PostgreSQL's
``initdb``/``pg_ctl`` for the PostgreSQL rows (``apt-get install -y postgresql``; without them
those rows are skipped and the run says so). It installs nothing itself. Results go to
``bench/out/serve-results.md`` and ``.json``; a missed target is reported, not an error (exit 0).
A server that fails to start stops the run; one that answers anything but 2xx (a 429 from a full
stats queue, say) fails its wrk run: its row counts the failures, checks/s counts only 2xx
answers, the other contenders still run, and the script exits 1 at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pwd
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LUA = HERE / "serve_load.lua"
VENV_BIN = Path(sys.executable).parent
OTASEAL = VENV_BIN / "otaseal"
APT = "apt-get install -y wrk nginx-light"
APT_PG = "apt-get install -y postgresql"

APP = "com.example.bench"
CHANNELS = {"production": 0.6, "beta": 0.3, "canary": 0.1}  # share of devices
NATIVE = "1.0.0"  # the devices' version_build: a device on its shipped build reports this
DEVICES = 10_000
UP_TO_DATE = 0.9  # share of update checks from devices already on their channel's release
STATS_EVERY = 10  # every 10th request is a stats batch
CYCLE = 20_000  # requests in the list each wrk thread cycles through
UPDATES_PATH = "/updates"
STATS_PATH = "/stats"
SEED = 20261128

THREADS = 2
CONNECTIONS = 64
WARM_UP_S = 2
QUIET_LIMIT = 0.3  # cores other processes may use before (and during) a measured run
#: Scheduling priority of the harness and all it starts (root only): on a shared machine, other
#: work (test suites, fuzzers) then takes less CPU from the measured processes.
NICE = int(os.environ.get("BENCH_NICE", "-10"))
NOISE_RETRIES = int(
    os.environ.get("BENCH_NOISE_RETRIES", "2")
)  # extra runs when others used more than that during one; the quietest is kept

CHECKS_TARGET = 10_000.0
P99_TARGET_MS = 20.0
BARE_SHARE_TARGET = 0.5
CHOSEN = "starlette+msgspec uvloop/httptools"

FIXED_ANSWER = (
    '{"error":"no_new_version_available","message":"No new version available","kind":"up_to_date"}'
)


# --- tools ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tools:
    """The programs this benchmark drives."""

    wrk: str
    nginx: str
    pg_bin: Path | None


def find_tools() -> Tools:
    """wrk and nginx are required; PostgreSQL only for its rows. Tell the user how to get them."""
    wrk = shutil.which("wrk")
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if wrk is None or nginx is None:
        missing = " and ".join(n for n, p in (("wrk", wrk), ("nginx", nginx)) if p is None)
        sys.exit(
            f"bench/serve_load.py needs {missing} on the PATH. On Debian or Ubuntu, as root: "
            f"apt-get update && {APT}. Then run it again; it installs nothing itself."
        )
    pg_bin = None
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            pg_bin = candidate
            break
    if pg_bin is None and shutil.which("initdb") and shutil.which("pg_ctl"):
        pg_bin = Path(str(shutil.which("initdb"))).parent
    return Tools(wrk, nginx, pg_bin)


def first_line(argv: list[str], *, stderr: bool = False) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stderr if stderr else done.stdout).strip()
    return text.splitlines()[0].strip() if text else "unknown"


# --- processes -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server this script started, in its own process group; ``stop`` ends it by its PID."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def spawn(
    name: str, argv: list[str], log: Path, url: str, env: dict[str, str] | None = None
) -> Server:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=log.parent,
        )
    return Server(name, proc, url, log)


def wait_ready(server: Server, probe: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            if probe():
                return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f} s:\n{server.tail()}")


def post_ok(url: str) -> Callable[[], bool]:
    """A probe: the update path answers a well-formed check with 2xx."""
    body = json.dumps(
        {
            "platform": "android",
            "device_id": str(uuid.UUID(int=1, version=4)),
            "app_id": APP,
            "custom_id": "",
            "version_build": NATIVE,
            "version_code": "10",
            "version_os": "14",
            "version_name": NATIVE,
            "plugin_version": "8.51.23",
            "is_emulator": False,
            "is_prod": True,
            "defaultChannel": "production",
        }
    ).encode()

    def probe() -> bool:
        req = urllib.request.Request(
            url + UPDATES_PATH, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=2) as resp:
            return 200 <= resp.status < 300

    return probe


def get_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300

    return probe


# --- the project and the workload ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Project:
    """An otaseal project with three channels, two releases each (labels oldest first)."""

    directory: Path
    store: Path
    root: Path
    labels: dict[str, list[str]]
    formats: str
    key_id: str = ""  # the plugin's key_id of the Capgo public key (sent when it has one)


def otaseal(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(OTASEAL), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"otaseal {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def add_channel(directory: Path, channel: str) -> None:
    """Add a channel to a fresh project: a key, root.json v1 listing it, otaseal.yml.

    ``init`` makes beta and production; a third channel needs a root that lists its key. Done
    before anything is published, so rewriting root v1 is what a user would do by hand.
    """
    from otaseal.crypto import load_signing_key  # noqa: PLC0415 - only for the set-up
    from otaseal.project import keygen, make_root, sign_root  # noqa: PLC0415

    keys = directory / "keys"
    keygen("signing", keys / f"{channel}.pem")
    config = (directory / "otaseal.yml").read_text()
    match = re.search(r"^channels: \[(.*)\]$", config, re.MULTILINE)
    if match is None:
        raise RuntimeError("otaseal.yml has no one-line channels: list")
    channels = [c.strip() for c in match.group(1).split(",")] + [channel]
    config = config.replace(match.group(0), f"channels: [{', '.join(channels)}]")
    config = config.replace("keys:", f"keys:\n  {channel}: file:keys/{channel}.pem", 1)
    (directory / "otaseal.yml").write_text(config)

    def load(name: str) -> object:
        return load_signing_key((keys / f"{name}.pem").read_bytes())

    root_key = load("root")
    root = make_root(
        APP,
        1,
        now=datetime.now(UTC),
        root_keys=[root_key],  # type: ignore[list-item]
        channel_keys={c: [load(c)] for c in channels},  # type: ignore[misc]
    )
    envelope = sign_root(root, [root_key])  # type: ignore[list-item]
    (directory / "root.json").write_bytes(envelope)
    (directory / "store" / APP / "root" / "1.root.json").write_bytes(envelope)


def make_project(work: Path) -> Project:
    """``otaseal init`` (with the Capgo format when this otaseal has it) and six publishes."""
    directory = work / "project"
    directory.mkdir()
    init_help = otaseal("init", "--help", cwd=directory)
    formats = "sealed,capgo" if "--formats" in init_help else "sealed"
    extra = ["--formats", formats] if formats != "sealed" else []
    made = json.loads(otaseal("init", "--app", APP, *extra, "--json", cwd=directory))
    key_id = ""
    if made.get("capgo_public_key"):  # what the plugin sends: 20 characters of the PEM's body
        pem = (directory / made["capgo_public_key"]).read_text().splitlines()
        key_id = "".join(line.strip() for line in pem if not line.startswith("-----"))[:20]
    add_channel(directory, "canary")
    labels: dict[str, list[str]] = {}
    for n, channel in enumerate(CHANNELS):
        labels[channel] = []
        for k in (1, 2):
            label = f"1.{n}.{k}"
            build = work / f"build-{channel}-{k}"
            shutil.copytree(ROOT / "examples" / "web", build)
            index = build / "index.html"
            index.write_text(index.read_text() + f"\n<!-- {channel} {label} -->\n")
            otaseal("publish", "--channel", channel, "--label", label, str(build), cwd=directory)
            labels[channel].append(label)
    return Project(directory, directory / "store", directory / "root.json", labels, formats, key_id)


@dataclass(frozen=True, slots=True)
class Mix:
    """What the request list holds."""

    lines: int
    checks: int
    stats_batches: int
    stats_events: int
    checks_up_to_date: int
    checks_older: int
    checks_builtin: int
    devices: int


def info(
    device: str, channel: str, version_name: str, rng: random.Random, key_id: str = ""
) -> dict[str, object]:
    """The plugin's info object (reference §3.1); ``key_id`` only with a ``publicKey``."""
    android = rng.random() < 0.6
    found: dict[str, object] = {
        "platform": "android" if android else "ios",
        "device_id": device,
        "app_id": APP,
        "custom_id": "",
        "version_build": NATIVE,
        "version_code": "10",
        "version_os": "14" if android else "18.1",
        "version_name": version_name,
        "plugin_version": "8.51.23",
        "is_emulator": False,
        "is_prod": True,
        "install_source": "google_play" if android else "app_store",
        "defaultChannel": channel,
    }
    if key_id:
        found["key_id"] = key_id
    return found


HEALTH = ("app_moved_to_foreground", "app_moved_to_background", "app_launch_start")


def stats_batch(base: dict[str, object], current: str, rng: random.Random) -> list[object]:
    """What a device's queue flushes (§3.5): info + action, versions, timestamp, metadata."""
    running = str(base["version_name"])
    events: list[dict[str, object]] = []
    if running != current and rng.random() < 0.5:  # an update went through: the install events
        events.append({"action": "download_zip_start", "version_name": current})
        events.append({"action": "download_complete", "version_name": current})
        events.append({"action": "set", "version_name": current, "old_version_name": running})
    else:
        events += [
            {"action": rng.choice(HEALTH), "version_name": running}
            for _ in range(rng.randint(1, 4))
        ]
        if rng.random() < 0.3:
            events.append(
                {
                    "action": "app_launch_ready",
                    "version_name": running,
                    "metadata": {"duration_ms": str(rng.randint(200, 2000)), "source": "cold"},
                }
            )
    return [{**base, "old_version_name": "", **event, "timestamp": "__TS__"} for event in events]


def workload(project: Project, path: Path) -> Mix:
    """The request list: 10,000 devices, 90 % of checks up to date, every 10th a stats batch.

    Devices are spread over the channels (60/30/10 %); 90 % of them run their channel's current
    release, the rest its previous release or the shipped build (half each). Checks go through
    the devices in a shuffled order, so each is seen about twice per cycle.
    """
    rng = random.Random(SEED)
    channels = list(CHANNELS)
    devices = []
    for n in range(DEVICES):
        device = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        channel = rng.choices(channels, weights=list(CHANNELS.values()))[0]
        older, current = project.labels[channel]
        if n < DEVICES * UP_TO_DATE:
            state, version = "up_to_date", current
        elif n % 2:
            state, version = "older", older
        else:
            state, version = "builtin", NATIVE
        devices.append((device, channel, state, version, current))
    lines: list[str] = []
    counts = {"up_to_date": 0, "older": 0, "builtin": 0}
    batches = events = 0
    order = list(range(DEVICES))
    rng.shuffle(order)
    checks_seen = 0
    while len(lines) < CYCLE:
        if (len(lines) + 1) % STATS_EVERY == 0:
            device, channel, state, version, current = devices[rng.randrange(DEVICES)]
            batch = stats_batch(info(device, channel, version, rng, project.key_id), current, rng)
            body = json.dumps(batch, separators=(",", ":")).replace('"__TS__"', "__TS__")
            lines.append(f"POST\t{STATS_PATH}\t{body}")
            batches += 1
            events += len(batch)
            continue
        device, channel, state, version, _ = devices[order[checks_seen % DEVICES]]
        checks_seen += 1
        counts[state] += 1
        body = json.dumps(
            info(device, channel, version, rng, project.key_id), separators=(",", ":")
        )
        lines.append(f"POST\t{UPDATES_PATH}\t{body}")
    path.write_text("\n".join(lines) + "\n")
    return Mix(
        len(lines),
        checks_seen,
        batches,
        events,
        counts["up_to_date"],
        counts["older"],
        counts["builtin"],
        DEVICES,
    )


# --- servers -------------------------------------------------------------------------------------
def start_nginx(tools: Tools, work: Path) -> Server:
    """nginx answering every request with one fixed JSON (its workers: one per core)."""
    conf_dir = work / "nginx"
    conf_dir.mkdir(exist_ok=True)
    port = free_port()
    answer = FIXED_ANSWER.replace("'", "\\'")
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes auto;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi;
    uwsgi_temp_path {conf_dir}/uwsgi;
    scgi_temp_path {conf_dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{answer}';
        }}
    }}
}}
"""
    )
    url = f"http://127.0.0.1:{port}"
    server = spawn(
        "nginx",
        [tools.nginx, "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "error.log")],
        conf_dir / "stdout.log",
        url,
    )
    wait_ready(server, post_ok(url))
    return server


@dataclass(frozen=True, slots=True)
class Stack:
    """A candidate ASGI stack for the bare handler."""

    name: str
    app: str  # attribute of bench/serve_bare.py
    loop: str
    http: str


STACKS = (
    Stack("starlette+msgspec uvloop/httptools", "starlette_msgspec", "uvloop", "httptools"),
    Stack("raw ASGI+msgspec uvloop/httptools", "raw_msgspec", "uvloop", "httptools"),
    Stack("starlette+json uvloop/httptools", "starlette_json", "uvloop", "httptools"),
    Stack("raw ASGI+json uvloop/httptools", "raw_json", "uvloop", "httptools"),
    Stack("starlette+msgspec uvloop/h11", "starlette_msgspec", "uvloop", "h11"),
    Stack("starlette+msgspec asyncio/h11", "starlette_msgspec", "asyncio", "h11"),
)
#: Stacks also run with one worker (the chosen one is the floor for serve's 1-worker rows; asyncio
#: with one worker shows its speed apart from the multi-worker stall described in ADR 0006).
ONE_WORKER = (STACKS[0], STACKS[-1])


def start_bare(stack: Stack, workers: int, work: Path) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), f"serve_bare:{stack.app}",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", stack.loop, "--http", stack.http, "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = spawn(f"bare {stack.name}", argv, work / f"bare-{stack.app}-{workers}.log", url)
    wait_ready(server, post_ok(url))
    return server


def serve_help() -> str:
    done = subprocess.run(
        [str(OTASEAL), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else ""


def start_serve(project: Project, stats_url: str, workers: int, work: Path, tag: str) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(OTASEAL), "serve", "--store", str(project.store), "--root", str(project.root),
        "--public-url", "http://127.0.0.1:9/bundles/", "--stats", stats_url,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    server = spawn(f"serve {tag}", argv, work / f"serve-{tag}-{workers}.log", url)
    wait_ready(server, get_ok(url + "/healthz"))
    wait_ready(server, post_ok(url))
    return server


def sample_answers(project: Project, work: Path) -> list[str]:
    """What serve answers each kind of request in the list (one of each, before any timing)."""
    server = start_serve(project, f"sqlite:///{work}/sample.db", 1, work, "sample")
    rng = random.Random(SEED)
    device = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    older, current = project.labels["production"]
    check = {
        "up to date": info(device, "production", current, rng, project.key_id),
        "previous release": info(device, "production", older, rng, project.key_id),
        "shipped build": info(device, "production", NATIVE, rng, project.key_id),
    }
    batch = stats_batch(check["previous release"], current, rng)
    found = []
    try:
        for what, path, body in [
            *((f"check, {k}", UPDATES_PATH, v) for k, v in check.items()),
            ("stats batch", STATS_PATH, json.loads(json.dumps(batch).replace('"__TS__"', "1"))),
        ]:
            req = urllib.request.Request(
                server.url + path,
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                text = resp.read().decode()
                found.append(
                    f"{what}: {resp.status} `{text[:160]}{'…' if len(text) > 160 else ''}`"
                )
    finally:
        server.stop()
    return found


class Postgres:
    """A throwaway PostgreSQL on 127.0.0.1 in a temporary folder, as an unprivileged user."""

    def __init__(self, pg_bin: Path, parent: Path) -> None:
        self.bin = pg_bin
        self.dir = Path(tempfile.mkdtemp(prefix="otaseal-bench-pg-", dir=parent))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb refuses root: run it as postgres (or nobody)
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pw = pwd.getpwnam(name)
                    self.user = name
                    break
            else:
                raise RuntimeError("no unprivileged user (postgres, nobody) to run PostgreSQL as")
            self.dir.chmod(0o755)
            parent.chmod(0o755)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.url = f"postgresql://bench@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "bench", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def version(self) -> str:
        return first_line([str(self.bin / "postgres"), "--version"])

    def reset(self) -> None:
        """A fresh database for the next contender: drop every table the last one made."""
        self._psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")

    def _psql(self, sql: str) -> None:
        psql = self.bin / "psql"
        subprocess.run(
            [str(psql), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench",
             "-d", "postgres", "-c", sql],
            capture_output=True, check=True,
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- wrk -----------------------------------------------------------------------------------------
@dataclass
class Measure:
    """One wrk run's figures."""

    requests_per_s: float
    checks_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    answers: dict[str, int]
    busy_before: float  # cores other processes used right before the run
    busy_during: float  # cores used during the run by anything but this server and wrk
    not_2xx: int  # answers that were not 2xx, and socket errors: the run failed
    first_bad: str


def wrk(tools: Tools, url: str, data: Path, seconds: int) -> dict[str, object]:
    argv = [
        tools.wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(LUA), url, "--", str(data), str(int(time.time() * 1000)),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    found = re.search(r"^WRK_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(
            f"wrk printed no result (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    result: dict[str, object] = json.loads(found.group(1))
    result["failed_run"] = done.returncode != 0  # an answer was not 2xx, or a socket error
    return result


def cpu_ticks() -> int:
    """User and system CPU time of the whole machine, in clock ticks (/proc/stat).

    Interrupt and softirq time is left out: loopback networking at ~100,000 requests/s is
    largely softirq, charged to no process, and would show up as "others".
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[0] + fields[1] + fields[2]


def group_ticks(pgid: int) -> int:
    """CPU time (user + system, in clock ticks) of the live processes in one process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total


def measure(tools: Tools, server: Server, data: Path, seconds: int, quiet_wait: float) -> Measure:
    """Warm up, wait for a quiet machine, run wrk; note what else used the CPU meanwhile."""
    wrk(tools, server.url, data, WARM_UP_S)  # untimed: caches, pools, first connections
    busy = wait_for_quiet(quiet_wait)
    hz = os.sysconf("SC_CLK_TCK")
    machine0, server0 = cpu_ticks(), group_ticks(server.proc.pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = wrk(tools, server.url, data, seconds)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine1, server1 = cpu_ticks(), group_ticks(server.proc.pid)
    wrk_s = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    latency, errors = r["latency_us"], r["errors"]
    assert isinstance(latency, dict)
    assert isinstance(errors, dict)
    duration = float(str(r["duration_us"])) / 1e6
    others = ((machine1 - machine0) - (server1 - server0)) / hz - wrk_s
    done = int(str(r["requests"]))
    checks, stats = int(str(r["checks"])), int(str(r["stats"]))
    answered_checks = int(str(r["ok"])) * checks / max(1, checks + stats)  # 2xx answers only
    return Measure(
        requests_per_s=done / duration,
        checks_per_s=answered_checks / duration,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        answers={k: int(str(r[k])) for k in ("up_to_date", "update", "failed", "other")},
        busy_before=busy,
        busy_during=max(0.0, others / duration),
        not_2xx=int(str(r["bad"])) + sum(int(v) for k, v in errors.items() if k != "status"),
        first_bad=str(r["first_bad"]),
    )


def busy_elsewhere(seconds: float = 1.0) -> float:
    """Cores' worth of CPU that other processes used over ``seconds`` (we are idle meanwhile)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return len(os.sched_getaffinity(0)) * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(max_wait: float) -> float:
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_elsewhere()
        if busy < QUIET_LIMIT or time.monotonic() >= deadline:
            return busy
        print(f"    waiting: other processes use {busy:.1f} cores", flush=True)


# --- the run -------------------------------------------------------------------------------------
@dataclass
class Contender:
    """One row of the table: how to start it, and its measurements."""

    name: str
    kind: str  # floor, stack, serve
    workers: int
    start: Callable[[], Server]
    db: str = ""
    samples: list[Measure] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        med = statistics.median
        s = self.samples
        answers = {k: sum(m.answers[k] for m in s) for k in s[0].answers} if s else {}
        return {
            "name": self.name,
            "kind": self.kind,
            "workers": self.workers,
            "db": self.db,
            "repeats": len(s),
            "requests_per_s": med(m.requests_per_s for m in s),
            "checks_per_s": med(m.checks_per_s for m in s),
            "p50_ms": med(m.p50_ms for m in s),
            "p90_ms": med(m.p90_ms for m in s),
            "p99_ms": med(m.p99_ms for m in s),
            "max_ms": max(m.max_ms for m in s),
            "others_cores_during": med(m.busy_during for m in s),
            "not_2xx": sum(m.not_2xx for m in s),
            "first_bad": next((m.first_bad for m in s if m.first_bad), ""),
            "answers": answers,
            "samples": [asdict(m) for m in s],
        }


def contenders(
    tools: Tools, work: Path, project: Project | None, pg: Postgres | None
) -> list[Contender]:
    found = [Contender("nginx, static JSON", "floor", 0, lambda: start_nginx(tools, work))]
    chosen = STACKS[0]
    found += [
        Contender(
            f"bare {stack.name}",
            "floor" if stack is chosen else "stack",
            1,
            lambda stack=stack: start_bare(stack, 1, work),  # type: ignore[misc]
        )
        for stack in ONE_WORKER
    ]
    found += [
        Contender(
            f"bare {stack.name}",
            "floor" if stack is chosen else "stack",
            2,
            lambda stack=stack: start_bare(stack, 2, work),  # type: ignore[misc]
        )
        for stack in STACKS
    ]
    if project is None:
        return found
    for workers in (1, 2):
        counter = iter(range(1_000_000))

        def sqlite_url(workers: int = workers, counter: Iterator[int] = counter) -> str:
            return f"sqlite:///{work}/stats-{workers}-{next(counter)}.db"

        found.append(
            Contender(
                "otaseal serve",
                "serve",
                workers,
                lambda w=workers, u=sqlite_url: start_serve(project, u(), w, work, "sqlite"),  # type: ignore[misc]
                db="SQLite",
            )
        )
    if pg is not None:
        for workers in (1, 2):

            def start_pg(w: int = workers) -> Server:
                pg.reset()
                return start_serve(project, pg.url, w, work, "postgres")

            found.append(Contender("otaseal serve", "serve", workers, start_pg, db="PostgreSQL"))
    return found


def run_one(c: Contender, tools: Tools, data: Path, seconds: int, quiet_wait: float) -> None:
    server = c.start()
    try:
        best = measure(tools, server, data, seconds, quiet_wait)
        for _ in range(NOISE_RETRIES):  # others took CPU during the run: measure again
            if best.busy_during <= QUIET_LIMIT:
                break
            print(
                f"      others used {best.busy_during:.2f} cores during the run: again", flush=True
            )
            again = measure(tools, server, data, seconds, quiet_wait)
            best = min(best, again, key=lambda m: m.busy_during)
        c.samples.append(best)
    except RuntimeError:
        print(server.tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
    m = c.samples[-1]
    print(
        f"    {c.name:42} {c.db:10} w{c.workers}: {m.checks_per_s:8.0f} checks/s "
        f"({m.requests_per_s:8.0f} req/s), p50 {m.p50_ms:6.2f} ms, p99 {m.p99_ms:6.2f} ms, "
        f"others used {m.busy_before:.2f} cores before, {m.busy_during:.2f} during",
        flush=True,
    )
    if m.not_2xx:
        print(f"      FAILED: {m.not_2xx} answers not 2xx or socket errors; first: {m.first_bad}")


def versions(tools: Tools, pg: Postgres | None) -> dict[str, str]:
    import httptools  # noqa: PLC0415
    import msgspec  # noqa: PLC0415
    import starlette  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415
    import uvloop  # noqa: PLC0415

    found = {
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "msgspec": msgspec.__version__,
        "uvloop": uvloop.__version__,
        "httptools": httptools.__version__,
        "sqlite": sqlite3.sqlite_version,
        "wrk": first_line([tools.wrk, "-v"]).split(" [")[0],
        "nginx": first_line([tools.nginx, "-v"], stderr=True).replace("nginx version: ", ""),
        "postgresql": pg.version() if pg else "not run",
    }
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: PLC0415

        found["psycopg"] = psycopg.__version__
    return found


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    head = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src"], check=False
    ).returncode
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": str(len(os.sched_getaffinity(0))),
        "os": f"{platform.system()} {platform.release()}",
        "otaseal_commit": head + (" + uncommitted changes in src/" if dirty else ""),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "nice": str(os.nice(0)),
    }


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    measured: str
    passed: bool


def targets(rows: list[dict[str, object]]) -> list[Target]:
    def find(name: str, workers: int, db: str = "") -> dict[str, object] | None:
        for r in rows:
            if r["name"] == name and r["workers"] == workers and r["db"] == db:
                return r
        return None

    serve = find("otaseal serve", 2, "SQLite")
    bare = find(f"bare {CHOSEN}", 2)
    if serve is None:
        return []
    checks = float(str(serve["checks_per_s"]))
    p99 = float(str(serve["p99_ms"]))
    found = [
        Target(
            f"serve, 2 workers, SQLite: >= {CHECKS_TARGET:,.0f} checks/s",
            f"{checks:,.0f}",
            checks >= CHECKS_TARGET,
        ),
        Target(
            f"serve, 2 workers, SQLite: p99 < {P99_TARGET_MS:g} ms",
            f"{p99:.1f} ms",
            p99 < P99_TARGET_MS,
        ),
    ]
    found.append(
        Target(
            "serve, 2 workers, SQLite: every answer 2xx (no 429 from a full stats queue)",
            f"{serve['not_2xx']:,} not 2xx",
            serve["not_2xx"] == 0,
        )
    )
    if bare is not None:
        share = checks / float(str(bare["checks_per_s"]))
        found.append(
            Target(
                "serve, 2 workers, SQLite: >= half the bare handler's checks/s (2 workers)",
                f"{share:.2f}x",
                share >= BARE_SHARE_TARGET,
            )
        )
    return found


def render(doc: dict[str, object]) -> str:
    m, v, mix = doc["machine"], doc["versions"], doc["mix"]
    rows, found = doc["rows"], doc["targets"]
    assert isinstance(m, dict)
    assert isinstance(v, dict)
    assert isinstance(mix, dict)
    assert isinstance(rows, list)
    assert isinstance(found, list)
    bare = {r["workers"]: r for r in rows if r["name"] == f"bare {CHOSEN}"}
    nginx = next((r for r in rows if r["name"].startswith("nginx")), None)
    lines = [
        (
            f"Machine: {m['cpu']}, nproc {m['nproc']}; {m['os']}; load {m['load']} at the end; "
            f"servers and wrk at nice {m['nice']}. "
            f"Date: {m['date']}. otaseal {m['otaseal_commit']} (formats: {doc['formats']})."
        ),
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        (
            f"Command: `{doc['command']}`; wrk -t{THREADS} -c{CONNECTIONS} -d{doc['duration']}s "
            f"--latency on the same cores, after {WARM_UP_S} s of untimed warm-up; medians of "
            f"{doc['repeats']} interleaved repeats."
        ),
        (
            f"Workload: {mix['lines']:,} requests cycled: {mix['checks']:,} update checks from "
            f"{mix['devices']:,} devices ({mix['checks_up_to_date']:,} up to date, "
            f"{mix['checks_older']:,} on the previous release, {mix['checks_builtin']:,} on the "
            f"shipped build) and {mix['stats_batches']:,} stats batches ({mix['stats_events']:,} "
            "events)."
        ),
        "",
        (
            "| contender | workers | stats DB | checks/s | requests/s | p50 ms | p99 ms "
            "| ÷ bare (same workers) | ÷ nginx | answers: up to date / update / other "
            "| not 2xx | others' cores during |"
        ),
        "|---|--:|---|--:|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for r in rows:
        b = bare.get(r["workers"])
        vs_bare = f"{r['checks_per_s'] / b['checks_per_s']:.2f}" if b is not None else "—"
        vs_nginx = f"{r['checks_per_s'] / nginx['checks_per_s']:.2f}" if nginx else "—"
        a = r["answers"]
        lines.append(
            f"| {r['name']} | {r['workers'] or 'auto'} | {r['db'] or '—'} "
            f"| {r['checks_per_s']:,.0f} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {vs_bare} | {vs_nginx} "
            f"| {a['up_to_date']:,} / {a['update']:,} / {a['failed'] + a['other']:,} "
            f"| {r['not_2xx']:,} | {r['others_cores_during']:.2f} |"
        )
    if found:
        lines += ["", "| target (issue 9) | measured | |", "|---|--:|---|"]
        lines += [
            f"| {t['name']} | {t['measured']} | {'PASS' if t['passed'] else 'FAIL'} |"
            for t in found
        ]
    answers = doc.get("sample_answers") or []
    if answers:
        lines += ["", "What serve answered one request of each kind before the run:", ""]
        lines += [f"- {a}" for a in answers]  # type: ignore[attr-defined]
    for note in doc.get("notes", []):  # type: ignore[attr-defined]
        lines.append(f"\nNote: {note}")
    lines += [
        f"\n{r['name']} ({r['db'] or 'no DB'}, {r['workers']} workers) failed: {r['not_2xx']:,} "
        f"answers not 2xx or socket errors over all repeats; the first: `{r['first_bad']}`"
        for r in rows
        if r["not_2xx"]
    ]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")))
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 5 s")
    parser.add_argument("--only", action="append", default=[], help="contenders whose name has it")
    parser.add_argument("--no-serve", action="store_true", help="floors and stacks only")
    parser.add_argument(
        "--quiet-wait", type=float, default=float(os.environ.get("BENCH_QUIET_WAIT", "120"))
    )
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.duration = 1, 5
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up servers on kill -TERM
    if NICE and os.geteuid() == 0:  # servers, wrk and PostgreSQL inherit it
        os.nice(NICE)
    tools = find_tools()
    notes: list[str] = []
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="otaseal-bench-serve-") as tmp:
        work = Path(tmp)
        project: Project | None = None
        pg: Postgres | None = None
        samples: list[str] = []
        if not args.no_serve:
            if serve_help():
                print("making the project: init, 3 channels, 6 publishes", flush=True)
                project = make_project(work)
                samples = sample_answers(project, work)
                print("\n".join(f"  {line}" for line in samples), flush=True)
            else:
                notes.append("this otaseal has no `serve` command: its rows were not run.")
        data = work / "requests.txt"
        mix = workload(
            project
            or Project(work, work, work, {c: ["1.0.1", "1.0.2"] for c in CHANNELS}, "sealed"),
            data,
        )
        try:
            if project is not None:
                if tools.pg_bin is None:
                    notes.append(f"no PostgreSQL found ({APT_PG}): its rows were not run.")
                else:
                    pg = Postgres(tools.pg_bin, work)
                    pg.start()
            everyone = contenders(tools, work, project, pg)
            if args.only:
                everyone = [c for c in everyone if any(o in f"{c.name} {c.db}" for o in args.only)]
            for rep in range(args.repeat):
                busy = wait_for_quiet(args.quiet_wait)
                print(f"repeat {rep + 1}/{args.repeat} (others use {busy:.2f} cores)", flush=True)
                for c in everyone:
                    run_one(c, tools, data, args.duration, args.quiet_wait)
            facts = versions(tools, pg)
        finally:
            if pg is not None:
                pg.stop()
        rows = [c.row() for c in everyone]
        doc: dict[str, object] = {
            "command": " ".join(["python", "bench/serve_load.py", *sys.argv[1:]]),
            "machine": machine(),
            "versions": facts,
            "formats": project.formats if project else "—",
            "duration": args.duration,
            "repeats": args.repeat,
            "mix": asdict(mix),
            "rows": rows,
            "targets": [asdict(t) for t in targets(rows)],
            "notes": notes,
            "sample_answers": samples,
        }
    (OUT / "serve-results.json").write_text(json.dumps(doc, indent=2) + "\n")
    report = render(doc)
    (OUT / "serve-results.md").write_text(report)
    print()
    print(report)
    return 1 if any(r["not_2xx"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
