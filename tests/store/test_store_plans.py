"""Plans: append-only, exactly one per (community, interval) even when processes race (F10)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from store import Store
from tests.store.conftest import T0

ROOT = Path(__file__).resolve().parents[2]


async def test_first_insert_wins_and_the_second_reads_the_winner(store: Store) -> None:
    first = await store.plans.insert("c1", T0, {"setpoints": [1]}, created_by="a", now=T0)
    second = await store.plans.insert("c1", T0, {"setpoints": [2]}, created_by="b", now=T0)
    assert first.won
    assert not second.won
    assert second.plan == first.plan
    assert second.plan.payload == {"setpoints": [1]}
    assert second.plan.created_by == "a"


async def test_concurrent_inserts_from_two_stores_yield_exactly_one_plan(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        for k in range(3):
            start = T0 + timedelta(minutes=15 * k)
            attempts = [
                s.plans.insert("c1", start, {"by": f"{name}{i}"}, created_by=f"{name}{i}", now=T0)
                for i in range(5)
                for name, s in (("a", store), ("b", other))
            ]
            results = await asyncio.gather(*attempts)
            assert sum(r.won for r in results) == 1
            assert len({r.plan.id for r in results}) == 1
            winner = next(r for r in results if r.won)
            assert all(r.plan.payload == winner.plan.payload for r in results)
    assert len(await store.plans.between("c1", T0, T0 + timedelta(hours=1))) == 3


PROCESS = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)

async def main(url, name):
    async with Store(url) as store:
        won = 0
        for k in range(20):
            start = T0 + timedelta(minutes=15 * k)
            r = await store.plans.insert("c1", start, {"by": name}, created_by=name, now=T0)
            won += r.won
        print(json.dumps({"won": won}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_real_processes_racing_store_one_plan_per_interval(
    store: Store, store_url: str
) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PROCESS,
            store_url,
            name,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("proc-a", "proc-b")
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    wins = [json.loads(out.decode().strip().splitlines()[-1])["won"] for out, _ in outputs]
    assert sum(wins) == 20
    stored = await store.plans.between("c1", T0, T0 + timedelta(hours=5))
    assert len(stored) == 20
    assert {p.created_by for p in stored} <= {"proc-a", "proc-b"}


async def test_latest_plan_is_the_last_valid_one(store: Store) -> None:
    for k in (0, 1, 3):
        await store.plans.insert(
            "c1", T0 + timedelta(minutes=15 * k), {"k": k}, created_by="a", now=T0
        )
    latest = await store.plans.latest("c1", T0 + timedelta(minutes=40))
    assert latest is not None
    assert latest.payload == {"k": 1}
    assert await store.plans.latest("c1", T0 - timedelta(seconds=1)) is None
    assert await store.plans.get("c2", T0) is None
