"""How fast this machine writes a build's files from memory: the floor under any extractor.

    python bench/files_floor.py bench/.cache/inputs/web-50mb-g1 [--repeat 2]

Folders are made first; then every file is created (``O_CREAT | O_EXCL``), written in one call
and closed, in batches of 32 files, on one thread and then on one thread per core. No zip, no
inflate, no hash. Output goes to bench/.cache/trash/, which ``bench/run.py`` empties when it
starts: deleting it here would slow the next minute of file creation (see run.discard).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inputs import TRASH

BATCH = 32


def write_all(files: list[tuple[str, bytes]], threads: int) -> float:
    """Seconds to write ``files`` under a fresh folder on ``threads`` threads."""
    dest = TRASH / f"files-floor-{time.monotonic_ns()}"
    for folder in sorted({rel.rpartition("/")[0] for rel, _ in files}):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL

    def write(batch: list[tuple[str, bytes]]) -> None:
        for rel, data in batch:
            fd = os.open(f"{dest}/{rel}", flags, 0o644)
            os.write(fd, data)
            os.close(fd)

    batches = [files[at : at + BATCH] for at in range(0, len(files), BATCH)]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("build", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    root: Path = args.build
    files = [
        (str(path.relative_to(root)), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]
    total = sum(len(data) for _, data in files)
    cores = os.cpu_count() or 1
    for _ in range(args.repeat):
        one, many = write_all(files, 1), write_all(files, cores)
        print(
            f"{len(files)} files, {total / 1e6:.1f} MB: 1 thread {one:.3f} s "
            f"({total / 1e6 / one:.0f} MB/s), {cores} threads {many:.3f} s "
            f"({total / 1e6 / many:.0f} MB/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
