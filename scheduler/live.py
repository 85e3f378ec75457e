"""What a running service shows of its newest cycle (the web app reads it through
``api.runtime.Runtime.live``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kernel.commands import Command
from scheduler.snapshot import Snapshot


@dataclass(frozen=True)
class LiveView:
    """The newest cycle of the service: its snapshot (None before the first cycle), the
    devices away since start with the reason, and the commands its writer keeps in force;
    the clock's speed and, when a simulated clock had to run slower than asked
    (``target_speed``), why (``slowed``)."""

    snapshot: Snapshot | None
    away: Mapping[str, str] = field(default_factory=dict)
    in_force: Sequence[Command] = ()
    speed: float = 1.0
    target_speed: float | None = None
    slowed: str | None = None


__all__ = ["LiveView"]
