"""otaseal's benchmark: publish and fetch side by side with Capgo's CLI and a single-core floor.

    python bench/run.py            # monaco, 50 MB and 500 MB builds, 3 repeats (make bench)
    python bench/run.py --quick    # monaco and 50 MB, 1 repeat: a smoke check
    BENCH_REPEAT=5 python bench/run.py

For each input, each repeat runs the contenders in turn (otaseal publish, Capgo's CLI, the floor,
otaseal fetch as a command, the device step in-process, the device floor), so machine noise hits
all of them alike; the figures are medians and the comparisons are ratios within this one run.
The device target is judged on the in-process figure (bench/device_inproc.py times only
``check_for_update``); the CLI's wall time, which adds interpreter start-up and imports, is shown
beside it. Results go to bench/out/results.md and .json. The
targets of issue 5 are checked and printed as PASS/FAIL; a missed target does not fail the run
(exit 0), a contender that errors does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import contenders
import inputs

if TYPE_CHECKING:
    from collections.abc import Callable

OUT = inputs.HERE / "out"
WORK = inputs.CACHE / "work"
TRASH = inputs.TRASH
MB = 1_000_000
RSS_LIMIT = 150 * MB
DEVICE_TARGET = 150.0  # MB/s of plaintext, judged on the in-process device figure
CAPGO_TARGET = 3.0
FLOOR_TARGET = 1.0
GATED = ("monaco", "web-50mb")  # inputs the publish-speed targets apply to
QUIET_LIMIT = 0.3  # cores other processes may use before a repeat starts
RECENTLY_DELETED_S = 365  # ext4 without a journal avoids inodes freed in the last 60-360 s
DELETED_AT = inputs.CACHE / "deleted-at"  # when the harness last deleted outputs (epoch seconds)


def discard(path: Path) -> None:
    """Move ``path`` into the trash, which is emptied only when nothing is timed any more.

    On an ext4 file system without a journal (this VM's), the inode allocator passes over every
    inode freed in the last 60 s (300 s more while its inode table block is dirty), looking each
    one up as it goes: the kernel's ``recently_deleted()``. Deleting the 5,000 files of one step
    right before the next step created 5,000 more made each new file cost 0.3-0.5 ms of kernel
    time instead of ~0.03 ms, so a step's figure depended on what the harness had just deleted.
    A rename frees no inode.
    """
    TRASH.mkdir(parents=True, exist_ok=True)
    path.rename(TRASH / f"{time.monotonic_ns()}-{path.name}")


def remove_outputs() -> None:
    """Delete the work folder and the trash, and note when, for the next run's wait."""
    if TRASH.exists() or WORK.exists():
        shutil.rmtree(TRASH, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)
        DELETED_AT.write_text(f"{time.time():.0f}\n")


def empty_trash() -> None:
    """Delete what earlier runs left, then wait until no deletion of ours is recent.

    A ``sync`` right after a large delete did not end the slow-down here, so the wait covers the
    kernel's longer window, counted from the last deletion (this run's or a previous run's).
    """
    remove_outputs()
    try:
        since = time.time() - float(DELETED_AT.read_text())
    except (OSError, ValueError):
        return
    if since < RECENTLY_DELETED_S:
        wait = RECENTLY_DELETED_S - since
        print(f"  waiting {wait:.0f} s: outputs were deleted {since:.0f} s ago", flush=True)
        time.sleep(wait)


@dataclass
class Figures:
    """Every repeat's measurements for one input."""

    name: str
    files: int
    total_bytes: int
    note: str
    publish_s: list[float] = field(default_factory=list)
    publish_rss: list[int] = field(default_factory=list)
    capgo_s: list[float] = field(default_factory=list)
    capgo_zip_s: list[float] = field(default_factory=list)
    capgo_encrypt_s: list[float] = field(default_factory=list)
    capgo_rss: list[int] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    floor_rss: list[int] = field(default_factory=list)
    fetch_s: list[float] = field(default_factory=list)
    fetch_rss: list[int] = field(default_factory=list)
    device_inproc_s: list[float] = field(default_factory=list)
    device_inproc_process_s: list[float] = field(default_factory=list)
    device_inproc_rss: list[int] = field(default_factory=list)
    device_floor_s: list[float] = field(default_factory=list)
    background: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        med = statistics.median
        publish, capgo, floor, fetch = (
            med(self.publish_s),
            med(self.capgo_s),
            med(self.floor_s),
            med(self.fetch_s),
        )
        unpacked = self.sizes["unpacked"]
        return {
            "input": self.name,
            "note": self.note,
            "files": self.files,
            "bytes": self.total_bytes,
            "repeats": len(self.publish_s),
            "background_cores_before_each_repeat": self.background,
            "median_seconds": {
                "otaseal_publish": publish,
                "capgo_cli": capgo,
                "capgo_bundle_zip": med(self.capgo_zip_s),
                "capgo_bundle_encrypt": med(self.capgo_encrypt_s),
                "floor": floor,
                "otaseal_fetch": fetch,
                "device_inproc": med(self.device_inproc_s),
                "device_inproc_process": med(self.device_inproc_process_s),
                "device_floor": med(self.device_floor_s),
            },
            "ratios": {
                "capgo_over_otaseal_publish": capgo / publish,
                "floor_over_otaseal_publish": floor / publish,
            },
            "fetch_mb_per_s": unpacked / MB / fetch,
            "device_inproc_mb_per_s": unpacked / MB / med(self.device_inproc_s),
            "device_floor_mb_per_s": unpacked / MB / med(self.device_floor_s),
            "peak_rss_bytes": {
                "otaseal_publish": max(self.publish_rss),
                "otaseal_fetch": max(self.fetch_rss),
                "device_inproc_process": max(self.device_inproc_rss),
                "capgo_cli": max(self.capgo_rss),
                "floor": max(self.floor_rss),
            },
            "output_bytes": dict(self.sizes),
            "samples_seconds": {
                "otaseal_publish": self.publish_s,
                "capgo_cli": self.capgo_s,
                "floor": self.floor_s,
                "otaseal_fetch": self.fetch_s,
                "device_inproc": self.device_inproc_s,
                "device_inproc_process": self.device_inproc_process_s,
                "device_floor": self.device_floor_s,
            },
        }


def busy_elsewhere(seconds: float = 1.0) -> float:
    """Cores' worth of CPU that other processes used over ``seconds`` (we are idle meanwhile)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    cores = len(os.sched_getaffinity(0))
    return cores * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than ``limit`` cores."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_elsewhere()
        if busy < limit or time.monotonic() >= deadline:
            return busy
        print(f"    waiting: other processes use {busy:.1f} cores", flush=True)


def bench_input(
    inp: inputs.Input, cli: Path, template: Path, repeats: int, quiet_wait: float
) -> Figures:
    """All contenders on one input, interleaved, ``repeats`` times."""
    fig = Figures(inp.name, inp.files, inp.total_bytes, inp.note)
    for rep in range(repeats):
        busy = wait_for_quiet(QUIET_LIMIT, quiet_wait)
        fig.background.append(busy)
        print(f"  {inp.name}: repeat {rep + 1}/{repeats} (others use {busy:.2f} cores)", flush=True)
        work = WORK / f"{inp.name}-{rep}"
        work.mkdir(parents=True)
        try:
            os.sync()  # what earlier steps wrote is not flushed on the next one's clock
            published = contenders.otaseal_publish(inp.path, work)
            fig.publish_s.append(published.run.seconds)
            fig.publish_rss.append(published.run.max_rss)
            os.sync()
            capgo = contenders.capgo_publish(cli, template, inp.path, work)
            fig.capgo_s.append(capgo.seconds)
            fig.capgo_zip_s.append(capgo.zip_run.seconds)
            fig.capgo_encrypt_s.append(capgo.encrypt_run.seconds)
            fig.capgo_rss.append(capgo.max_rss)
            discard(work / "capgo")
            os.sync()
            floor, floor_size = contenders.floor(inp.path, work)
            fig.floor_s.append(floor.seconds)
            fig.floor_rss.append(floor.max_rss)
            os.sync()
            fetched = contenders.otaseal_fetch(published, work)
            fig.fetch_s.append(fetched.seconds)
            fig.fetch_rss.append(fetched.max_rss)
            discard(work / "device")
            os.sync()
            inproc, inproc_s = contenders.device_inproc(published, work)
            fig.device_inproc_s.append(inproc_s)
            fig.device_inproc_process_s.append(inproc.seconds)
            fig.device_inproc_rss.append(inproc.max_rss)
            discard(work / "device-inproc")
            os.sync()
            fig.device_floor_s.append(contenders.device_floor(work).seconds)
            fig.sizes = {
                "unpacked": published.unpacked_size,
                "otaseal_zip": published.plaintext_size,
                "otaseal_sealed": published.bundle_size,
                "capgo_encrypted": capgo.encrypted_size,
                "floor_encrypted": floor_size,
            }
        finally:
            discard(work)
    return fig


def prepare_environment() -> None:
    """Let otaseal's modules keep their bytecode, as an installed package does.

    With PYTHONDONTWRITEBYTECODE set (some CI images and sandboxes set it) an editable install
    recompiles otaseal's sources on every command, about 0.1 s that no pip-installed copy pays.
    The bytecode goes to bench/.cache/pycache, never into src/.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(inputs.CACHE / "pycache")


def warm_up(cli: Path, template: Path) -> None:
    """One untimed round on the small example build: bytecode, page cache, node's modules."""
    example = inputs.Input("warm-up", contenders.ROOT / "examples" / "web", 0, 0, "")
    work = WORK / "warm-up"
    work.mkdir()
    published = contenders.otaseal_publish(example.path, work)
    contenders.otaseal_fetch(published, work)
    contenders.device_inproc(published, work)
    contenders.capgo_publish(cli, template, example.path, work)
    contenders.startup([str(contenders.OTASEAL), "--version"], WORK)
    discard(work)


def load() -> str:
    """Load average and CPU pressure: other processes on the machine skew every figure."""
    avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    pressure = Path("/proc/pressure/cpu")
    some = ""
    if pressure.is_file():
        some = pressure.read_text().splitlines()[0].split()[1].replace("avg10=", "")
        some = f", CPU pressure {some} %"
    return f"load {avg}{some}"


# What `otaseal fetch` imports before it verifies anything (cli, client and what they pull in).
FETCH_IMPORTS = (
    "import otaseal.cli, otaseal.client, otaseal.archive, otaseal.formats.sealed, "
    "otaseal.crypto, otaseal.secrets, otaseal.operations, otaseal.store.folder"
)


def bench_startup(runs: int) -> dict[str, object]:
    """``otaseal --version`` and fetch's imports against ``python -c pass``, interleaved."""
    python = [sys.executable, "-c", "pass"]
    version = [str(contenders.OTASEAL), "--version"]
    imports = [sys.executable, "-c", FETCH_IMPORTS]
    bare: list[float] = []
    cli: list[float] = []
    fetch: list[float] = []
    for _ in range(runs):
        bare.append(contenders.startup(python, WORK))
        cli.append(contenders.startup(version, WORK))
        fetch.append(contenders.startup(imports, WORK))
    b, c, f = statistics.median(bare), statistics.median(cli), statistics.median(fetch)
    return {
        "runs": runs,
        "python_c_pass_ms": b * 1000,
        "otaseal_version_ms": c * 1000,
        "ratio": c / b,
        "import_overhead_ms": (c - b) * 1000,
        "fetch_imports_ms": f * 1000,
    }


# --- targets and report --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 5 on one input."""

    name: str
    measured: str
    passed: bool


def targets(summaries: list[dict[str, object]]) -> list[Target]:
    """Issue 5, point 3, checked against this run."""
    found: list[Target] = []
    for s in summaries:
        name = str(s["input"])
        ratios = s["ratios"]
        rss = s["peak_rss_bytes"]
        assert isinstance(ratios, dict)
        assert isinstance(rss, dict)
        if name in GATED:
            capgo = ratios["capgo_over_otaseal_publish"]
            floor = ratios["floor_over_otaseal_publish"]
            found.append(
                Target(
                    f"{name}: publish >= {CAPGO_TARGET:g}x faster than Capgo CLI",
                    f"{capgo:.2f}x",
                    capgo >= CAPGO_TARGET,
                )
            )
            found.append(
                Target(
                    f"{name}: publish no slower than zip+openssl floor",
                    f"floor/otaseal = {floor:.2f}",
                    floor >= FLOOR_TARGET,
                )
            )
        for what in ("otaseal_publish", "otaseal_fetch"):
            peak = rss[what]
            found.append(
                Target(
                    f"{name}: {what.replace('_', ' ')} peak RSS < {RSS_LIMIT // MB} MB",
                    f"{peak / MB:.0f} MB",
                    peak < RSS_LIMIT,
                )
            )
        speed = float(str(s["device_inproc_mb_per_s"]))
        found.append(
            Target(
                f"{name}: device verify+decrypt+extract >= {DEVICE_TARGET:g} MB/s in-process",
                f"{speed:.0f} MB/s",
                speed >= DEVICE_TARGET,
            )
        )
    return found


def machine_facts() -> dict[str, str]:
    """What ran this benchmark."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    os_name = platform.system()
    release = Path("/etc/os-release")
    if release.is_file():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0))),
        "ram": mem,
        "os": f"{os_name}, Linux {platform.release()}",
        "python": platform.python_version(),
        "node": _first_line(["node", "--version"]),
        "zip": _first_line(["zip", "-v"], line=1),
        "openssl": _first_line(["openssl", "version"]),
        "capgo_cli": inputs.CAPGO_VERSION,
        "monaco_editor": inputs.MONACO_VERSION,
        "otaseal_commit": _commit(),
        "network": "none (unshare -n)" if contenders.offline_prefix() else "not isolated",
        "peak_rss": contenders.rss_method(),
    }


def _first_line(argv: list[str], line: int = 0) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not found"
    lines = out.strip().splitlines()
    return lines[line].strip() if len(lines) > line else "unknown"


def _commit() -> str:
    root = contenders.ROOT
    head = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "src"], check=False
    ).returncode
    return head + (" + uncommitted changes in src/" if dirty else "")


def _mb(value: object) -> str:
    return f"{float(str(value)) / MB:.1f}"


def render(doc: dict[str, object]) -> str:
    """The markdown report: machine, table, start-up, targets."""
    machine = doc["machine"]
    summaries = doc["inputs"]
    startup = doc["startup"]
    found = doc["targets"]
    assert isinstance(machine, dict)
    assert isinstance(summaries, list)
    assert isinstance(startup, dict)
    assert isinstance(found, list)
    lines = [
        (
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram']} RAM; "
            f"{machine['os']}; Python {machine['python']}; Node {machine['node']}; "
            f"{machine['zip']}; {machine['openssl']}; network {machine['network']}; "
            f"peak RSS by {machine['peak_rss']}."
        ),
        (
            f"Date: {machine['date']}. otaseal {machine['otaseal_commit']}, Capgo CLI "
            f"{machine['capgo_cli']}, monaco-editor {machine['monaco_editor']}. "
            f"Medians of {doc['repeats']} interleaved repeats; MB = 10^6 bytes. "
            f"Machine {machine['load_before']} before, {machine['load_after']} after."
        ),
        "",
        (
            "| input | files | size MB | Capgo CLI ÷ otaseal publish | floor ÷ otaseal publish "
            "| device MB/s (in-process) | fetch MB/s (CLI wall) | device floor MB/s "
            "| peak RSS publish / fetch MB "
            "| median s: publish · Capgo · floor · fetch CLI · device in-process · device floor |"
        ),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summaries:
        med, ratios, rss = s["median_seconds"], s["ratios"], s["peak_rss_bytes"]
        lines.append(
            f"| {s['input']} | {s['files']} | {_mb(s['bytes'])} "
            f"| **{ratios['capgo_over_otaseal_publish']:.2f}×** "
            f"| **{ratios['floor_over_otaseal_publish']:.2f}×** "
            f"| **{s['device_inproc_mb_per_s']:.0f}** "
            f"| {s['fetch_mb_per_s']:.0f} "
            f"| {s['device_floor_mb_per_s']:.0f} "
            f"| {_mb(rss['otaseal_publish'])} / {_mb(rss['otaseal_fetch'])} "
            f"| {med['otaseal_publish']:.2f} · {med['capgo_cli']:.2f} · {med['floor']:.2f} "
            f"· {med['otaseal_fetch']:.2f} · {med['device_inproc']:.2f} "
            f"· {med['device_floor']:.2f} |"
        )
    lines += [
        "",
        (
            "device MB/s (in-process) = unpacked size ÷ the time of `check_for_update` alone "
            "(bench/device_inproc.py); fetch MB/s (CLI wall) = unpacked size ÷ the wall time of "
            "the whole `otaseal fetch` process, interpreter start-up and imports included; "
            "device floor = `sha256sum` + `openssl enc -d` + `unzip` of the floor's output."
        ),
        "",
        (
            "| input | otaseal zip MB | otaseal sealed MB | Capgo encrypted MB "
            "| floor encrypted MB | Capgo zip · encrypt s | peak RSS Capgo / floor MB "
            "| other processes, cores |"
        ),
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summaries:
        sizes, med, rss = s["output_bytes"], s["median_seconds"], s["peak_rss_bytes"]
        lines.append(
            f"| {s['input']} | {_mb(sizes['otaseal_zip'])} | {_mb(sizes['otaseal_sealed'])} "
            f"| {_mb(sizes['capgo_encrypted'])} | {_mb(sizes['floor_encrypted'])} "
            f"| {med['capgo_bundle_zip']:.2f} · {med['capgo_bundle_encrypt']:.2f} "
            f"| {_mb(rss['capgo_cli'])} / {_mb(rss['floor'])} "
            f"| ≤ {max(s['background_cores_before_each_repeat']):.2f} |"
        )
    lines += [
        "",
        (
            f"Start-up (median of {startup['runs']}): `otaseal --version` "
            f"{startup['otaseal_version_ms']:.0f} ms vs `python -c pass` "
            f"{startup['python_c_pass_ms']:.0f} ms: **{startup['ratio']:.2f}×**, "
            f"{startup['import_overhead_ms']:.0f} ms of imports and argument parsing. "
            "A process that only imports what `otaseal fetch` loads (cli, client, archive, "
            "sealed, crypto, secrets, operations, store.folder): "
            f"{startup['fetch_imports_ms']:.0f} ms."
        ),
        "",
        "| target (issue 5) | measured | result |",
        "|---|--:|---|",
    ]
    lines += [
        f"| {t['name']} | {t['measured']} | {'PASS' if t['passed'] else '**FAIL**'} |"
        for t in found
    ]
    passed = sum(1 for t in found if t["passed"])
    lines += ["", f"{passed} of {len(found)} targets met."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="monaco and 50 MB, 1 repeat")
    parser.add_argument(
        "--repeat",
        type=int,
        default=int(os.environ.get("BENCH_REPEAT", "3")),
        help="repeats per contender (default 3, or $BENCH_REPEAT)",
    )
    parser.add_argument(
        "--startup-runs", type=int, default=20, help="runs of each start-up command"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=float(os.environ.get("BENCH_QUIET_WAIT", "120")),
        help="seconds to wait for other processes to go quiet before each repeat (default 120)",
    )
    parser.add_argument("--only", help="comma-separated input names (monaco,web-50mb,web-500mb)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else max(1, args.repeat)
    names = ["monaco", "web-50mb"] if args.quick else ["monaco", "web-50mb", "web-500mb"]
    if args.only:
        names = [n for n in args.only.split(",") if n]
    makers: dict[str, Callable[[], inputs.Input]] = {
        "monaco": inputs.monaco,
        "web-50mb": lambda: inputs.synthetic(inputs.SMALL),
        "web-500mb": lambda: inputs.synthetic(inputs.LARGE),
    }
    unknown = sorted(set(names) - makers.keys())
    if unknown:
        parser.error(f"unknown input(s) {', '.join(unknown)}; known: {', '.join(makers)}")

    prepare_environment()
    cli = inputs.capgo_cli()
    chosen = [makers[n]() for n in names]
    empty_trash()
    WORK.mkdir(parents=True)
    template = contenders.capgo_template(cli, WORK)
    warm_up(cli, template)
    machine = machine_facts()
    machine["load_before"] = load()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; repeats: {repeats}", flush=True)
    print(f"  {machine['load_before']}", flush=True)
    if busy_elsewhere() > QUIET_LIMIT:
        print("  warning: other processes are using the CPU; figures will be noisy", flush=True)

    summaries = []
    for inp in chosen:
        print(f"{inp.name}: {inp.files} files, {inp.total_bytes / MB:.1f} MB", flush=True)
        summaries.append(bench_input(inp, cli, template, repeats, args.quiet_wait).summary())
    print("start-up ...", flush=True)
    wait_for_quiet(QUIET_LIMIT, args.quiet_wait)
    startup = bench_startup(args.startup_runs)
    remove_outputs()
    machine["load_after"] = load()

    found = targets(summaries)
    doc: dict[str, object] = {
        "machine": machine,
        "repeats": repeats,
        "commands": {
            "otaseal_publish": "otaseal publish DIR --channel beta --json  (fresh `otaseal init`)",
            "capgo_cli": "capgo bundle zip APP --path DIR --bundle 1.0.0 --json --no-code-check; "
            "capgo bundle encrypt ZIP SHA256 --key .capgo_key_v2 --json",
            "floor": contenders.floor_script(Path("OUT")),
            "device_floor": contenders.device_floor_script(Path("OUT")),
            "otaseal_fetch": "otaseal fetch --store STORE --app APP --channel beta "
            "--root root.json --decryption-key KEY --state FRESH --install-id ID --out FRESH "
            "--json",
            "device_inproc": "python bench/device_inproc.py --project PROJECT --app APP "
            "--channel beta --state FRESH --out FRESH --install-id ID  (times only "
            "otaseal.client.check_for_update)",
        },
        "inputs": summaries,
        "startup": startup,
        "targets": [{"name": t.name, "measured": t.measured, "passed": t.passed} for t in found],
    }
    report = render(doc)
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (OUT / "results.md").write_text(report)
    print()
    print(report)
    failed = [t for t in found if not t.passed]
    if failed:
        print(f"TARGETS MISSED: {len(failed)} of {len(found)} (see FAIL rows above)")
    else:
        print(f"ALL {len(found)} TARGETS MET")
    print(f"written to {OUT / 'results.md'} and {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
