"""Simulated streetlight nodes that speak the node protocol (:mod:`protocols.streetlight`).

:class:`NodeLogic` is one node's behaviour as a function of the instants passed to it (no I/O),
so ramps, idempotence, expiry and the autonomous fallback are tested with plain values.
:class:`StreetlightFleet` runs many nodes on one MQTT connection and one tick loop on an
injected :class:`~kernel.clock.Clock` (the demo's 100 luminaires cost one connection).

Behaviour of a node:

* A command goes to ``level_pct`` linearly over ``ramp_s``, starting from wherever a running
  ramp is now (a new command interrupts it). A command id seen before is ignored (the last
  256 ids are remembered); a command whose ``expires_at`` has passed is dropped.
* The controller counts as silent when no command was accepted for ``controller_timeout_s``
  (from the stored schedule, else the node's default), and at boot. Then the node runs its
  stored schedule (mode ``schedule``) or, when no step applies now, its fallback level (mode
  ``fallback``). The next command puts it back under the controller.
* Power in W: ``standby_w`` when the level is 0, else ``standby_w + rated_w · (m + (1 − m) ·
  level/100)`` with ``m`` the driver's share at minimum dimming (LED drivers are not linear
  down to zero). Energy in Wh is the integral of power, monotonic.
* Faults: ``lamp_failure`` draws 0 W and reports the failure; ``stuck_on`` draws full power
  whatever the level says (a welded relay or a driver ignoring DALI): it reports nothing,
  because the node cannot know -- the lighting layer finds it by power by day.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from kernel.clock import Clock
from kernel.errors import PayloadError
from protocols.mqtt.bus import Bus
from protocols.mqtt.inbound import Inbound
from protocols.streetlight import (
    DEFAULT_PREFIX,
    LightCommand,
    LightSchedule,
    LightState,
    LightTopics,
    dump,
)

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "expired"]
_SEEN_IDS = 256


@dataclass(frozen=True, slots=True)
class LuminaireSpec:
    """Electrical data of one luminaire (W)."""

    rated_power_w: float = 40.0
    standby_power_w: float = 0.5
    #: Share of the rated power drawn at the lowest dim level (driver losses), 0..1.
    min_power_share: float = 0.1

    def power_w(self, level_pct: float) -> float:
        if level_pct <= 0.0:
            return self.standby_power_w
        share = self.min_power_share + (1.0 - self.min_power_share) * level_pct / 100.0
        return self.standby_power_w + self.rated_power_w * share


@dataclass(slots=True)
class Faults:
    lamp_failure: bool = False
    stuck_on: bool = False


class NodeLogic:
    """One node. Every method takes ``now`` (aware UTC); time only moves forward."""

    def __init__(
        self,
        node_id: str,
        now: datetime,
        spec: LuminaireSpec | None = None,
        *,
        controller_timeout_s: float = 900.0,
        fallback_level_pct: float = 100.0,
    ) -> None:
        self.node_id = node_id
        self.spec = spec or LuminaireSpec()
        self.faults = Faults()
        self.schedule: LightSchedule | None = None
        self.energy_wh = 0.0
        self.last_command_id: str | None = None
        self.mode: Literal["controller", "schedule", "fallback"] = "fallback"
        self._default_timeout_s = controller_timeout_s
        self._default_fallback_pct = fallback_level_pct
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._last_command_at: datetime | None = None
        self._from_pct = self._to_pct = fallback_level_pct
        self._ramp_start = now
        self._ramp_s = 0.0
        self._t = now
        self._autonomous(now)

    # -- state ---------------------------------------------------------------------------

    @property
    def target_pct(self) -> float:
        return self._to_pct

    @property
    def controller_timeout_s(self) -> float:
        s = self.schedule
        return s.controller_timeout_s if s is not None else self._default_timeout_s

    @property
    def fallback_level_pct(self) -> float:
        s = self.schedule
        return s.fallback_level_pct if s is not None else self._default_fallback_pct

    def level_at(self, now: datetime) -> float:
        """The dim level in % at ``now`` (linear ramp)."""
        if self._ramp_s <= 0.0:
            return self._to_pct
        frac = (now - self._ramp_start).total_seconds() / self._ramp_s
        if frac >= 1.0:
            return self._to_pct
        frac = max(frac, 0.0)
        return self._from_pct + (self._to_pct - self._from_pct) * frac

    def power_at(self, now: datetime) -> float:
        if self.faults.lamp_failure:
            return 0.0
        if self.faults.stuck_on:
            return self.spec.power_w(100.0)
        return self.spec.power_w(self.level_at(now))

    def state(self, now: datetime) -> LightState:
        self.advance(now)
        failures: list[Literal["lamp_failure"]] = (
            ["lamp_failure"] if self.faults.lamp_failure else []
        )
        return LightState(
            ts=now,
            level_pct=round(self.level_at(now), 3),
            power_w=round(self.power_at(now), 3),
            energy_wh=self.energy_wh,
            status="fault" if failures else "ok",
            mode=self.mode,
            failures=list(failures),
            last_command_id=self.last_command_id,
        )

    # -- inputs --------------------------------------------------------------------------

    def apply_command(self, cmd: LightCommand, now: datetime) -> Outcome:
        self.advance(now)
        if cmd.command_id in self._seen:
            return "duplicate"
        self._remember(cmd.command_id)
        if cmd.expires_at <= now:
            return "expired"
        self._last_command_at = now
        self.last_command_id = cmd.command_id
        self.mode = "controller"
        self._go(now, cmd.level_pct, cmd.ramp_s)
        return "applied"

    def set_schedule(self, schedule: LightSchedule | None, now: datetime) -> None:
        self.advance(now)
        self.schedule = schedule
        if self.mode != "controller":
            self._autonomous(now)

    def advance(self, now: datetime) -> None:
        """Integrate energy up to ``now`` and switch to the stored program if the controller
        has been silent for its timeout."""
        if now <= self._t:
            return
        self.energy_wh += self._energy_wh(self._t, now)
        self._t = now
        if self.mode == "controller":
            silent_s = (now - self._last_command_at).total_seconds() if self._last_command_at else 0
            if silent_s >= self.controller_timeout_s:
                log.info("node %s: controller silent for %.0f s, running program", self.node_id,
                         silent_s)  # fmt: skip
                self._autonomous(now)
        else:
            self._autonomous(now)

    # -- internals -----------------------------------------------------------------------

    def _autonomous(self, now: datetime) -> None:
        step = self.schedule.step_at(now) if self.schedule is not None else None
        if step is None:
            self.mode = "fallback"
            target, ramp_s = self.fallback_level_pct, 0.0
        else:
            self.mode = "schedule"
            target, ramp_s = step.level_pct, step.ramp_s
        if target != self._to_pct:
            self._go(now, target, ramp_s)

    def _go(self, now: datetime, level_pct: float, ramp_s: float) -> None:
        self._from_pct = self.level_at(now)
        self._to_pct = level_pct
        self._ramp_start = now
        self._ramp_s = ramp_s

    def _remember(self, command_id: str) -> None:
        self._seen[command_id] = None
        while len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)

    def _energy_wh(self, t0: datetime, t1: datetime) -> float:
        """∫ power dt over [t0, t1] in Wh; the ramp part by the midpoint rule on 32 pieces
        (exact for the affine driver curve; the standby step at level 0 is a single point)."""
        ramp_end = self._ramp_start + timedelta(seconds=self._ramp_s)
        cuts = [t0, *([ramp_end] if t0 < ramp_end < t1 else []), t1]
        total_ws = 0.0
        for a, b in itertools.pairwise(cuts):
            span_s = (b - a).total_seconds()
            if a >= ramp_end or self._ramp_s <= 0:
                total_ws += self.power_at(a + (b - a) / 2) * span_s
                continue
            n = 32
            h = span_s / n
            total_ws += h * sum(
                self.power_at(a + timedelta(seconds=(i + 0.5) * h)) for i in range(n)
            )
        return total_ws / 3600.0


class StreetlightFleet:
    """Many nodes, one MQTT connection, one tick loop.

    Availability: each node's retained availability is ``online`` while the fleet runs and
    ``offline`` when it stops. A crash is covered by the bus's last will -- for a fleet of one,
    give the bus ``availability_topic=LightTopics(prefix).availability(node_id)``; for a larger
    fleet the will sits on the fleet's own topic (like a segment controller or gateway)."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        nodes: Iterable[NodeLogic],
        *,
        prefix: str = DEFAULT_PREFIX,
        report_interval_s: float = 60.0,
        tick_s: float = 1.0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.nodes = {n.node_id: n for n in nodes}
        self.topics = LightTopics(prefix)
        self.report_interval_s = report_interval_s
        self.tick_s = tick_s
        self.outcomes: collections.Counter[Outcome] = collections.Counter()
        self._started = False

    @classmethod
    def build(
        cls,
        bus: Bus,
        clock: Clock,
        node_ids: Iterable[str],
        spec: LuminaireSpec | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        report_interval_s: float = 60.0,
        tick_s: float = 1.0,
    ) -> StreetlightFleet:
        """A fleet of identical luminaires, booted now."""
        now = clock.now()
        return cls(
            bus,
            clock,
            [NodeLogic(node_id, now, spec) for node_id in node_ids],
            prefix=prefix,
            report_interval_s=report_interval_s,
            tick_s=tick_s,
        )

    async def start(self) -> None:
        """Subscribe to commands and schedules (retained schedules arrive at once)."""
        if self._started:
            return
        self._started = True
        await self.bus.subscribe(self.topics.all("cmd"), LightCommand, self._on_command)
        await self.bus.subscribe_raw(self.topics.all("schedule"), self._on_schedule)
        for node_id in self.nodes:
            await self.bus.publish(self.topics.availability(node_id), b"online", retain=True)

    async def stop(self) -> None:
        """Mark every node offline (a graceful shutdown does not fire the will)."""
        for node_id in self.nodes:
            await self.bus.publish(self.topics.availability(node_id), b"offline", retain=True)
        await self.bus.flush()

    async def run(self) -> None:
        """Tick forever: integrate, switch programs, and report every ``report_interval_s``."""
        await self.start()
        next_report = self.clock.monotonic()
        while True:
            now = self.clock.now()
            report = self.clock.monotonic() >= next_report
            for node in self.nodes.values():
                node.advance(now)
                if report:
                    await self._publish_state(node, now)
            if report:
                next_report = self.clock.monotonic() + self.report_interval_s
            await self.clock.sleep(self.tick_s)

    async def _publish_state(self, node: NodeLogic, now: datetime) -> None:
        state = node.state(now)
        await self.bus.publish(self.topics.state(node.node_id), dump(state), retain=True)

    async def _on_command(self, inbound: Inbound[LightCommand]) -> None:
        node = self.nodes.get(self.topics.node_of(inbound.topic))
        if node is None:
            return  # another fleet's node under the same prefix
        now = self.clock.now()
        outcome = node.apply_command(inbound.payload, now)
        self.outcomes[outcome] += 1
        if outcome == "applied":
            await self._publish_state(node, now)

    async def _on_schedule(self, inbound: Inbound[bytes]) -> None:
        node = self.nodes.get(self.topics.node_of(inbound.topic))
        if node is None:
            return
        schedule: LightSchedule | None = None
        if inbound.payload:
            try:
                schedule = LightSchedule.model_validate_json(inbound.payload)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                loc = ".".join(str(p) for p in err["loc"]) or "$"
                raise PayloadError(inbound.topic, loc, err["msg"]) from exc
        node.set_schedule(schedule, self.clock.now())
