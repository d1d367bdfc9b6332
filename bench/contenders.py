"""The contenders and how each is timed: one subprocess (or one shell pipeline) per measurement.

Every measurement is a fresh process: wall time comes from ``time.perf_counter`` around it,
peak RSS from GNU ``time -f %M`` (the largest resident set of the command and of the
descendants it waited for). Set-up that a user would not repeat (``otaseal init``,
Capgo's ``key create``) is done before the clock starts. When ``unshare -n`` works, every
contender runs without a network, as Capgo's CLI would otherwise make a best-effort request to
the npm registry for its latest version.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
OTASEAL = VENV_BIN / "otaseal"
APP_ID = "com.example.bench"
CAPGO_UPDATER = "8.51.23"  # the 8.x plugin the CLI must detect to emit V3 checksums
FLOOR_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
FLOOR_IV = "0f0e0d0c0b0a09080706050403020100"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured process: wall seconds, peak RSS in bytes, exit code, what it printed."""

    seconds: float
    max_rss: int
    returncode: int
    stdout: str
    stderr: str


class BenchError(Exception):
    """A contender failed; the message says which command and shows its stderr."""


@functools.cache
def offline_prefix() -> tuple[str, ...]:
    """``("unshare", "-n")`` when this user may drop the network, else nothing."""
    if shutil.which("unshare") is None:
        return ()
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ("unshare", "-n") if probe.returncode == 0 else ()


TIME = Path("/usr/bin/time")
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def rss_method() -> str:
    """How peak RSS is taken: GNU time, or a small fork-and-wait4 launcher."""
    if TIME.is_file():
        return "/usr/bin/time -f %M"
    return "wait4 in a python -S launcher (adds up to its own ~8 MB)"


def measure(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    offline: bool = True,
    rss: bool = True,
) -> Run:
    """Run ``argv`` once with stdin from /dev/null; time it and take its peak RSS.

    The peak RSS comes from a small process between us and ``argv`` (GNU time, or a launcher):
    a child's ``ru_maxrss`` includes the memory of the process it was forked from, so asking
    the kernel about our own child would report at least this harness's size.
    """
    full_env = {**os.environ, **(env or {})}
    argv = [*(offline_prefix() if offline else ()), *argv]
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        if rss and TIME.is_file():
            argv = [str(TIME), "-f", "%M", "-o", str(rss_file), *argv]
        elif rss:
            argv = [sys.executable, "-S", "-c", _LAUNCHER, str(rss_file), *argv]
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out.open("wb") as out_f, err.open("wb") as err_f:
            start = time.perf_counter()
            returncode = subprocess.run(
                argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out_f,
                stderr=err_f,
                check=False,
            ).returncode
            seconds = time.perf_counter() - start
        stdout = out.read_text(errors="replace")
        stderr = err.read_text(errors="replace")
        max_rss = int(rss_file.read_text().split()[-1]) * 1024 if rss else 0
    run = Run(seconds, max_rss, returncode, stdout, stderr)
    if check and run.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` in {cwd} exited {run.returncode}:\n{stderr[-2000:]}")
    return run


def _json_of(run: Run, what: str) -> dict[str, object]:
    """The last JSON object a command printed (Capgo pretty-prints; otaseal prints one line)."""
    text = run.stdout.strip()
    start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    try:
        doc = json.loads(text[start:])
    except ValueError:
        raise BenchError(f"{what} printed no JSON: {text[-500:]!r}") from None
    if not isinstance(doc, dict):
        raise BenchError(f"{what} printed {doc!r}, not a JSON object")
    return doc


# --- otaseal -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Published:
    """A publish: its run, the project it went to, and what the CLI reported."""

    run: Run
    project: Path
    bundle_size: int
    plaintext_size: int
    unpacked_size: int


def otaseal_init(work: Path) -> Path:
    """A fresh otaseal project (keys, root.json, folder store) in ``work``; not timed."""
    project = work / "project"
    subprocess.run(
        [str(OTASEAL), "init", "--app", APP_ID, "--dir", str(project), "--json"],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return project


def otaseal_publish(build: Path, work: Path) -> Published:
    """``otaseal publish BUILD --channel beta --json`` in a fresh project."""
    project = otaseal_init(work)
    run = measure([str(OTASEAL), "publish", str(build), "--channel", "beta", "--json"], cwd=project)
    doc = _json_of(run, "otaseal publish")
    return Published(
        run,
        project,
        int(str(doc["bundle_size"])),
        int(str(doc["plaintext_size"])),
        int(str(doc["unpacked_size"])),
    )


def fetch_args(project: Path, device: Path) -> list[str]:
    """``otaseal fetch ...`` arguments for a fresh device reading ``project``'s store."""
    return [
        "fetch",
        "--store",
        str(project / "store"),
        "--app",
        APP_ID,
        "--channel",
        "beta",
        "--root",
        str(project / "root.json"),
        "--decryption-key",
        str(project / "keys" / "app-decryption.pem"),
        "--state",
        str(device / "state"),
        "--install-id",
        "bench-device",
        "--out",
        str(device / "www"),
        "--json",
    ]


def otaseal_fetch(published: Published, work: Path) -> Run:
    """``otaseal fetch`` as a device with a fresh state dir: verify, decrypt, extract."""
    device = work / "device"
    device.mkdir()
    project = published.project
    run = measure(
        [
            str(OTASEAL),
            *fetch_args(project, device),
        ],
        cwd=device,
    )
    status = _json_of(run, "otaseal fetch").get("status")
    if status != "installed":
        raise BenchError(f"otaseal fetch reported {status!r}, not 'installed'")
    return run


DEVICE_INPROC = Path(__file__).resolve().parent / "device_inproc.py"


def device_inproc(published: Published, work: Path) -> tuple[Run, float]:
    """``bench/device_inproc.py``: the run, and the seconds of ``check_for_update`` alone.

    The process is started, imports otaseal and loads the root and the decryption key before its
    clock starts, so the figure leaves out what a device app does not pay per update.
    """
    device = work / "device-inproc"
    device.mkdir()
    run = measure(
        [
            sys.executable,
            str(DEVICE_INPROC),
            "--project",
            str(published.project),
            "--app",
            APP_ID,
            "--channel",
            "beta",
            "--state",
            str(device / "state"),
            "--out",
            str(device / "www"),
            "--install-id",
            "bench-device",
        ],
        cwd=device,
    )
    doc = _json_of(run, "bench/device_inproc.py")
    if doc.get("status") != "installed":
        raise BenchError(f"device_inproc.py reported {doc.get('status')!r}, not 'installed'")
    return run, float(str(doc["seconds"]))


# --- Capgo's CLI ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CapgoResult:
    """``bundle zip`` then ``bundle encrypt``: both runs and the encrypted file's size."""

    zip_run: Run
    encrypt_run: Run
    encrypted_size: int

    @property
    def seconds(self) -> float:
        """Wall time of the two commands."""
        return self.zip_run.seconds + self.encrypt_run.seconds

    @property
    def max_rss(self) -> int:
        """The larger peak of the two processes."""
        return max(self.zip_run.max_rss, self.encrypt_run.max_rss)


def capgo_template(cli: Path, work: Path) -> Path:
    """A Capgo project dir (§8 of the interop reference) with an RSA key; made once per run."""
    template = work / "capgo-template"
    if (template / ".capgo_key_v2").is_file():
        return template
    shutil.rmtree(template, ignore_errors=True)
    updater = template / "node_modules" / "@capgo" / "capacitor-updater"
    updater.mkdir(parents=True)
    (updater / "package.json").write_text(
        json.dumps({"name": "@capgo/capacitor-updater", "version": CAPGO_UPDATER})
    )
    (template / "package.json").write_text(
        json.dumps(
            {
                "name": "bench",
                "version": "1.0.0",
                "dependencies": {"@capgo/capacitor-updater": CAPGO_UPDATER},
            }
        )
    )
    (template / "capacitor.config.json").write_text(
        json.dumps({"appId": APP_ID, "appName": "bench", "webDir": "dist"})
    )
    measure([str(cli), "key", "create"], cwd=template, env=capgo_env())
    if not (template / ".capgo_key_v2").is_file():
        raise BenchError(f"capgo key create wrote no .capgo_key_v2 in {template}")
    return template


def capgo_env() -> dict[str, str]:
    """No telemetry from Capgo's CLI."""
    return {"CAPGO_DISABLE_TELEMETRY": "true"}


def capgo_publish(cli: Path, template: Path, build: Path, work: Path) -> CapgoResult:
    """``capgo bundle zip`` then ``capgo bundle encrypt`` in a throwaway copy of the template."""
    project = work / "capgo"
    shutil.copytree(template, project)
    zipped = measure(
        [
            str(cli),
            "bundle",
            "zip",
            APP_ID,
            "--path",
            str(build),
            "--bundle",
            "1.0.0",
            "--json",
            "--no-code-check",
        ],
        cwd=project,
        env=capgo_env(),
    )
    doc = _json_of(zipped, "capgo bundle zip")
    filename, checksum = str(doc["filename"]), str(doc["checksum"])
    encrypted = measure(
        [str(cli), "bundle", "encrypt", filename, checksum, "--key", ".capgo_key_v2", "--json"],
        cwd=project,
        env=capgo_env(),
    )
    out = project / str(_json_of(encrypted, "capgo bundle encrypt")["filename"])
    return CapgoResult(zipped, encrypted, out.stat().st_size)


# --- the single-core floor -----------------------------------------------------------------------
def floor_script(out: Path) -> str:
    """zip -6 of the build, AES-256-CTR of the zip, SHA-256 of the ciphertext: one pipeline."""
    return (
        f"zip -r -6 -q {out}/floor.zip . && "
        f"openssl enc -aes-256-ctr -K {FLOOR_KEY} -iv {FLOOR_IV} "
        f"-in {out}/floor.zip -out {out}/floor.enc && "
        f"sha256sum {out}/floor.enc"
    )


def floor(build: Path, work: Path) -> tuple[Run, int]:
    """The floor pipeline run in ``build``; returns the run and the ciphertext size."""
    out = work / "floor"
    out.mkdir()
    run = measure(["sh", "-c", floor_script(out)], cwd=build)
    return run, (out / "floor.enc").stat().st_size


def device_floor_script(out: Path) -> str:
    """The device side of the floor: hash the ciphertext, decrypt it, unzip it (reference only)."""
    return (
        f"sha256sum {out}/floor.enc && "
        f"openssl enc -d -aes-256-ctr -K {FLOOR_KEY} -iv {FLOOR_IV} "
        f"-in {out}/floor.enc -out {out}/plain.zip && "
        f"unzip -q {out}/plain.zip -d {out}/www"
    )


def device_floor(work: Path) -> Run:
    """``device_floor_script`` on what :func:`floor` left in ``work``."""
    out = work / "floor"
    return measure(["sh", "-c", device_floor_script(out)], cwd=out)


# --- start-up ------------------------------------------------------------------------------------
def startup(argv: Sequence[str], cwd: Path) -> float:
    """Wall time of one short command (network left alone: ``unshare`` costs milliseconds)."""
    return measure(argv, cwd=cwd, offline=False, rss=False).seconds
