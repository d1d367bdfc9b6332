"""What the progress line costs: pack and extract a 200 MB synthetic build, silent and watched.

``python bench/progress_overhead.py [--before REV] [--rounds N]`` times ``archive.pack`` and
``archive.extract`` with :data:`~otaseal.progress.NO_PROGRESS` (what ``--json``, pipes and the
Action get) and with a :class:`~otaseal.progress.TerminalProgress` drawing to a fake terminal
(what a person sees), rounds interleaved, and prints the best round of each with the number of
progress reports. ``--before REV`` also times ``archive.py`` as it was at ``REV``, before the
hooks existed. The build is generated once under bench/.cache/inputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inputs import BuildSpec, synthetic

from otaseal import archive
from otaseal.progress import NO_PROGRESS, TerminalProgress

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

SPEC = BuildSpec("web-200mb", 20_000, 200_000_000)
ROOT = Path(__file__).resolve().parents[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Counting(TerminalProgress):
    """The real terminal line, counting the reports it gets."""

    def __init__(self) -> None:
        super().__init__(_Terminal())
        self.reports = 0

    def advance(self, files: int, size: int) -> None:
        self.reports += 1
        super().advance(files, size)


def _archive_at(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:src/otaseal/archive.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="otaseal-bench-progress-")) / "archive_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("archive_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["archive_before"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    shutil.rmtree(path.parent)
    return module


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    """Time every variant ``--rounds`` times, interleaved, and print the best of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", help="a git revision whose archive.py had no progress hooks")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    build = synthetic(SPEC)
    print(f"{build.name}: {build.files} files, {build.total_bytes / 1e6:.0f} MB")
    before = _archive_at(args.before) if args.before else None
    work = Path(tempfile.mkdtemp(prefix="otaseal-bench-progress-"))
    zip_path = work / "bundle.zip"
    with zip_path.open("wb") as out:
        packed = archive.pack(build.path, out)
    best: dict[str, float] = {}
    reports: dict[str, int] = {}

    def run(name: str, work_fn: Callable[[], object]) -> None:
        best[name] = min(best.get(name, float("inf")), _timed(work_fn))

    def extract(module: ModuleType, **kwargs: object) -> None:
        dest = work / "www"
        shutil.rmtree(dest, ignore_errors=True)
        module.extract(zip_path, dest, max_total_size=packed.index.total_size, **kwargs)

    try:
        for _ in range(args.rounds):
            if before is not None:
                run("pack, before the hooks", lambda: before.pack(build.path, io.BytesIO()))
            run("pack, silent", lambda: archive.pack(build.path, io.BytesIO()))
            line = _Counting()
            run(
                "pack, terminal line",
                partial(archive.pack, build.path, io.BytesIO(), progress=line),
            )
            reports["pack, terminal line"] = line.reports
            if before is not None:
                run("extract, before the hooks", lambda: extract(before))
            run("extract, silent", lambda: extract(archive, progress=NO_PROGRESS))
            line = _Counting()
            run("extract, terminal line", partial(extract, archive, progress=line))
            reports["extract, terminal line"] = line.reports
    finally:
        shutil.rmtree(work)
    for name, seconds in best.items():
        shown = f"  ({reports[name]} reports)" if name in reports else ""
        print(f"{name:<28} {seconds:7.3f} s  {build.total_bytes / seconds / 1e6:6.0f} MB/s{shown}")


if __name__ == "__main__":
    main()
