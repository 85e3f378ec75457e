"""The simulated clock: continuous across speed changes, shared between processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

import pytest

from kernel.clock import SharedRate, SimClock

T0 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)


def test_a_speed_change_keeps_time_continuous() -> None:
    clock = SimClock(T0, speed=100.0)
    time.sleep(0.05)
    before = clock.now()
    clock.set_speed(10.0)
    after = clock.now()
    assert timedelta(0) <= after - before < timedelta(seconds=0.1)  # no jump back or ahead
    assert before - T0 >= timedelta(seconds=4.5)  # 0.05 s × 100
    time.sleep(0.05)
    assert timedelta(seconds=0.45) <= clock.now() - after < timedelta(seconds=2)  # 0.05 × 10
    with pytest.raises(ValueError, match="positive"):
        clock.set_speed(0)


async def test_a_sleep_follows_a_speed_change_while_it_waits() -> None:
    clock = SimClock(T0, speed=1.0)
    t0 = time.monotonic()
    sleeper = asyncio.create_task(clock.sleep(60.0))  # a minute at 1×
    await asyncio.sleep(0.05)
    clock.set_speed(200.0)  # the rest (~60 s) now takes ~0.3 s
    await asyncio.wait_for(sleeper, timeout=5.0)
    assert time.monotonic() - t0 < 2.0
    assert clock.now() - T0 >= timedelta(seconds=60)


def _child(rate: SharedRate, conn: Connection) -> None:
    clock = SimClock(T0, rate=rate)
    conn.send(clock.now())
    conn.recv()  # the parent changed the speed
    conn.send((clock.now(), clock.speed))


def test_two_processes_on_one_rate_show_one_time_and_one_speed() -> None:
    rate = SharedRate(144.0)
    clock = SimClock(T0, rate=rate)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(rate, child))
    proc.start()
    try:
        theirs = parent.recv()
        mine = clock.now()
        assert abs((mine - theirs).total_seconds()) < 144.0 * 0.5  # within half a real s
        clock.set_speed(12.0)
        parent.send("slowed")
        theirs, speed = parent.recv()
        assert speed == 12.0
        assert abs((clock.now() - theirs).total_seconds()) < 12.0 * 0.5
    finally:
        proc.join(timeout=10)
    assert proc.exitcode == 0
