"""Liveness and readiness as values, so that ``api/`` can answer ``/health`` and ``/ready``.

The service collects one :class:`Check` per dependency (broker connected, database reachable,
last cycle recent, …); :class:`Readiness` is *ok* when every check passes and *degraded*
otherwise, with the failing checks' details as the reasons.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from kernel.errors import WaldstadtError
from protocols.mqtt.bus import Bus
from protocols.mqtt.config import HealthState
from scheduler.journal_background import BackgroundJournal
from store import Store


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def status(self) -> Literal["ok", "degraded"]:
        return "ok" if all(c.ok for c in self.checks) else "degraded"

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


def broker_check(bus: Bus | None) -> Check:
    """The bus is connected (or why not)."""
    if bus is None:
        return Check("broker", False, "not started")
    health = bus.health
    if health.state is HealthState.CONNECTED:
        return Check("broker", True, f"connected to {bus.config.broker}")
    reason = health.reason or "not connected yet"
    return Check("broker", False, f"{health.state.value} ({bus.config.broker}): {reason}")


async def database_check(store: Store | None, timeout_s: float) -> Check:
    """The database answers a real query within ``timeout_s`` real seconds."""
    if store is None:
        return Check("database", False, "not opened")
    try:
        async with asyncio.timeout(timeout_s):
            await store.ping()
    except TimeoutError:
        return Check("database", False, f"no answer within {timeout_s:g} s")
    except WaldstadtError as exc:
        return Check("database", False, str(exc).splitlines()[0])
    return Check("database", True, "reachable")


def journal_check(journal: BackgroundJournal | None) -> Check:
    """The command journal records: degraded while the database does not take its batches
    (they wait in the persisted buffer), with the reason and the buffer's depth."""
    if journal is None:
        return Check("journal", False, "not started")
    health = journal.health()
    return Check("journal", health.ok, health.detail)


__all__ = ["Check", "Readiness", "broker_check", "database_check", "journal_check"]
