"""The read → decide → write cycle: ONE for the power plant and the street lighting.

1. **Read**: every device, one task per gateway connection with its devices in turn
   (:mod:`scheduler.reading`), and the lighting's inputs that arrived since the last cycle,
   into one frozen :class:`~scheduler.snapshot.Snapshot` that also holds the commands in
   force. A device that fails or runs out of its time is *unavailable* in this snapshot.
2. **Decide**: the deciders run in a fixed order, each a function of the snapshot that
   returns :class:`~kernel.commands.Command` values (dispatch setpoints, overrides, lighting
   levels). One wrapped in :class:`OffLoop` runs in a worker thread (the 10,000-luminaire
   tick), so the event loop stays free for the presence fast path. A decider that raises is
   reported (log line, report entry) and the cycle goes on without its commands.
3. **Write**: the commands go to the one :class:`~scheduler.writer.CommandWriter` in one
   batch (dedup, expiry, supersession, the one refresh rule, the journal).

Durations in the report are real seconds: device I/O takes real time whatever the clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kernel.clock import Clock
from kernel.commands import Command, CommandResult, CommandStatus
from scheduler.reading import Availability, Gateway, read_gateways
from scheduler.snapshot import NO_LIGHTING_INPUTS, LightingInputs, Snapshot
from scheduler.writer import CommandWriter

log = logging.getLogger(__name__)


class Decider(Protocol):
    @property
    def name(self) -> str: ...

    def decide(self, snapshot: Snapshot) -> Sequence[Command]: ...


@dataclass(frozen=True)
class OffLoop:
    """A decider that the cycle runs in a worker thread (heavy work, no I/O)."""

    decider: Decider

    @property
    def name(self) -> str:
        return self.decider.name

    def decide(self, snapshot: Snapshot) -> Sequence[Command]:
        return self.decider.decide(snapshot)


@dataclass(frozen=True)
class CycleReport:
    snapshot: Snapshot
    commands: tuple[Command, ...]
    results: tuple[CommandResult, ...]
    decider_errors: dict[str, str] = field(default_factory=dict)
    read_s: float = 0.0
    decide_s: float = 0.0
    write_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Real seconds the cycle took."""
        return self.read_s + self.decide_s + self.write_s


class Cycle:
    """One read → decide → write pass over the site's gateways and deciders.

    ``gateways`` gives the devices by connection for each cycle (devices discovered late join
    the next one); ``lighting_inputs`` takes what the lighting's sensors and nodes said since
    the previous cycle; ``read_timeout_s`` is each device's budget in real seconds from its
    turn."""

    def __init__(
        self,
        clock: Clock,
        writer: CommandWriter,
        deciders: Sequence[Decider],
        *,
        gateways: Callable[[], Sequence[Gateway]] = lambda: (),
        lighting_inputs: Callable[[], LightingInputs] | None = None,
        read_timeout_s: float = 2.0,
    ) -> None:
        self._clock = clock
        self._writer = writer
        self.deciders = list(deciders)
        self._gateways = gateways
        self._lighting_inputs = lighting_inputs
        self._read_timeout_s = read_timeout_s
        self.availability = Availability()
        self._failing: dict[tuple[str, str], str] = {}

    async def run_once(self) -> CycleReport:
        t0 = time.perf_counter()
        at = self._clock.now()
        read = await read_gateways(self._gateways(), self._read_timeout_s)
        self.availability.update(read.unavailable, read.errors)
        lighting = self._lighting_inputs() if self._lighting_inputs else NO_LIGHTING_INPUTS
        snapshot = Snapshot.build(
            at,
            read.readings,
            read.unavailable,
            read.errors,
            lighting=lighting,
            in_force=self._writer.in_force_by_kind(),
        )
        t1 = time.perf_counter()
        commands, errors = await self._decide(snapshot)
        t2 = time.perf_counter()
        results = await self._writer.write(commands)
        self._log_failures(results)
        t3 = time.perf_counter()
        return CycleReport(
            snapshot=snapshot,
            commands=tuple(commands),
            results=tuple(results),
            decider_errors=errors,
            read_s=t1 - t0,
            decide_s=t2 - t1,
            write_s=t3 - t2,
        )

    async def _decide(self, snapshot: Snapshot) -> tuple[list[Command], dict[str, str]]:
        commands: list[Command] = []
        errors: dict[str, str] = {}
        for decider in self.deciders:
            try:
                if isinstance(decider, OffLoop):
                    got = await asyncio.to_thread(decider.decide, snapshot)
                else:
                    got = decider.decide(snapshot)
            except Exception as exc:
                errors[decider.name] = f"{type(exc).__name__}: {exc}"
                log.exception("decider %s failed; cycle goes on without it", decider.name)
                continue
            commands.extend(got)
        return commands, errors

    def _log_failures(self, results: Sequence[CommandResult]) -> None:
        """A command that fails is logged when its target starts failing or fails for another
        reason, not in every cycle; a target that takes a command again is logged as back."""
        for res in results:
            key = (res.command.target, res.command.kind.value)
            if res.status is CommandStatus.FAILED:
                if self._failing.get(key) != res.detail:
                    self._failing[key] = res.detail
                    log.warning(
                        "command %s to %s failed: %s",
                        res.command.command_id,
                        res.command.target,
                        res.detail,
                    )
            elif res.status is CommandStatus.APPLIED and key in self._failing:
                del self._failing[key]
                log.info("commands to %s are applied again", res.command.target)


__all__ = ["Cycle", "CycleReport", "Decider", "OffLoop"]
