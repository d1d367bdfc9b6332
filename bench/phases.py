"""Where the time goes inside one ``otaseal publish`` and one ``otaseal fetch``, per phase.

    python bench/phases.py bench/.cache/inputs/web-50mb-g1

cProfile sees only the main thread, and publish compresses on worker threads. This script wraps
the functions that do the work (in whatever thread runs them) and adds up their wall time and
the CPU time of the thread that ran them, then runs the real CLI entry point in this process.
Nested phases are reported by themselves too, so rows overlap; "process" is the whole command.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contenders import fetch_args
from inputs import TRASH

if TYPE_CHECKING:
    from collections.abc import Callable

_totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_lock = threading.Lock()
_local = threading.local()


def _wrap(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_local, name, 0)
        setattr(_local, name, depth + 1)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            setattr(_local, name, depth)
            if depth == 0:  # recursion or re-entry counts once
                spent_wall, spent_cpu = time.perf_counter() - wall, time.thread_time() - cpu
                with _lock:
                    row = _totals[name]
                    row[0] += 1
                    row[1] += spent_wall
                    row[2] += spent_cpu

    return wrapper


def _patch(owner: object, attr: str, name: str) -> None:
    setattr(owner, attr, _wrap(name, getattr(owner, attr)))


def instrument() -> None:
    """Wrap the functions that publish and fetch spend their time in."""
    from otaseal import archive, client, operations  # noqa: PLC0415
    from otaseal.archive import extraction, hygiene, index, packing  # noqa: PLC0415
    from otaseal.formats import sealed  # noqa: PLC0415
    from otaseal.store import folder  # noqa: PLC0415

    # Each function is wrapped where it is looked up when called.
    for attr in ("scan", "_plan", "_compress_all", "_compress_piece", "_write_zip"):
        _patch(packing, attr, f"archive.packing.{attr}")
    _patch(hygiene, "collision", "archive.paths.collision")
    _patch(index, "collision", "archive.paths.collision")
    _patch(extraction, "_extract_file", "archive.extraction._extract_file (one per file)")
    _patch(extraction, "_check_entries", "archive.extraction._check_entries")
    _patch(extraction, "_read_index", "archive.extraction._read_index")
    _patch(extraction, "_match_index", "archive.extraction._match_index")
    _patch(extraction, "_make_folders", "archive.extraction._make_folders")
    _patch(extraction, "_open_zip", "archive.extraction._open_zip (central directory)")
    _patch(archive, "extract", "archive.extract")
    _patch(archive, "pack", "archive.pack")
    _patch(packing._Sink, "write", "archive.packing._Sink.write (hash + SealWriter.write)")  # noqa: SLF001
    _patch(sealed.SealWriter, "_seal", "sealed.SealWriter._seal (sha256 + AES-GCM + write)")
    _patch(sealed, "open_sealed", "sealed.open_sealed (decrypt to bundle.zip)")
    _patch(folder.FolderStore, "create_from_file", "store.create_from_file (fsync + hard link)")
    _patch(operations, "change_channel", "operations.change_channel (sign + manifest)")
    _patch(client, "_download", "client._download (hash + copy ciphertext)")
    _patch(client, "install_release", "client.install_release")
    _patch(os, "open", "os.open (files created and opened)")
    _patch(os, "fsync", "os.fsync")
    import concurrent.futures  # noqa: PLC0415

    _patch(concurrent.futures.Future, "result", "Future.result (main thread waits)")


def run_cli(argv: list[str], cwd: Path) -> None:
    """The real ``otaseal`` entry point in this process, timed as a whole."""
    from otaseal.cli import main  # noqa: PLC0415

    _totals.clear()
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with open(os.devnull, "w") as sink:  # noqa: PTH123
            saved, sys.stdout = sys.stdout, sink
            try:
                code = main(argv)
            finally:
                sys.stdout = saved
    finally:
        os.chdir(old)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"\n$ otaseal {' '.join(argv[:2])} ...  exit {code}")
    print(f"{'phase':58} {'calls':>6} {'wall s':>7} {'cpu s':>7}")
    print(f"{'process (all threads)':58} {1:6d} {wall:7.2f} {cpu:7.2f}")
    for name, (calls, spent_wall, spent_cpu) in sorted(_totals.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:58} {int(calls):6d} {spent_wall:7.2f} {spent_cpu:7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("build", type=Path, help="a web build directory")
    args = parser.parse_args()
    build = args.build.resolve()
    from otaseal.operations import now_utc  # noqa: PLC0415
    from otaseal.project import init_project  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="otaseal-phases-", dir=Path(__file__).parent / ".cache"))
    try:
        project = work / "project"
        init_project("com.example.bench", project, now=now_utc(), algorithm="ecdsa-p256-sha256")
        instrument()
        run_cli(["publish", str(build), "--channel", "beta", "--json"], project)
        os.sync()
        device = work / "device"
        run_cli(
            fetch_args(project, device),
            work,
        )
    finally:
        # Not deleted here: on ext4 without a journal, files created in the next minute would pay
        # for it (see run.discard). bench/run.py empties the trash when it starts.
        TRASH.mkdir(exist_ok=True)
        work.rename(TRASH / work.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
