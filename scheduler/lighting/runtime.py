"""The street lighting in the one cycle: inputs in, a decider, alarms, a fast path, a job.

:class:`LightingRuntime` puts the pure ``lighting/`` core into the service's cycle
(:mod:`scheduler.controller`) rather than running a loop of its own:

* **inputs** — the bus handlers of :class:`~scheduler.lighting.inbox.LightingInbox` keep the
  newest traffic sample per segment, the presence detections, the newest node report and the
  availability of every node; each cycle takes them into its snapshot. Sensor uplinks come
  from every LoRaWAN network server the site's sensors name (ChirpStack, The Things Stack:
  ``network`` of each sensor in the site file), each sensor's only from its own;
* **decide** — :class:`~scheduler.lighting.decider.LightingDecider` is one of the cycle's
  deciders (run off the event loop); its commands go through the cycle's one writer, which
  journals them, so a restarted service re-applies the lighting commands in force like the
  setpoints;
* **presence fast path** — a detection goes through :func:`lighting.presence.apply_detection`
  at once and its corridor's commands are submitted to the same writer without waiting for
  the next cycle (each decided at the detection's instant: a tick decided on an older
  snapshot cannot undo them);
* **alarms** — after each cycle :class:`~scheduler.lighting.monitor.LightingMonitor` checks
  the new reports and the silence; alarms are raised once and cleared once through the hook;
* **schedule push** — a daily job at ``push_at`` local time (and at start and on
  :meth:`reconfigure`) sends every node its retained schedule of the coming nights with the
  fallback level and the controller timeout, which nodes run when the controller is gone.

The bus cannot unsubscribe, so after the runtime stops its handlers ignore what still
arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC

from kernel.clock import Clock
from kernel.commands import Command
from kernel.errors import BrokerUnavailable
from kernel.readings import Reading
from lighting.config import LightingSite
from lighting.failures import NodeReport
from lighting.overrides import Override
from lighting.presence import Detection, apply_detection, prune_holds
from lighting.site import LightingIndex
from lighting.tick import LuminaireDecision, SegmentDecision
from lighting.traffic import TrafficState
from protocols.lorawan import subscribe_uplinks
from protocols.mqtt.bus import Bus
from protocols.streetlight import StreetlightController
from scheduler.jobs import ClockedScheduler, daily_trigger, guarded
from scheduler.lighting.alarms import AlarmBook, AlarmHook
from scheduler.lighting.config import LightingServiceConfig, ServiceStats
from scheduler.lighting.decider import Boost, LightingDecider, LightingState
from scheduler.lighting.inbox import LightingInbox
from scheduler.lighting.monitor import LightingMonitor
from scheduler.lighting.nodes import LuminaireTargets, push_schedules
from scheduler.snapshot import LightingInputs, Snapshot

log = logging.getLogger(__name__)

Submit = Callable[[Iterable[Command]], Awaitable[object]]
RunCycle = Callable[[], Awaitable[object]]

JOB_PUSH = "lighting:schedule-push"
#: How long the bus may take to accept a slice of schedules before the push goes on, in s.
PACE_TIMEOUT_S = 10.0


class LightingRuntime:
    """One lighting site run by the service's cycle. Satisfies ``api.runtime.LightingControl``."""

    def __init__(
        self,
        clock: Clock,
        bus: Bus,
        site: LightingSite,
        config: LightingServiceConfig | None = None,
        *,
        on_alarm: AlarmHook | None = None,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.config = config or LightingServiceConfig()
        self.controller = StreetlightController(bus, self.config.prefix)
        self.stats = ServiceStats()
        self.alarms = AlarmBook(on_alarm)
        self.state = LightingState(site)
        self.decider = LightingDecider(self.state, self.config)
        self.inbox = LightingInbox(site.index, self.stats, site.network_of)
        self.inbox.on_detection(self.detect)
        self.monitor = LightingMonitor(self.alarms, self.config.thresholds, clock.now())
        self.targets = LuminaireTargets(self.controller, site.index)
        self._submit: Submit | None = None
        self._run_cycle: RunCycle | None = None
        self._scheduler: ClockedScheduler | None = None
        self._subscribed = False
        self._networks: set[str] = set()
        self._stored: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def bind(self, submit: Submit, run_cycle: RunCycle) -> None:
        """Connect to the cycle: ``submit`` hands commands to its writer (the fast path),
        ``run_cycle`` runs a cycle now (after a change of site or overrides)."""
        self._submit = submit
        self._run_cycle = run_cycle

    async def start(self, scheduler: ClockedScheduler, on_job_error: Callable[..., None]) -> None:
        """Subscribe the inputs, push the schedules, add the daily push job."""
        self.inbox.running = True
        if not self._subscribed:
            self._subscribed = True
            await self.controller.watch_states(self.inbox.state)
            await self.controller.watch_availability(self.inbox.availability)
        await self._listen_to_networks()
        await self.push_schedules()
        push = self.config.push_at
        trigger = daily_trigger(self.config.timezone, push.hour, push.minute)
        scheduler.add_clocked_job(
            guarded(JOB_PUSH, self.push_schedules, scheduler, on_job_error), trigger, JOB_PUSH
        )
        self._scheduler = scheduler

    async def _listen_to_networks(self) -> None:
        """Subscribe the uplinks of every network server the site's sensors use (the bus
        cannot unsubscribe: a network no sensor uses any more stays subscribed, and its
        uplinks find no sensor of its own)."""
        if not self.config.watch_uplinks:
            return
        for network in sorted(self.state.site.networks - self._networks):
            self._networks.add(network)
            await subscribe_uplinks(
                self.bus,
                self.inbox.uplink,
                network=network,
                topic_filter=self.config.uplink_filters.get(network),
            )

    def stop(self) -> None:
        self.inbox.running = False
        sched, self._scheduler = self._scheduler, None
        if sched is not None and sched.get_job(JOB_PUSH) is not None:
            sched.remove_job(JOB_PUSH)

    # -- what the API and the readout read ---------------------------------------------------

    @property
    def index(self) -> LightingIndex:
        return self.state.site.index

    @property
    def decisions(self) -> Mapping[str, LuminaireDecision]:
        """Each luminaire's current target with its reason chain: the last cycle's decision,
        or a presence boost sent since."""
        return self.decider.decisions

    @property
    def segment_decisions(self) -> Mapping[str, SegmentDecision]:
        return self.decider.segment_decisions

    @property
    def traffic(self) -> Mapping[str, TrafficState]:
        return self.decider.traffic

    @property
    def node_states(self) -> Mapping[str, NodeReport]:
        """The newest state report of each node."""
        return self.inbox.reports

    @property
    def overrides(self) -> tuple[Override, ...]:
        return self.state.overrides

    # -- the cycle's parts -------------------------------------------------------------------

    def take_inputs(self) -> LightingInputs:
        return self.inbox.take()

    async def after_cycle(self, snapshot: Snapshot) -> None:
        """Alarms from the snapshot's reports and silence; holds that ended are dropped."""
        self.stats.cycles += 1
        state = self.state
        state.holds = prune_holds(state.holds, snapshot.at)
        tick = self.decider.tick
        if tick is not None and state.boosts:
            state.boosts = {k: b for k, b in state.boosts.items() if b.at > tick.at}
        await self.monitor.check(self.index, snapshot.lighting, self.decider.nights, snapshot.at)

    def new_readings(self, inputs: LightingInputs) -> list[Reading]:
        """The node reports and traffic samples not stored yet, as readings (level, power,
        energy, status 0 ok / 1 fault; vehicle count per segment rule window)."""
        out: list[Reading] = []
        for lid, r in inputs.reports.items():
            stamp = r.ts.timestamp()
            if self._stored.get(lid) == stamp:
                continue
            self._stored[lid] = stamp
            ts = r.ts.astimezone(UTC)
            out += [
                Reading(lid, "level_pct", r.level_pct, "%", ts),
                Reading(lid, "power_w", r.power_w, "W", ts),
                Reading(lid, "node_status", 0.0 if r.status == "ok" else 1.0, "", ts),
            ]
            if r.energy_wh is not None:
                out.append(Reading(lid, "energy_wh", r.energy_wh, "Wh", ts))
        for sid, sample in inputs.traffic.items():
            key, stamp = f"segment:{sid}", sample.at.timestamp()
            if sample.count is None or self._stored.get(key) == stamp:
                continue
            self._stored[key] = stamp
            out.append(Reading(key, "vehicle_count", float(sample.count), "1", sample.at))
        return out

    # -- the presence fast path --------------------------------------------------------------

    async def detect(self, detection: Detection) -> tuple[Command, ...]:
        """Boost the corridor of ``detection`` now, through the cycle's writer."""
        state = self.state
        decisions = self.decider.decisions
        holds, commands = apply_detection(state.site.index, state.holds, detection, decisions)
        boosts = dict(state.boosts)
        for cmd in commands:
            prior = decisions.get(cmd.target)
            seg = state.site.index.luminaires[cmd.target].segment_id
            reasons = prior.reasons if prior is not None else ()
            base = prior.base_pct if prior is not None else 0.0
            decision = LuminaireDecision(
                cmd.target, seg, cmd.value, cmd.ramp_s, (*reasons, cmd.reason), base
            )
            boosts[cmd.target] = Boost(decision, detection.at)
        state.holds, state.boosts = holds, boosts
        self.stats.presence_commands += len(commands)
        if commands and self._submit is not None:
            await self._submit(commands)
        return commands

    # -- operator actions ----------------------------------------------------------------------

    async def set_overrides(self, overrides: Iterable[Override]) -> None:
        """Replace the operator overrides and act on them at once."""
        self.state.overrides = tuple(overrides)
        await self._cycle_now()

    async def reconfigure(self, site: LightingSite) -> None:
        """Switch to a changed site: retained schedules of removed luminaires are deleted,
        every node gets its new schedule, and every level is decided again at once."""
        removed = set(self.index.luminaires) - set(site.index.luminaires)
        state = self.state
        state.holds = {k: v for k, v in state.holds.items() if k in site.index.luminaires}
        state.boosts = {k: v for k, v in state.boosts.items() if k in site.index.luminaires}
        state.site = site
        self.decider.reset()
        self.inbox.reindex(site.index, site.network_of)
        await self._listen_to_networks()
        self.monitor.reindex()
        self.targets.index = site.index
        for lid in sorted(removed):
            await self.controller.clear_schedule(lid)
        await self.push_schedules()
        await self._cycle_now()

    async def push_schedules(self) -> int:
        sent = await push_schedules(
            self.controller, self.state.site, self.config, self.clock.now(), self._pace
        )
        self.stats.schedules_pushed += sent
        return sent

    async def _pace(self) -> None:
        try:
            await self.bus.flush(timeout_s=PACE_TIMEOUT_S)
        except (BrokerUnavailable, TimeoutError):
            return  # the bus's outbox keeps what it could not send yet

    async def _cycle_now(self) -> None:
        if self._run_cycle is not None:
            await self._run_cycle()


__all__ = ["JOB_PUSH", "LightingRuntime"]
