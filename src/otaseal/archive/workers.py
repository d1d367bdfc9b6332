"""Threads for pack and extract: how many, and an in-order map that bounds the work in flight.

Both sides scale with the CPUs but must give the same bytes and the same errors whatever the
thread count; these helpers keep that ordering in one place.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, TypeVar

from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable
    from concurrent.futures import Future, ThreadPoolExecutor

_T = TypeVar("_T")
_R = TypeVar("_R")


def thread_count(workers: int | None) -> int:
    """Threads to use: ``workers``, or one per CPU; refuse fewer than one."""
    threads = (os.cpu_count() or 1) if workers is None else workers
    if threads < 1:
        raise InputError(f"workers is {threads}", expected="at least 1", fix="pass workers >= 1")
    return threads


def ordered(
    pool: ThreadPoolExecutor | None,
    work: Callable[[_T], _R],
    items: Iterable[_T],
    window: int,
) -> Generator[_R, None, None]:
    """``map`` on the pool, in order, with at most ``window`` items in flight."""
    if pool is None:
        yield from map(work, items)
        return
    pending: deque[Future[_R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
