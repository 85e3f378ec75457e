"""The lighting service: the pure ``lighting/`` core driven over MQTT on an injected clock.

``async with LightingService(clock, bus, site, config) as service:`` registers its
subscriptions, pushes every node's retained schedule, decides and commands every luminaire
once, and then runs three jobs on a :class:`~scheduler.jobs.ClockedScheduler` (the service's
one, ``scheduler=``, when it runs inside ``scheduler.service.Service``; else a scheduler of
its own on the same clock):

* **tick** -- every ``tick_s`` of clock time: resolve the nights, run
  :func:`lighting.tick.decide_tick` with the latest traffic samples, presence holds and
  overrides, and send only the levels that changed (:func:`lighting.tick.changed_commands`),
  each with an id and an expiry. Every ``refresh_s`` (default a third of the node's
  ``controller_timeout_s``) all levels are sent again with fresh ids, so a node never mistakes
  a long program step for a lost controller.
* **schedule push** -- once a day at ``push_at`` local time (default 12:30, just after the
  night's window opens) the program of the coming ``schedule_nights`` nights, with the
  fallback level and the controller timeout, goes to every node as a RETAINED
  ``LightSchedule``; also at start and on :meth:`LightingService.reconfigure`. A cron job at
  the local wall time, so it follows daylight-saving changes.
* **communication watch** -- every ``comm_check_s``: a luminaire without a state report for
  ``thresholds.comm_timeout_s`` gets a *communication lost* alarm.

Inputs arrive through the bus handlers: traffic counts (LoRaWAN fPort 10) become the
segment's latest sample for the next tick; a presence event (fPort 11) goes straight through
:func:`lighting.presence.apply_detection` and its corridor commands are published at once
(the low-latency path, not waiting for a tick); node state reports are checked by
:func:`lighting.failures.check_report` and a node going offline raises *communication lost*.
Alarms are raised once and cleared once (:class:`~scheduler.lighting.alarms.AlarmBook`), each
change handed to the ``on_alarm`` hook for the store.

The bus cannot unsubscribe, so after the service stops its handlers ignore what still
arrives; a stopped service is started again as a new instance (give it a bus of its own when
it must really go away, as in a controller outage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType, TracebackType
from typing import Self

from kernel.clock import Clock
from kernel.errors import BrokerUnavailable
from kernel.readings import Reading
from lighting.config import LightingSite
from lighting.errors import LightingInputError
from lighting.failures import (
    Alarm,
    FailureKind,
    NodeReport,
    check_communication,
    check_report,
)
from lighting.overrides import Override
from lighting.presence import (
    Detection,
    LuminaireCommand,
    PresenceHold,
    apply_detection,
    prune_holds,
)
from lighting.program import ResolvedNight
from lighting.schedule import nights_covering, node_schedule
from lighting.site import LightingIndex
from lighting.sun import NightAnchors, night_anchors, night_of, zone
from lighting.tick import LuminaireDecision, SegmentDecision, Tick
from lighting.traffic import TrafficSample, TrafficState
from protocols.lorawan import subscribe_uplinks
from protocols.lorawan.uplink import Uplink
from protocols.mqtt.bus import Bus
from protocols.streetlight import LightState, StreetlightController
from scheduler.jobs import ClockedScheduler, daily_trigger, every, guarded
from scheduler.lighting.alarms import REPORT_KINDS, AlarmBook, AlarmHook
from scheduler.lighting.config import LightingServiceConfig, ServiceStats, short_id
from scheduler.lighting.nodes import light_schedule
from scheduler.lighting.ticking import TickInput, run_tick, split_index
from scheduler.lighting.uplinks import presence_detection, sensor_of, traffic_sample

log = logging.getLogger(__name__)


class LightingService:
    """Decides, commands and watches the streetlights of one lighting site."""

    def __init__(
        self,
        clock: Clock,
        bus: Bus,
        site: LightingSite,
        config: LightingServiceConfig | None = None,
        *,
        on_alarm: AlarmHook | None = None,
        overrides: Iterable[Override] = (),
        scheduler: ClockedScheduler | None = None,
        on_job_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.clock = clock
        self._scheduler = scheduler
        self._own_scheduler: ClockedScheduler | None = None
        self._on_job_error = on_job_error
        self.bus = bus
        self.config = config or LightingServiceConfig()
        self.controller = StreetlightController(bus, self.config.prefix)
        self.alarms = AlarmBook(on_alarm)
        self.stats = ServiceStats()
        self._index = site.index
        self._programs = site.programs
        self._overrides: list[Override] = list(overrides)
        self._nights: dict[str, ResolvedNight] = {}
        self._anchor_cache: dict[tuple[str, date], NightAnchors] = {}
        self._traffic: dict[str, TrafficState] = {}
        self._samples: dict[str, TrafficSample] = {}
        self._holds: dict[str, PresenceHold] = {}
        self._tick: Tick | None = None
        self._decisions: dict[str, LuminaireDecision] = {}
        self._published: dict[str, LuminaireDecision] = {}
        self._last_refresh: datetime | None = None
        self._last_report_at: dict[str, datetime] = {}
        self._states: dict[str, NodeReport] = {}
        self._online: dict[str, bool] = {}
        self._since = clock.now()
        self._running = False
        self._subscribed = False
        self._job_ids: list[str] = []
        self._tick_lock = asyncio.Lock()
        self._boosts_during_tick: dict[str, LuminaireDecision] = {}
        self._parts = split_index(self._index)

    # -- lifecycle -----------------------------------------------------------------------

    #: ids of the jobs on the scheduler
    JOB_TICK = "lighting:tick"
    JOB_PUSH = "lighting:schedule-push"
    JOB_COMM = "lighting:communication"

    async def __aenter__(self) -> Self:
        if self._job_ids:
            raise RuntimeError("lighting service already running (not re-entrant)")
        self._since = self.clock.now()
        self._running = True
        try:
            await self._subscribe()
            await self.push_schedules()
            await self.tick_once(refresh=True)
        except BaseException:
            self._running = False
            raise
        sched = self._scheduler
        if sched is None:
            sched = self._own_scheduler = ClockedScheduler(self.clock)
        now = self.clock.now()
        push = self.config.push_at
        for job_id, func, trigger in (
            (self.JOB_TICK, self._tick_job, every(self.config.tick_s, now)),
            (
                self.JOB_PUSH,
                self.push_schedules,
                daily_trigger(self.config.timezone, push.hour, push.minute),
            ),
            (self.JOB_COMM, self.check_communication, every(self.config.comm_check_s, now)),
        ):
            sched.add_clocked_job(
                guarded(job_id, func, sched, self._on_job_error),
                trigger,
                job_id,
            )
            self._job_ids.append(job_id)
        if self._own_scheduler is not None:
            self._own_scheduler.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        own, self._own_scheduler = self._own_scheduler, None
        if own is not None:
            await own.stop()
        elif self._scheduler is not None:
            for job_id in self._job_ids:
                if self._scheduler.get_job(job_id) is not None:
                    self._scheduler.remove_job(job_id)
        self._job_ids = []

    async def _subscribe(self) -> None:
        if self._subscribed:
            return
        self._subscribed = True
        await self.controller.watch_states(self._on_state)
        await self.controller.watch_availability(self._on_availability)
        if self.config.watch_uplinks:
            await subscribe_uplinks(
                self.bus,
                self._on_uplink,
                network=self.config.network,
                topic_filter=self.config.uplink_filter,
            )

    # -- what the API reads ----------------------------------------------------------------

    @property
    def index(self) -> LightingIndex:
        return self._index

    @property
    def decisions(self) -> Mapping[str, LuminaireDecision]:
        """Each luminaire's current target with its reason chain (read-only view): the last
        tick's decision, or a presence boost sent since."""
        return MappingProxyType(self._decisions)

    @property
    def segment_decisions(self) -> Mapping[str, SegmentDecision]:
        return MappingProxyType(self._tick.segments if self._tick is not None else {})

    @property
    def traffic(self) -> Mapping[str, TrafficState]:
        return MappingProxyType(self._traffic)

    @property
    def node_states(self) -> Mapping[str, NodeReport]:
        """The latest state report of each node."""
        return MappingProxyType(self._states)

    @property
    def online(self) -> Mapping[str, bool]:
        return MappingProxyType(self._online)

    @property
    def overrides(self) -> tuple[Override, ...]:
        return tuple(self._overrides)

    # -- operator actions ------------------------------------------------------------------

    async def set_overrides(self, overrides: Iterable[Override]) -> None:
        """Replace the operator overrides and act on them at once."""
        self._overrides = list(overrides)
        await self.tick_once()

    async def reconfigure(self, site: LightingSite) -> None:
        """Switch to a changed site: retained schedules of removed luminaires are deleted,
        every node gets its new schedule, and every level is decided and sent again."""
        async with self._tick_lock:  # not in the middle of a tick's parts
            removed = set(self._index.luminaires) - set(site.index.luminaires)
            self._index, self._programs = site.index, site.programs
            self._parts = split_index(site.index)
            self._nights, self._anchor_cache = {}, {}
            segs = site.index.segments
            self._traffic = {k: v for k, v in self._traffic.items() if k in segs}
            self._samples = {k: v for k, v in self._samples.items() if k in segs}
            self._holds = {k: v for k, v in self._holds.items() if k in site.index.luminaires}
        for lid in sorted(removed):
            await self.controller.clear_schedule(lid)
        await self.push_schedules()
        await self.tick_once(refresh=True)

    # -- the work ----------------------------------------------------------------------------

    async def push_schedules(self) -> int:
        """Send every node its retained schedule for the coming nights; returns how many."""
        now = self.clock.now()
        cfg = self.config
        sent = 0
        for sid, segment in self._index.segments.items():
            first = night_of(now, zone(segment.timezone))
            schedule = node_schedule(
                segment,
                self._programs,
                first,
                cfg.schedule_nights,
                cfg.fallback_level_pct,
                cfg.controller_timeout_s,
            )
            message = light_schedule(schedule, now)
            for lum in self._index.by_segment[sid]:
                await self.controller.push_schedule(lum.luminaire_id, message)
                sent += 1
        self.stats.schedules_pushed += sent
        log.info("pushed retained schedules to %d nodes", sent)
        return sent

    async def tick_once(self, *, refresh: bool = False) -> tuple[LuminaireCommand, ...]:
        """Decide every luminaire now and send the changed levels (all with ``refresh`` or
        when the refresh interval has passed); returns the commands sent.

        The site is decided in parts of about 1,000 luminaires, yielding to the event loop
        between them, so that a presence detection never waits for a whole site's tick
        (10,000 luminaires: 5–15 ms, far more with many holds on a loaded machine). A worker
        thread was measured to be no better: the tick then holds the GIL in 5 ms slices across
        every I/O wait of the fast path. Boosts sent while the parts run stand until the next
        tick decides with their holds."""
        async with self._tick_lock:
            now = self.clock.now()
            self._overrides = [ov for ov in self._overrides if ov.expires_at > now]
            self._nights = nights_covering(self._index, self._programs, now, self._nights)
            due = self._last_refresh is None or (
                (now - self._last_refresh).total_seconds() >= self.config.effective_refresh_s
            )
            full = refresh or due
            overrides = tuple(self._overrides)
            decisions: dict[str, LuminaireDecision] = {}
            segments: dict[str, SegmentDecision] = {}
            traffic: dict[str, TrafficState] = {}
            commands: list[LuminaireCommand] = []
            self._boosts_during_tick = {}
            for k, part in enumerate(self._parts):
                if k:
                    await asyncio.sleep(0)
                result = run_tick(
                    TickInput(
                        part,
                        self._nights,
                        self._traffic,
                        dict(self._samples),
                        self._holds,
                        overrides,
                        now,
                        {} if full else self._published,
                        self.config.command_expiry_s,
                    )
                )
                decisions.update(result.decisions)
                segments.update(result.tick.segments)
                traffic.update(result.tick.traffic)
                commands.extend(result.commands)
            if full:
                self._last_refresh = now
            decisions.update(self._boosts_during_tick)
            self._boosts_during_tick = {}
            self._holds = prune_holds(self._holds, now)
            self._tick = Tick(now, decisions, segments, traffic, dict(self._holds))
            self._traffic = traffic
            self._decisions = decisions
            self._published = dict(decisions)
            self.stats.ticks += 1
            sent = tuple(commands)
            await self._send_paced(sent)
            return sent

    async def detect(self, detection: Detection) -> tuple[LuminaireCommand, ...]:
        """The low-latency presence path: boost the corridor and publish its commands now."""
        holds, commands = apply_detection(self._index, self._holds, detection, self._decisions)
        self._holds = holds
        for cmd in commands:
            prior = self._decisions.get(cmd.luminaire_id)
            seg = self._index.luminaires[cmd.luminaire_id].segment_id
            base_reasons = prior.reasons if prior is not None else ()
            boosted = LuminaireDecision(
                cmd.luminaire_id,
                seg,
                cmd.level_pct,
                cmd.ramp_s,
                (*base_reasons, cmd.reason),
                prior.base_pct if prior is not None else 0.0,
            )
            self._decisions[cmd.luminaire_id] = boosted
            self._published[cmd.luminaire_id] = boosted
            self._boosts_during_tick[cmd.luminaire_id] = boosted
        self.stats.detections += 1
        self.stats.presence_commands += len(commands)
        await self._send(commands)
        return commands

    async def _send(self, commands: Iterable[LuminaireCommand]) -> None:
        for cmd in commands:
            await self.controller.send_level(
                cmd.luminaire_id,
                cmd.level_pct,
                cmd.ramp_s,
                short_id(cmd.command_id),
                cmd.expires_at,
            )
            self.stats.commands += 1

    async def _send_paced(self, commands: tuple[LuminaireCommand, ...]) -> None:
        """Send a tick's commands in slices of ``send_slice``, each after the bus has
        delivered the previous one: the outbox is first in, first out, so a presence command
        queued meanwhile waits behind one slice, not behind thousands of tick commands. When
        the broker is away, the rest is queued at once (the outbox keeps it)."""
        step = self.config.send_slice
        for start in range(0, len(commands), step):
            if start:
                try:
                    await self.bus.flush(timeout_s=self.config.tick_s)
                except BrokerUnavailable:
                    await self._send(commands[start:])
                    return
            await self._send(commands[start : start + step])

    async def check_communication(self) -> tuple[Alarm, ...]:
        """Raise *communication lost* for every luminaire silent beyond the timeout (a
        state report clears it)."""
        now = self.clock.now()
        found = check_communication(
            self._index.luminaires,
            self._last_report_at,
            now,
            self._since,
            self.config.thresholds,
        )
        for alarm in found:
            await self.alarms.update(
                alarm.luminaire_id, [alarm], [FailureKind.COMMUNICATION_LOST], now
            )
        return found

    # -- jobs --------------------------------------------------------------------------------

    async def _tick_job(self) -> None:
        try:
            await self.tick_once()
        except LightingInputError:
            # A night that cannot be resolved is a configuration error: count it, say it
            # once per tick, and keep the last commands standing (nodes fall back).
            self.stats.tick_errors += 1
            log.exception("lighting tick failed")

    # -- inbound -----------------------------------------------------------------------------

    async def _on_uplink(self, readings: list[Reading], uplink: Uplink) -> None:
        if not self._running:
            return
        sensor = sensor_of(self._index, uplink)
        if sensor is None:
            self.stats.unknown_sensors += 1
            return
        sample = traffic_sample(self._index, sensor, uplink)
        if sample is not None:
            self._samples[sample.segment_id] = sample.sample
            self.stats.traffic_samples += 1
            return
        detection = presence_detection(self._index, sensor, uplink)
        if detection is not None:
            await self.detect(detection)

    async def _on_state(self, node_id: str, state: LightState) -> None:
        if not self._running:
            return
        lum = self._index.luminaires.get(node_id)
        if lum is None:
            return
        ts = state.ts.astimezone(UTC)
        last = self._last_report_at.get(node_id)
        if last is not None and ts <= last:
            return  # a redelivered or older report (at-least-once delivery) says nothing new
        self.stats.state_reports += 1
        self._last_report_at[node_id] = ts
        report = NodeReport(
            node_id,
            ts,
            state.level_pct,
            state.power_w,
            state.energy_wh,
            state.status,
            tuple(state.failures),
        )
        self._states[node_id] = report
        found = check_report(lum, report, self._anchors(lum.segment_id, ts), self.config.thresholds)
        now = self.clock.now()
        await self.alarms.update(node_id, found, REPORT_KINDS, now)
        await self.alarms.update(node_id, (), [FailureKind.COMMUNICATION_LOST], now)

    async def _on_availability(self, node_id: str, is_online: bool) -> None:
        if not self._running or node_id not in self._index.luminaires:
            return
        self._online[node_id] = is_online
        if not is_online:
            now = self.clock.now()
            alarm = Alarm(node_id, FailureKind.COMMUNICATION_LOST, now, "node went offline")
            await self.alarms.update(node_id, [alarm], [FailureKind.COMMUNICATION_LOST], now)

    def _anchors(self, segment_id: str, ts: datetime) -> NightAnchors:
        night = self._nights.get(segment_id)
        if night is not None and night.start <= ts < night.end:
            return night.anchors
        segment = self._index.segments[segment_id]
        key = (segment_id, night_of(ts, zone(segment.timezone)))
        anchors = self._anchor_cache.get(key)
        if anchors is None:
            if len(self._anchor_cache) > 8 * max(1, len(self._index.segments)):
                self._anchor_cache.clear()
            anchors = night_anchors(segment.place, key[1])
            self._anchor_cache[key] = anchors
        return anchors
