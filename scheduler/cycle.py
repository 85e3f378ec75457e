"""The read → decide → write cycle.

1. **Read**: every device concurrently, each with its own timeout, into one frozen
   :class:`~scheduler.snapshot.Snapshot`. A device that fails or times out is *unavailable* in
   this snapshot; the others are not delayed.
2. **Decide**: the deciders run in a fixed order, each a function of the snapshot. A decider
   that raises is reported (log line, report entry) and the cycle goes on without its commands.
3. **Write**: the commands are written in one batch, concurrently per target. Expired commands
   are dropped, duplicate ids applied once, and setpoints with a revert time that are still in
   force are refreshed once half of their revert time has passed (the fail-safe of F2).
   This is the ONE refresh mechanism of the running service (``scheduler.service``). A
   refresh re-sends the command under its own id: drivers treat a repeated id as a duplicate
   only while it is younger than half its revert time, so the refresh reaches the device.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kernel.clock import Clock
from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from kernel.errors import WaldstadtError
from kernel.readings import Reading
from protocols.capabilities import (
    AcceptsBatteryPowerW,
    AcceptsDimLevelPct,
    AcceptsLoadPowerW,
    AcceptsPowerLimitPct,
    Device,
)
from scheduler.snapshot import Snapshot

log = logging.getLogger(__name__)


#: Device I/O takes real time whatever the clock: a timeout never drops below this many real
#: seconds (or the timeout itself, when shorter) when a simulated clock runs fast.
MIN_REAL_TIMEOUT_S = 0.5


def real_timeout_s(timeout_s: float, clock: Clock) -> float:
    """``timeout_s`` of clock time as real seconds for ``asyncio.timeout``, floored for I/O."""
    return max(timeout_s / clock.speed, min(timeout_s, MIN_REAL_TIMEOUT_S))


class Decider(Protocol):
    @property
    def name(self) -> str: ...

    def decide(self, snapshot: Snapshot) -> Sequence[Command]: ...


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
        return self.read_s + self.decide_s + self.write_s


async def read_all(
    devices: Sequence[Device], clock: Clock, timeout_s: float
) -> tuple[list[Reading], set[str], dict[str, str]]:
    """Read every device concurrently with its own timeout (seconds of the clock's time)."""

    async def one(dev: Device) -> tuple[str, Sequence[Reading] | None, str]:
        try:
            async with asyncio.timeout(real_timeout_s(timeout_s, clock)):
                return dev.device_id, await dev.read(), ""
        except TimeoutError:
            return dev.device_id, None, f"timeout after {timeout_s:g} s"
        except WaldstadtError as exc:
            return dev.device_id, None, str(exc)
        except OSError as exc:
            return dev.device_id, None, f"{type(exc).__name__}: {exc}"

    results = await asyncio.gather(*(one(d) for d in devices))
    readings: list[Reading] = []
    unavailable: set[str] = set()
    errors: dict[str, str] = {}
    for device_id, got, err in results:
        if got is None:
            unavailable.add(device_id)
            errors[device_id] = err
            continue
        readings.extend(got)
        if got and all(not r.available for r in got):
            unavailable.add(device_id)
    return readings, unavailable, errors


class CommandJournal(Protocol):
    """Where applied commands are recorded, so that a restarted controller can re-apply the
    setpoints in force under the same ids (F3). ``scheduler.recovery`` has the store's one."""

    async def record(self, results: Sequence[CommandResult]) -> None: ...


class CommandWriter:
    """Writes commands to devices through their capabilities.

    Keeps the ids it applied (bounded) so that a duplicate is applied once, and the setpoints
    with a revert time that are in force, so that they can be refreshed in time. With a
    ``journal``, every batch's results are recorded after the batch (refreshes are not
    recorded again: the journal holds their command already).
    """

    def __init__(
        self,
        devices: dict[str, object],
        clock: Clock,
        timeout_s: float = 5.0,
        memory: int = 100_000,
        journal: CommandJournal | None = None,
    ) -> None:
        self._devices = devices
        self._clock = clock
        self._timeout_s = timeout_s
        self._journal = journal
        self._applied: OrderedDict[str, None] = OrderedDict()
        self._memory = memory
        #: target → (command, monotonic time of the last write)
        self._in_force: dict[tuple[str, CommandKind], tuple[Command, float]] = {}

    def in_force(self) -> list[Command]:
        now = self._clock.now()
        return [c for c, _ in self._in_force.values() if not c.expired(now)]

    async def write(self, commands: Sequence[Command]) -> list[CommandResult]:
        now = self._clock.now()
        results: list[CommandResult] = []
        todo: list[Command] = []
        todo_ids: set[str] = set()
        for cmd in commands:
            if cmd.expired(now):
                results.append(
                    CommandResult(cmd, CommandStatus.EXPIRED, f"expired at {cmd.expires_at}")
                )
            elif cmd.command_id in self._applied or cmd.command_id in todo_ids:
                results.append(CommandResult(cmd, CommandStatus.DUPLICATE))
            else:
                todo.append(cmd)
                todo_ids.add(cmd.command_id)
        refreshes = self._due_refreshes(now, {(c.target, c.kind) for c in todo})
        results.extend(await asyncio.gather(*(self._apply(c) for c in [*todo, *refreshes])))
        # A refresh re-sends a command the journal holds already: nothing new to record (and
        # a few hundred setpoints refreshed at once must not cost a transaction each).
        news = results[: len(results) - len(refreshes)]
        if self._journal is not None and news:
            await self._journal.record(news)
        return results

    def _due_refreshes(
        self, now: datetime, superseded: set[tuple[str, CommandKind]]
    ) -> list[Command]:
        due: list[Command] = []
        mono = self._clock.monotonic()
        for key, (cmd, last) in list(self._in_force.items()):
            if cmd.expired(now):
                del self._in_force[key]
            elif key not in superseded and cmd.revert_s > 0 and mono - last >= cmd.revert_s / 2:
                due.append(cmd)
        return due

    async def _apply(self, cmd: Command) -> CommandResult:
        dev = self._devices.get(cmd.target)
        if dev is None:
            return CommandResult(
                cmd, CommandStatus.FAILED, f"no driver for target {cmd.target!r} (unknown or away)"
            )
        try:
            async with asyncio.timeout(real_timeout_s(self._timeout_s, self._clock)):
                ok = await self._dispatch(dev, cmd)
        except TimeoutError:
            return CommandResult(cmd, CommandStatus.FAILED, f"timeout after {self._timeout_s:g} s")
        except (WaldstadtError, OSError) as exc:
            return CommandResult(cmd, CommandStatus.FAILED, str(exc))
        if not ok:
            return CommandResult(
                cmd, CommandStatus.UNSUPPORTED, f"{cmd.target!r} does not accept {cmd.kind}"
            )
        self._remember(cmd)
        return CommandResult(cmd, CommandStatus.APPLIED)

    async def _dispatch(self, dev: object, cmd: Command) -> bool:
        if cmd.kind is CommandKind.POWER_LIMIT_PCT and isinstance(dev, AcceptsPowerLimitPct):
            await dev.set_power_limit_pct(cmd.value, cmd.revert_s, cmd.command_id)
        elif cmd.kind is CommandKind.BATTERY_POWER_W and isinstance(dev, AcceptsBatteryPowerW):
            await dev.set_battery_power_w(cmd.value, cmd.revert_s, cmd.command_id)
        elif cmd.kind is CommandKind.LOAD_POWER_W and isinstance(dev, AcceptsLoadPowerW):
            await dev.set_load_power_w(cmd.value, cmd.revert_s, cmd.command_id)
        elif cmd.kind is CommandKind.DIM_LEVEL_PCT and isinstance(dev, AcceptsDimLevelPct):
            await dev.set_dim_level_pct(cmd.value, cmd.ramp_s, cmd.command_id, cmd.expires_at)
        else:
            return False
        return True

    def _remember(self, cmd: Command) -> None:
        self._applied[cmd.command_id] = None
        self._applied.move_to_end(cmd.command_id)
        while len(self._applied) > self._memory:
            self._applied.popitem(last=False)
        self._in_force[(cmd.target, cmd.kind)] = (cmd, self._clock.monotonic())


class Cycle:
    """One read → decide → write pass over a fixed set of devices and deciders."""

    def __init__(
        self,
        devices: Sequence[Device] | Callable[[], Sequence[Device]],
        deciders: Sequence[Decider],
        writer: CommandWriter,
        clock: Clock,
        read_timeout_s: float = 2.0,
    ) -> None:
        #: a fixed list, or a function giving the devices of each cycle (devices discovered
        #: late join the next cycle)
        self._devices = devices if callable(devices) else list(devices)
        self._deciders = list(deciders)
        self._writer = writer
        self._clock = clock
        self._read_timeout_s = read_timeout_s
        self._was_unavailable: set[str] = set()

    async def run_once(self) -> CycleReport:
        t0 = self._clock.monotonic()
        at = self._clock.now()
        devices = self._devices() if callable(self._devices) else self._devices
        readings, unavailable, errors = await read_all(devices, self._clock, self._read_timeout_s)
        self._log_availability(unavailable, errors)
        snapshot = Snapshot.build(at, readings, unavailable, errors)
        t1 = self._clock.monotonic()
        commands: list[Command] = []
        decider_errors: dict[str, str] = {}
        for decider in self._deciders:
            try:
                commands.extend(decider.decide(snapshot))
            except Exception as exc:
                # A faulty decider must not stop the cycle: report it and go on.
                decider_errors[decider.name] = f"{type(exc).__name__}: {exc}"
                log.exception("decider %s failed; cycle goes on without it", decider.name)
        t2 = self._clock.monotonic()
        results = await self._writer.write(commands)
        for res in results:
            if res.status is CommandStatus.FAILED:
                log.warning(
                    "command %s to %s failed: %s",
                    res.command.command_id,
                    res.command.target,
                    res.detail,
                )
        t3 = self._clock.monotonic()
        return CycleReport(
            snapshot=snapshot,
            commands=tuple(commands),
            results=tuple(results),
            decider_errors=decider_errors,
            read_s=t1 - t0,
            decide_s=t2 - t1,
            write_s=t3 - t2,
        )

    def _log_availability(self, unavailable: set[str], errors: dict[str, str]) -> None:
        for dev in sorted(unavailable - self._was_unavailable):
            log.warning("device %s unavailable: %s", dev, errors.get(dev, "no values"))
        for dev in sorted(self._was_unavailable - unavailable):
            log.info("device %s available again", dev)
        self._was_unavailable = set(unavailable)
