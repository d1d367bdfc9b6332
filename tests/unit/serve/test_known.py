"""Which devices may have facts: own writes at once, other workers' within a refresh."""

from __future__ import annotations

import pytest

from otaseal.serve.known import KnownDevices


class World:
    """A fake database of changed rows and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.rows: list[tuple[int, tuple[str, str]]] = []
        self.asked: list[int | None] = []

    def changed_since(self, since_ms: int | None) -> list[tuple[str, str]]:
        self.asked.append(since_ms)
        return [d for at, d in self.rows if since_ms is None or at >= since_ms]


def test_a_device_without_facts_is_answered_from_memory() -> None:
    world = World()
    known = KnownDevices(world.changed_since, clock=lambda: world.now)
    assert not known.may_have_facts("app", "d1")
    assert not known.may_have_facts("app", "d2")
    assert world.asked == [None]  # one full read, then nothing until the refresh is due


def test_own_writes_count_at_once() -> None:
    world = World()
    known = KnownDevices(world.changed_since, clock=lambda: world.now)
    known.add("app", "d1")
    assert known.may_have_facts("app", "d1")
    assert not known.may_have_facts("other.app", "d1")


def test_another_workers_write_is_seen_after_the_refresh_with_a_margin() -> None:
    world = World()
    known = KnownDevices(world.changed_since, clock=lambda: world.now, margin_ms=60_000)
    assert not known.may_have_facts("app", "d1")
    world.rows.append((int(world.now * 1000) - 5_000, ("app", "d1")))  # committed late, old stamp
    world.now += 0.5
    assert not known.may_have_facts("app", "d1")  # not due yet
    world.now += 0.6
    assert known.may_have_facts("app", "d1")
    assert world.asked == [None, 1_000_000 - 60_000]


def test_a_failed_read_is_retried_on_the_next_check() -> None:
    world = World()
    calls = 0

    def flaky(since_ms: int | None) -> list[tuple[str, str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database away")
        return world.changed_since(since_ms)

    known = KnownDevices(flaky, clock=lambda: world.now)
    with pytest.raises(OSError, match="database away"):
        known.may_have_facts("app", "d1")
    world.rows.append((0, ("app", "d1")))
    assert known.may_have_facts("app", "d1")
