"""Delta benchmark (issue 13): the bytes a device downloads per update, full against delta.

    python bench/delta.py                       # all three cases, 5 repetitions (make bench-delta)
    python bench/delta.py --cases one-line --repeat 3
    python bench/delta.py --chunks 12 --chunk-kb 1-3 --cases one-line,index-only   # a smoke run

For each update (base release -> target release) it puts side by side, from the same two trees:
the full sealed bundle (``.cub``), our sealed delta (the sealed patch ``.cub``, SPEC §19), our
Capgo manifest mode (the stored bodies of the target's files the device does not have, as
``formats/capgo_files.build`` makes them) and Capgo's own CLI ``bundle upload --delta``
selection, computed offline by its rules (``capgo_select``). Then, alternating in each
repetition so machine noise hits both alike, it times publishing (pack + seal the full bundle,
against make the patch + seal it) and the device (install the release from its full ``.cub``,
against apply the patch to the installed base), both ending in the same verified tree.

The cases are in ``delta_trees``; monaco needs ``npm pack`` once (network), the others are
generated. Results go to bench/out/delta.md and .json; the issue's targets print as PASS/FAIL
(a missed target does not fail the run; a step that errors does).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import brotli
import capgo_select
import cryptography
import delta_api
import delta_trees
import zstandard

from otaseal.archive import Index, pack
from otaseal.crypto import generate_capgo_key, generate_decryption_key
from otaseal.formats.sealed import SealWriter, seal_file
from otaseal.model import Delta, Patch, Release
from otaseal.store import bundle_key
from otaseal.store.folder import FolderStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from otaseal.crypto import CapgoPrivateKey, DecryptionKey

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "delta"
OUT = HERE / "out"
APP = "com.example.bench"
CASES = ("monaco", "one-line", "index-only")
KB = 1_000
# The targets of issue 13, judged on the one-line case (bytes) and on every case (apply time).
FULL_SHARE_TARGET = 0.01  # sealed delta < 1 % of the full sealed bundle
CAPGO_SHARE_TARGET = 0.1  # sealed delta < 1/10 of our Capgo manifest mode
APPLY_RATIO_TARGET = 1.0  # delta apply time <= full install time


class BenchError(Exception):
    """A step of the benchmark failed (not a missed target): the run stops, exit 1."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A packed and sealed release: its files on disk and the entry a manifest would sign."""

    cub: Path
    index_json: bytes
    release: Release

    @property
    def index(self) -> Index:
        return Index.from_json(self.index_json)


@dataclass(frozen=True, slots=True)
class SealedPatch:
    """A sealed patch on disk and its entry in the target release's ``delta``."""

    cub: Path
    patch: Patch


@dataclass
class Result:
    """Everything measured for one case."""

    case: str
    note: str
    files: int
    unpacked: int
    full_bytes: int = 0
    delta_bytes: int = 0
    delta_plaintext: int = 0
    delta_changed: int = 0
    capgo_ours_bytes: int = 0
    capgo_ours_files: int = 0
    capgo_cli_bytes: int = 0
    capgo_cli_files: int = 0
    capgo_reply_bytes: int = 0
    publish_full_s: list[float] = field(default_factory=list)
    publish_delta_s: list[float] = field(default_factory=list)
    base_extract_s: float = 0.0
    install_full_s: list[float] = field(default_factory=list)
    apply_delta_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        med = statistics.median
        return {
            "case": self.case,
            "note": self.note,
            "files": self.files,
            "unpacked_bytes": self.unpacked,
            "bytes": {
                "full_sealed": self.full_bytes,
                "sealed_delta": self.delta_bytes,
                "sealed_delta_plaintext": self.delta_plaintext,
                "capgo_manifest_ours": self.capgo_ours_bytes,
                "capgo_cli_delta": self.capgo_cli_bytes,
                "capgo_reply_manifest": self.capgo_reply_bytes,
            },
            "files_downloaded": {
                "sealed_delta_changed": self.delta_changed,
                "capgo_manifest_ours": self.capgo_ours_files,
                "capgo_cli_delta": self.capgo_cli_files,
            },
            "seconds_median": {
                "publish_full": med(self.publish_full_s),
                "publish_delta": med(self.publish_delta_s),
                "publish_base_extract": self.base_extract_s,
                "install_full": med(self.install_full_s),
                "apply_delta": med(self.apply_delta_s),
            },
            "seconds_all": {
                "publish_full": self.publish_full_s,
                "publish_delta": self.publish_delta_s,
                "install_full": self.install_full_s,
                "apply_delta": self.apply_delta_s,
            },
            "apply_ratio": med(self.apply_delta_s) / med(self.install_full_s),
            "publish_ratio": med(self.publish_delta_s) / med(self.publish_full_s),
        }


# --- publishing ----------------------------------------------------------------------------------
def seal_build(build_dir: Path, dest: Path, key: DecryptionKey, *, counter: int) -> Sealed:
    """``otaseal publish``'s bundle steps: pack ``build_dir`` deterministically, then seal it."""
    dest.mkdir(parents=True)
    zip_path, cub = dest / "bundle.zip", dest / "bundle.cub"
    with zip_path.open("wb") as out:
        packed = pack(build_dir, out)
    with cub.open("wb") as out:
        sealed = seal_file(zip_path, out, [key.public])
    index_json = delta_api.index_bytes(zip_path)
    zip_path.unlink()
    release = Release(
        label=f"r{counter}",
        counter=counter,
        sha256=sealed.sha256,
        length=sealed.length,
        plaintext_sha256=sealed.plaintext_sha256,
        plaintext_length=sealed.plaintext_length,
        files=len(packed.index.files),
        unpacked_size=packed.index.total_size,
        published=datetime(2026, 11, 28, tzinfo=UTC),
    )
    return Sealed(cub, index_json, release)


def seal_patch(
    case: delta_trees.Case, base: Sealed, target: Sealed, dest: Path, *, key: DecryptionKey
) -> SealedPatch:
    """``otaseal publish --delta-from``'s patch steps: make the patch, then seal it."""
    dest.mkdir(parents=True)
    made = delta_api.make_patch(
        case.base,
        case.target,
        target.index_json,
        base_bundle=base.release.sha256,
        target_bundle=target.release.sha256,
        base_index=base.index_json,
    )
    cub = dest / "patch.cub"
    with cub.open("wb") as out:
        writer = SealWriter(out, [key.public])
        writer.write(memoryview(made.plaintext))
        sealed = writer.close()
    patch = Patch(
        base=base.release.sha256,
        sha256=sealed.sha256,
        length=sealed.length,
        plaintext_sha256=sealed.plaintext_sha256,
        plaintext_length=sealed.plaintext_length,
        base_label=base.release.label,
        changed=made.changed,
    )
    return SealedPatch(cub, patch)


def with_delta(target: Sealed, patch: SealedPatch) -> Release:
    """The target release as the manifest signs it: its index digest and the patch."""
    digest = hashlib.sha256(target.index_json).hexdigest()
    return replace(target.release, delta=Delta(index=digest, patches=(patch.patch,)))


# --- bytes ---------------------------------------------------------------------------------------
def capgo_ours(
    target_dir: Path, target: Index, base: Index, key: CapgoPrivateKey
) -> tuple[int, int]:
    """Our Capgo manifest mode: (bytes, files) of the stored bodies the device downloads.

    The plugin reuses a file whose hash and base name it already holds (reference §2.2); a
    device whose base release came through manifest mode holds every file of it.
    """
    built = delta_api.capgo_build(
        [(f.path, (target_dir / f.path).read_bytes()) for f in target.files], key, APP
    )
    have = {(f.sha256, f.path.rsplit("/", 1)[-1]) for f in base.files}
    taken = [f for f in built if (f.sha256, f.path.rsplit("/", 1)[-1]) not in have]
    return sum(f.length for f in taken), len(taken)


def capgo_cli(base_dir: Path, target_dir: Path) -> tuple[int, int, int]:
    """Capgo's CLI ``--delta``: (bytes, files) the device downloads, and the reply's manifest."""
    base, target = capgo_select.listed(base_dir), capgo_select.listed(target_dir)
    taken = capgo_select.downloads(base, target)
    bodies = capgo_select.download_bytes(target_dir, taken)
    reply = capgo_select.reply_bytes(target, url_prefix="https://updates.example.com/files/")
    return sum(b.length for b in bodies), len(bodies), reply


# --- the device ----------------------------------------------------------------------------------
def tree_digest(root: Path) -> dict[str, str]:
    """Path -> SHA-256 of every regular file under ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Trash:
    """Folders done with, set aside and deleted only after the last timing of the run.

    On ext4 the allocator passes over inodes freed in the last minutes, so creating files right
    after a big delete is slower (bench/run.py ``discard``). A full install creates a file per
    bundle file, a patch install hard-links what it copies, so deleting a case's folders just
    before the next case's timings slowed only the full install (run 1 on 2026-11-28: 0.17 s
    against 0.07 s for the same 303 files) and flattered the delta. The device rounds free no
    inodes either (see ``device_round``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def put(self, path: Path) -> None:
        if path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self.count += 1
            path.rename(self.root / f"{self.count}")

    def empty(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


RECENTLY_DELETED_S = 365  # ext4 passes over inodes freed in the last 60-360 s (see Trash)


def remove(path: Path, cache: Path) -> None:
    """Delete ``path`` and note when, so the next run can wait for the freed inodes to age."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        (cache / "deleted-at").write_text(f"{time.time():.0f}\n")


def wait_for_old_deletes(cache: Path) -> None:
    """Wait until this harness's last delete is older than the kernel's window.

    Run 2 on 2026-11-28 started 40 s after run 1 deleted its folders: the first cases' full
    installs (which create a file per bundle file) took 3-8x as long as the last case's.
    """
    try:
        since = time.time() - float((cache / "deleted-at").read_text())
    except (OSError, ValueError):
        return
    if since < RECENTLY_DELETED_S:
        wait = RECENTLY_DELETED_S - since
        print(
            f"waiting {wait:.0f} s: the last run deleted its folders {since:.0f} s ago", flush=True
        )
        time.sleep(wait)


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


# --- one case ------------------------------------------------------------------------------------
def measure(case: delta_trees.Case, work: Path, repeat: int, keys: Keys) -> Result:
    """Bytes once, then ``repeat`` alternating rounds of publish and device timings."""
    trash = Trash(work / "trash")
    base = seal_build(case.base, work / "base", keys.device, counter=1)
    target = seal_build(case.target, work / "target", keys.device, counter=2)
    patch = seal_patch(case, base, target, work / "patch", key=keys.device)
    store = FolderStore(work / "store")
    store.create_from_file(bundle_key(APP, target.release.sha256), target.cub)
    store.create_from_file(bundle_key(APP, patch.patch.sha256), patch.cub)
    update = delta_api.Update(
        store, APP, with_delta(target, patch), patch.patch, keys.device, base.index_json
    )

    index = target.index
    result = Result(case.name, case.note, len(index.files), index.total_size)
    result.full_bytes = target.release.length
    result.delta_bytes = patch.patch.length
    result.delta_plaintext = patch.patch.plaintext_length
    result.delta_changed = patch.patch.changed
    ours = capgo_ours(case.target, index, base.index, keys.capgo)
    result.capgo_ours_bytes, result.capgo_ours_files = ours
    cli = capgo_cli(case.base, case.target)
    result.capgo_cli_bytes, result.capgo_cli_files, result.capgo_reply_bytes = cli
    read_base = functools.partial(
        delta_api.extract_base, base.cub, keys.device, base.release, work / "publisher-base"
    )
    result.base_extract_s = timed(read_base)
    trash.put(work / "publisher-base")

    expected, untouched = tree_digest(case.target), tree_digest(case.base)
    for n in range(repeat):
        rounds = work / f"round-{n}"
        order = ("full", "delta") if n % 2 == 0 else ("delta", "full")
        for which in order:
            if which == "full":
                full = functools.partial(
                    seal_build, case.target, rounds / "pub-full", keys.device, counter=2
                )
                result.publish_full_s.append(timed(full))
            else:
                patched = functools.partial(
                    seal_patch, case, base, target, rounds / "pub-delta", key=keys.device
                )
                result.publish_delta_s.append(timed(patched))
        for which in order:
            seconds = device_round(case, update, rounds / f"device-{which}", which, expected)
            (result.install_full_s if which == "full" else result.apply_delta_s).append(seconds)
        trash.put(rounds)
    if tree_digest(case.base) != untouched:  # the device rounds hard-link it (device_round)
        raise BenchError(f"{case.name}: a device step changed the cached base tree {case.base}")
    return result


def device_round(
    case: delta_trees.Case, update: delta_api.Update, folder: Path, which: str, expected: Any
) -> float:
    """Seconds of one full install or one patch apply, onto a fresh copy of the base release."""
    www, scratch = folder / "www", folder / "work"
    # The installed, verified base release (not timed), hard-linked from the case's tree: the
    # swap's delete of the old build then frees no inode in either path (see Trash), which if
    # anything flatters the full install, whose old files a device would really free.
    shutil.copytree(case.base, www, copy_function=os.link)
    scratch.mkdir()
    apply = delta_api.install_full if which == "full" else delta_api.apply_delta
    seconds = timed(functools.partial(apply, update, www, scratch))
    if tree_digest(www) != expected:
        raise BenchError(f"{case.name}: the {which} update did not give the target tree")
    return seconds


@dataclass(frozen=True, slots=True)
class Keys:
    """The app's decryption key (its public half is the recipient) and its Capgo key."""

    device: DecryptionKey
    capgo: CapgoPrivateKey


# --- report --------------------------------------------------------------------------------------
def _kb(n: int) -> str:
    return f"{n / KB:,.1f} KB" if n < 10_000_000 else f"{n / 1e6:,.2f} MB"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f} %" if whole else "-"


def checks(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The issue's targets as (description, passed)."""
    out: list[tuple[str, bool]] = []
    for row in rows:
        b = row["bytes"]
        delta, full, capgo = b["sealed_delta"], b["full_sealed"], b["capgo_manifest_ours"]
        if row["case"] == "one-line":
            limit = f"{100 * FULL_SHARE_TARGET:.0f} %"
            text = f"one-line: sealed delta is {_pct(delta, full)} of the full bundle"
            out.append((f"{text} (target < {limit})", delta < FULL_SHARE_TARGET * full))
            ratio = delta / capgo if capgo else float("inf")
            text = f"one-line: sealed delta is {ratio:.3f}x our Capgo manifest mode"
            out.append((f"{text} (target < {CAPGO_SHARE_TARGET})", ratio < CAPGO_SHARE_TARGET))
        ratio = row["apply_ratio"]
        text = f"{row['case']}: delta apply / full install = {ratio:.2f}"
        out.append((f"{text} (target <= {APPLY_RATIO_TARGET})", ratio <= APPLY_RATIO_TARGET))
    return out


def render(rows: list[dict[str, Any]], skipped: list[str], env: dict[str, Any]) -> str:
    """The markdown report: bytes table, time table, targets, skipped cases, machine."""
    lines = [
        "# Delta benchmark (bench/delta.py)",
        "",
        f"Command: `{env['command']}`  ",
        (
            f"Date: {env['date']}; machine: {env['cpus']} CPUs, {env['cpu_model']}; "
            f"load before: {env['load_before']}, after: {env['load_after']}  "
        ),
        (
            f"otaseal {env['otaseal']}; Python {env['python']}; zstandard {env['zstandard']}, "
            f"brotli {env['brotli']}, cryptography {env['cryptography']}; "
            f"delta API: {env['delta_api']}"
        ),
        "",
        "Bytes a device downloads for the update (the bundle or patch body; metadata aside):",
        "",
        (
            "| case | files | full sealed | sealed delta | % of full | our Capgo manifest | "
            "Capgo CLI --delta | delta / our Capgo | files changed (sealed / ours / CLI) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        b, f = row["bytes"], row["files_downloaded"]
        ours = b["capgo_manifest_ours"]
        ratio = f"{b['sealed_delta'] / ours:.3f}" if ours else "-"
        lines.append(
            f"| {row['case']} | {row['files']} | {_kb(b['full_sealed'])} | "
            f"{_kb(b['sealed_delta'])} | {_pct(b['sealed_delta'], b['full_sealed'])} | "
            f"{_kb(ours)} | {_kb(b['capgo_cli_delta'])} | {ratio} | "
            f"{f['sealed_delta_changed']} / {f['capgo_manifest_ours']} / {f['capgo_cli_delta']} |"
        )
    lines += [
        "",
        "Both Capgo modes also send the per-file `manifest` in the update reply on every update "
        "(all files, signed 512-hex hashes): "
        + ", ".join(f"{r['case']} {_kb(r['bytes']['capgo_reply_manifest'])}" for r in rows)
        + " (not in the columns above).",
        "",
        "Seconds, median of the repetitions (publish and device alternate full/delta each round):",
        "",
        (
            "| case | publish full (pack+seal) | publish delta (patch+seal) | ratio | "
            "(+ publisher reads base) | device full install | device delta apply | ratio |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s = row["seconds_median"]
        lines.append(
            f"| {row['case']} | {s['publish_full']:.3f} | {s['publish_delta']:.3f} | "
            f"{row['publish_ratio']:.2f} | {s['publish_base_extract']:.3f} | "
            f"{s['install_full']:.3f} | {s['apply_delta']:.3f} | {row['apply_ratio']:.2f} |"
        )
    lines += ["", "Targets (issue 13):", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks(rows)]
    lines += [f"- SKIPPED: {why}" for why in skipped]
    return "\n".join(lines) + "\n"


def environment(argv: list[str]) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", "src"):
        commit += " + uncommitted changes in src/"
    return {
        "command": " ".join(["python bench/delta.py", *argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_before": _load(),
        "python": platform.python_version(),
        "zstandard": zstandard.__version__,
        "brotli": brotli.__version__,
        "cryptography": cryptography.__version__,
        "otaseal": commit,
        "delta_api": delta_api.describe(),
    }


def _git(*args: str) -> str:
    try:
        run = subprocess.run(
            ["git", "-C", str(HERE), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return run.stdout.strip()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- main ----------------------------------------------------------------------------------------
def _shape(args: argparse.Namespace) -> delta_trees.AppShape:
    low, _, high = args.chunk_kb.partition("-")
    return delta_trees.AppShape(
        chunks=args.chunks,
        min_size=int(float(low) * KB),
        max_size=int(float(high or low) * KB),
        entry_size=min(30_000, int(float(high or low) * KB)),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timing repetitions (median shown)")
    parser.add_argument("--chunks", type=int, default=300, help="chunks of the generated app")
    parser.add_argument("--chunk-kb", default="5-50", help="chunk size range in KB, e.g. 5-50")
    parser.add_argument("--cache", type=Path, default=CACHE, help="trees and npm tarballs")
    parser.add_argument("--out", type=Path, default=OUT, help="where delta.md and .json go")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown or args.repeat < 1:
        parser.error(f"--cases takes {', '.join(CASES)} and --repeat at least 1")

    env = environment(argv)
    cases: list[delta_trees.Case] = []
    skipped: list[str] = []
    if "monaco" in wanted:
        try:
            cases.append(delta_trees.monaco_case(args.cache))
        except delta_trees.TreeUnavailableError as exc:
            skipped.append(f"monaco: {exc}")
            print(f"skipping monaco: {exc}", file=sys.stderr)
    if {"one-line", "index-only"} & set(wanted):
        cases += [c for c in delta_trees.app_cases(args.cache, _shape(args)) if c.name in wanted]

    keys = Keys(generate_decryption_key(), generate_capgo_key())
    work = args.cache / "work"
    remove(work, args.cache)  # left by an interrupted run
    wait_for_old_deletes(args.cache)
    rows = []
    try:
        for case in cases:
            print(f"{case.name}: {case.note} ...", flush=True)
            rows.append(measure(case, work / case.name, args.repeat, keys).summary())
    except (BenchError, OSError) as exc:
        print(f"bench/delta.py: {exc}", file=sys.stderr)
        return 1
    finally:
        remove(work, args.cache)
    env["load_after"] = _load()
    report = render(rows, skipped, env)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "delta.md").write_text(report)
    doc = {"environment": env, "cases": rows, "skipped": skipped, "checks": checks(rows)}
    (args.out / "delta.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
