"""Cost of ``StatsDb.device()``, the database read on every update check, and of ``record()``.

    python bench/stats_device.py                       # SQLite in a temp folder
    python bench/stats_device.py --postgres            # also a throwaway PostgreSQL (tests/pg.py)
    python bench/stats_device.py --lookups 200000 --threads 4

Fills a database like the serve load benchmark's fleet: 10,000 devices, 5 % with a failed
version, 2 % with a channel override, 20 events each. Then times ``device()`` for random devices
(hits and misses alike) on 1 and N threads, first idle and then while a writer thread records
200-event batches as fast as it can (what ``serve``'s stats writer does under load). Prints
microseconds per lookup, lookups per second, and the writer's events per second. A benchmark,
not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from otaseal.serve.db import StatsDb, StatsEvent, open_stats  # noqa: E402

APP = "com.example.app"
DEVICES = [str(uuid.UUID(int=n + 1)) for n in range(10_000)]
NOW_MS = int(time.time() * 1000)


def fill(db: StatsDb) -> None:
    rng = random.Random(7)
    batch: list[StatsEvent] = []
    for n, device in enumerate(DEVICES):
        for k in range(20):
            action = rng.choice(["check", "download_complete", "set", "app_moved_to_foreground"])
            batch.append(
                StatsEvent(
                    APP,
                    device,
                    action,
                    "1.0",
                    channel="production",
                    timestamp_ms=NOW_MS - k * 1000,
                    received_ms=NOW_MS,
                )
            )
        if n % 20 == 0:
            batch.append(StatsEvent(APP, device, "update_fail", "1.1", received_ms=NOW_MS))
        if len(batch) >= 2000:
            db.record(batch)
            batch = []
    db.record(batch)
    for device in DEVICES[::50]:
        db.set_channel(APP, device, "beta")


def lookups(db: StatsDb, n: int, seed: int) -> float:
    rng = random.Random(seed)
    picks = [rng.choice(DEVICES) if rng.random() < 0.9 else str(uuid.uuid4()) for _ in range(n)]
    started = time.perf_counter()
    for device in picks:
        db.device(APP, device)
    return time.perf_counter() - started


def run_threads(db: StatsDb, threads: int, per_thread: int) -> float:
    """Wall time for ``threads`` threads doing ``per_thread`` lookups each."""
    barrier = threading.Barrier(threads + 1)

    def work(seed: int) -> None:
        barrier.wait()
        lookups(db, per_thread, seed)

    pool = [threading.Thread(target=work, args=(s,)) for s in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - started


class Writer(threading.Thread):
    def __init__(self, db: StatsDb) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.events = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            batch = [
                StatsEvent(
                    APP,
                    DEVICES[(n + i) % len(DEVICES)],
                    "check",
                    "1.0",
                    channel="production",
                    received_ms=NOW_MS,
                    event_id=f"w{n + i}",
                )
                for i in range(200)
            ]
            n += 200
            self.events += self.db.record(batch)


def measure(name: str, db: StatsDb, n: int, threads: int) -> list[str]:
    lines = []
    lookups(db, 2000, 99)  # warm statement caches
    single = statistics.median(lookups(db, n, s) for s in range(3))
    lines.append(f"{name}: device() 1 thread idle: {single / n * 1e6:.1f} µs, {n / single:,.0f}/s")
    wall = run_threads(db, threads, n // threads)
    lines.append(f"{name}: device() {threads} threads idle: {n / wall:,.0f}/s")
    writer = Writer(db)
    writer.start()
    time.sleep(0.2)
    started = time.perf_counter()
    busy = lookups(db, n, 5)
    wall = run_threads(db, threads, n // threads)
    elapsed = time.perf_counter() - started
    writer.stop.set()
    writer.join()
    lines.append(
        f"{name}: device() 1 thread while writing: {busy / n * 1e6:.1f} µs, {n / busy:,.0f}/s; "
        f"{threads} threads: {n / wall:,.0f}/s; writer {writer.events / elapsed:,.0f} events/s"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="otaseal-bench-stats-") as tmp:
        db = open_stats(f"sqlite://{Path(tmp) / 'stats.sqlite'}")
        db.migrate()
        started = time.perf_counter()
        fill(db)
        out.append(f"sqlite: filled 10,000 devices in {time.perf_counter() - started:.1f} s")
        out += measure("sqlite", db, args.lookups, args.threads)
        db.close()
    if args.postgres:
        from pg import start_postgres  # noqa: PLC0415 - only with --postgres

        server = start_postgres()
        try:
            db = open_stats(server.create_database("bench"))
            db.migrate()
            fill(db)
            out += measure("postgres", db, args.lookups // 4, args.threads)
            db.close()
        finally:
            server.stop()
    print("\n".join(out))


if __name__ == "__main__":
    main()
