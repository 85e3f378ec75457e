"""A writer journaling 84 setpoints a batch into a SQLite database through the service's
journal (:func:`scheduler.journal_background.service_journal`); run by
``test_journal_buffer.py`` as a process of its own, which it kills with SIGKILL.

It prints one JSON line per batch, ``{"batch": n, "ids": [...]}``, once ``writer.write`` has
returned -- that is, once the batch's journal entries are in the buffer file -- so every id
printed is a record the journal owes the database.

    python -m tests.scheduler.journal_child /path/to/db.sqlite
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import timedelta

from kernel.clock import RealClock
from kernel.commands import Command, CommandKind
from scheduler.journal_background import service_journal
from scheduler.writer import CommandWriter
from store import Store

DEVICES = [f"inv-{i:02d}" for i in range(84)]


@dataclass
class Inverter:
    limits: list[tuple[float, str]] = field(default_factory=list)

    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        self.limits.append((limit_pct, command_id))

    async def clear_power_limit(self, command_id: str) -> None:
        self.limits.append((100.0, command_id))


async def main(db: str) -> None:
    clock = RealClock()
    async with (
        Store(f"sqlite+aiosqlite:///{db}") as store,
        service_journal(store, clock.now) as journal,
    ):
        await journal.replay()
        writer = CommandWriter({d: Inverter() for d in DEVICES}, clock, journal=journal)
        n = 0
        while True:
            expires = clock.now() + timedelta(hours=1)
            pct = float(n % 90)
            batch = [
                Command(f"k{n}-{d}", d, CommandKind.POWER_LIMIT_PCT, pct, expires, revert_s=600)
                for d in DEVICES
            ]
            await writer.write(batch)
            print(json.dumps({"batch": n, "ids": [c.command_id for c in batch]}), flush=True)
            n += 1
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
