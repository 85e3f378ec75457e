"""The one command writer: every command of every decider reaches its target here.

Rules, in the order they are checked for each command of a batch:

1. **Expired** (``expires_at`` ≤ now): never applied (fault F8: a late command is dropped).
2. **Duplicate** (an id applied before, or twice in the batch): applied once (F8).
3. **Superseded** (a newer decision for the same target and kind is in force: its
   ``decided_at`` is later): not applied, so a tick decided on an older snapshot never undoes
   a presence boost that came meanwhile. Checked under the target's lock, right before the
   write.
4. Otherwise the command is **applied** through the target's capability (the kind names it:
   ``power_limit_pct`` → ``AcceptsPowerLimitPct`` …); a target without it is *unsupported*, a
   target that raises is *failed* with the reason. One failing command never stops the
   others of the batch.

The one refresh rule: a command in force whose ``revert_s`` would lapse before its expiry is
written again, under its own id, once half of its revert time has passed since its last
write (the fail-safe of F2: if the controller dies, the device reverts by itself). Commands
without a revert time live until they expire; a decider that still wants the same thing
after that issues a new command.

Order: the commands of one target are written one after the other, in batch order; different
targets are written concurrently, in slices of ``slice_size`` with ``pace()`` awaited between
slices (the service waits there for the broker to take the previous slice, so that a
presence command submitted meanwhile waits behind one slice, not behind a whole site).
``write`` may be called concurrently (the presence fast path does): a per-target lock keeps
each target's writes in order.

Every batch's new results (not the refreshes: the journal holds their command already) go to
the ``journal`` (:mod:`scheduler.journal`), so a restarted controller re-applies the commands
in force under their ids (F3). Timeouts are real seconds: device I/O does not get faster
with a simulated clock.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from kernel.clock import Clock
from kernel.commands import Command, CommandKind, CommandResult, CommandStatus
from kernel.errors import WaldstadtError
from protocols.capabilities import (
    AcceptsBatteryPowerW,
    AcceptsDimLevelPct,
    AcceptsLoadPowerW,
    AcceptsPowerLimitPct,
)

log = logging.getLogger(__name__)

Key = tuple[str, CommandKind]
Pace = Callable[[], Awaitable[None]]


class CommandJournal(Protocol):
    """Where applied commands are recorded (``scheduler.journal``)."""

    async def record(self, results: Sequence[CommandResult]) -> None: ...


@dataclass(slots=True)
class _InForce:
    command: Command
    #: the clock's monotonic seconds at the last write
    written_at: float


async def _no_pace() -> None:
    await asyncio.sleep(0)


#: Each kind's capability and how to write it.
_CAPABILITY: dict[CommandKind, type] = {
    CommandKind.POWER_LIMIT_PCT: AcceptsPowerLimitPct,
    CommandKind.BATTERY_POWER_W: AcceptsBatteryPowerW,
    CommandKind.LOAD_POWER_W: AcceptsLoadPowerW,
    CommandKind.DIM_LEVEL_PCT: AcceptsDimLevelPct,
}
#: Whether a target class has a kind's capability (an isinstance check against a runtime
#: protocol costs tens of µs; a site has a handful of driver classes and thousands of writes).
_SUPPORTS: dict[tuple[type, CommandKind], bool] = {}


def accepts(target: object, kind: CommandKind) -> bool:
    """Whether ``target`` has the capability that ``kind`` needs."""
    key = (type(target), kind)
    known = _SUPPORTS.get(key)
    if known is None:
        known = _SUPPORTS[key] = isinstance(target, _CAPABILITY[kind])
    return known


async def apply_to(target: object, cmd: Command) -> bool:
    """Write ``cmd`` through the capability its kind names; False: the target lacks it."""
    kind = cmd.kind
    if not accepts(target, kind):
        return False
    # accepts() has checked the capability: the casts only tell the type checker
    if kind is CommandKind.POWER_LIMIT_PCT:
        limit = cast(AcceptsPowerLimitPct, target)
        await limit.set_power_limit_pct(cmd.value, cmd.revert_s, cmd.command_id)
    elif kind is CommandKind.BATTERY_POWER_W:
        battery = cast(AcceptsBatteryPowerW, target)
        await battery.set_battery_power_w(cmd.value, cmd.revert_s, cmd.command_id)
    elif kind is CommandKind.LOAD_POWER_W:
        load = cast(AcceptsLoadPowerW, target)
        await load.set_load_power_w(cmd.value, cmd.revert_s, cmd.command_id)
    else:
        dimmer = cast(AcceptsDimLevelPct, target)
        await dimmer.set_dim_level_pct(cmd.value, cmd.ramp_s, cmd.command_id, cmd.expires_at)
    return True


class CommandWriter:
    """Writes commands to their targets (device drivers, luminaire nodes) by capability.

    ``targets`` maps a target id to the object that takes its commands; it may change while
    the writer runs (devices discovered late join it). ``timeout_s`` bounds one write in real
    seconds, from the moment the target's turn comes (never while it waits for its lock)."""

    def __init__(
        self,
        targets: Mapping[str, object],
        clock: Clock,
        *,
        timeout_s: float = 5.0,
        memory: int = 100_000,
        journal: CommandJournal | None = None,
        slice_size: int = 64,
        pace: Pace = _no_pace,
    ) -> None:
        if slice_size < 1:
            raise ValueError("slice_size must be at least 1")
        self._targets = targets
        self._clock = clock
        self._timeout_s = timeout_s
        self._journal = journal
        self._slice = slice_size
        self._pace = pace
        self._applied: OrderedDict[str, None] = OrderedDict()
        self._memory = memory
        #: kind → target → the command in force (only its newest per target and kind)
        self._in_force: dict[CommandKind, dict[str, Command]] = {k: {} for k in CommandKind}
        #: the commands in force with a revert time and their last write (the refresh rule)
        self._refreshable: dict[Key, _InForce] = {}
        #: (expiry, n, kind, target, id) of every command that went into force: a heap, so
        #: that forgetting expired commands costs only those, not a walk over 10,000 lamps
        self._expiry: list[tuple[datetime, int, CommandKind, str, str]] = []
        self._pushed = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._behind: set[asyncio.Task[None]] = set()

    # -- what others read -------------------------------------------------------------------

    def in_force(self) -> list[Command]:
        """The commands in force now (not expired), one per target and kind."""
        return [cmd for targets in self.in_force_by_kind().values() for cmd in targets.values()]

    def in_force_by_kind(self) -> dict[CommandKind, dict[str, Command]]:
        """The commands in force now, by kind and target (copies: a snapshot's)."""
        self._forget_expired(self._clock.now())
        return {kind: dict(targets) for kind, targets in self._in_force.items()}

    def _forget_expired(self, now: datetime) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, _, kind, target, command_id = heapq.heappop(heap)
            held = self._in_force[kind].get(target)
            if held is not None and held.command_id == command_id:
                del self._in_force[kind][target]
                self._refreshable.pop((target, kind), None)

    # -- writing ----------------------------------------------------------------------------

    async def write(
        self, commands: Iterable[Command], *, wait_for_journal: bool = True
    ) -> list[CommandResult]:
        """Apply a batch; one result per command (and one per refresh, after them).

        With ``wait_for_journal=False`` (the presence fast path) it returns once the commands
        are sent and their journal entries are on their way (recorded in order behind, in a
        task that :meth:`settle` awaits): the next detection is not held up behind this
        one's fsync (measured: presence p50 27 ms, p99 157 ms when it was; a boost of a
        minute lost by a crash within those milliseconds is the cost)."""
        now = self._clock.now()
        results: list[CommandResult] = []
        todo: list[Command] = []
        seen: set[str] = set()
        for cmd in commands:
            if cmd.expired(now):
                detail = f"expired at {cmd.expires_at.isoformat()}"
                results.append(CommandResult(cmd, CommandStatus.EXPIRED, detail))
            elif cmd.command_id in self._applied or cmd.command_id in seen:
                results.append(CommandResult(cmd, CommandStatus.DUPLICATE))
            else:
                todo.append(cmd)
                seen.add(cmd.command_id)
        refreshes = self._due_refreshes(now, {(c.target, c.kind) for c in todo})
        written = await self._write_in_slices([*todo, *refreshes])
        news = [*results, *written[: len(todo)]]
        if self._journal is not None and news:
            if wait_for_journal:
                await self._journal.record(news)
            else:
                self._record_behind(self._journal, news)
        return [*news, *written[len(todo) :]]

    def _record_behind(self, journal: CommandJournal, news: list[CommandResult]) -> None:
        task = asyncio.create_task(journal.record(news), name="journal fast-path commands")
        self._behind.add(task)
        task.add_done_callback(self._recorded_behind)

    def _recorded_behind(self, task: asyncio.Task[None]) -> None:
        self._behind.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("command journal: fast-path commands not recorded: %r", exc)

    async def settle(self) -> None:
        """Wait until the journal entries recorded behind (the fast path's) are handed to the
        journal: before the journal stops."""
        while self._behind:
            await asyncio.gather(*self._behind, return_exceptions=True)

    def _due_refreshes(self, now: datetime, superseded: set[Key]) -> list[Command]:
        """Commands with a revert time that are due for a refresh (only those are looked at:
        a site's thousands of luminaire levels have none)."""
        due: list[Command] = []
        mono = self._clock.monotonic()
        self._forget_expired(now)
        for key, entry in list(self._refreshable.items()):
            cmd = entry.command
            if key not in superseded and mono - entry.written_at >= cmd.revert_s / 2:
                due.append(cmd)
        return due

    async def _write_in_slices(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Per target in order; targets concurrently, a slice at a time; results in the order
        of ``commands``."""
        by_target: dict[str, list[int]] = {}
        for i, cmd in enumerate(commands):
            by_target.setdefault(cmd.target, []).append(i)
        out: list[CommandResult | None] = [None] * len(commands)
        groups = list(by_target.values())
        for start in range(0, len(groups), self._slice):
            if start:
                await self._pace()
            chunk = groups[start : start + self._slice]
            done = await asyncio.gather(*(self._write_target(commands, g) for g in chunk))
            for group, res in zip(chunk, done, strict=True):
                for i, r in zip(group, res, strict=True):
                    out[i] = r
        return [r for r in out if r is not None]

    async def _write_target(
        self, commands: Sequence[Command], indices: Sequence[int]
    ) -> list[CommandResult]:
        target = commands[indices[0]].target
        lock = self._locks.get(target)
        if lock is None:
            lock = self._locks[target] = asyncio.Lock()
        async with lock:
            return [await self._apply(commands[i]) for i in indices]

    async def _apply(self, cmd: Command) -> CommandResult:
        newer = self._in_force[cmd.kind].get(cmd.target)
        if newer is not None and _decided_later(newer, cmd):
            return CommandResult(
                cmd, CommandStatus.SUPERSEDED, f"{newer.command_id} was decided later"
            )
        target = self._targets.get(cmd.target)
        if target is None:
            detail = f"no driver for target {cmd.target!r} (unknown or away)"
            return CommandResult(cmd, CommandStatus.FAILED, detail)
        try:
            async with asyncio.timeout(self._timeout_s):
                ok = await apply_to(target, cmd)
        except TimeoutError:
            return CommandResult(cmd, CommandStatus.FAILED, f"timeout after {self._timeout_s:g} s")
        except (WaldstadtError, OSError, ValueError) as exc:
            return CommandResult(cmd, CommandStatus.FAILED, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("command %s to %s raised", cmd.command_id, cmd.target)
            return CommandResult(cmd, CommandStatus.FAILED, f"{type(exc).__name__}: {exc}")
        if not ok:
            detail = f"{cmd.target!r} does not accept {cmd.kind}"
            return CommandResult(cmd, CommandStatus.UNSUPPORTED, detail)
        self._remember(cmd)
        return CommandResult(cmd, CommandStatus.APPLIED)

    def _remember(self, cmd: Command) -> None:
        self._applied[cmd.command_id] = None
        self._applied.move_to_end(cmd.command_id)
        while len(self._applied) > self._memory:
            self._applied.popitem(last=False)
        key = (cmd.target, cmd.kind)
        self._in_force[cmd.kind][cmd.target] = cmd
        if cmd.revert_s > 0:
            self._refreshable[key] = _InForce(cmd, self._clock.monotonic())
        else:
            self._refreshable.pop(key, None)
        self._pushed += 1
        heapq.heappush(
            self._expiry, (cmd.expires_at, self._pushed, cmd.kind, cmd.target, cmd.command_id)
        )


def _decided_later(held: Command, new: Command) -> bool:
    """Whether ``held`` (in force) rests on a later decision than ``new``."""
    if held.command_id == new.command_id:
        return False  # a refresh of the command itself
    if held.decided_at is None or new.decided_at is None:
        return False
    return held.decided_at > new.decided_at


class Targets(Mapping[str, object]):
    """The writer's targets: the site's devices (devices discovered late join), then its
    luminaires."""

    def __init__(
        self, devices: Mapping[str, object], luminaires: Mapping[str, object] | None
    ) -> None:
        self._parts = [devices] if luminaires is None else [devices, luminaires]

    def __getitem__(self, key: str) -> object:
        for part in self._parts:
            if key in part:
                return part[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        for part in self._parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


__all__ = ["CommandJournal", "CommandWriter", "Pace", "Targets", "apply_to"]
