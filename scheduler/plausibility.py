"""Plausibility before anything is stored or billed: the gate every reading passes.

:meth:`ReadingGate.admit` takes readings as they arrive (MQTT telemetry, and the cycle's own
Modbus readings) and returns those that may be stored; the others are **quarantined**: kept
apart in ``quarantined_readings`` with the reason (:mod:`store.quarantine`), never stored as
readings, so metering never sees them and they bill nothing. A reading is quarantined when

* ``unknown_device`` / ``unknown_channel``: it names a device the site file does not know, or
  a channel that device's driver does not read (telemetry only: the cycle reads what the
  drivers of the site's devices give). Devices the broker section lists as telemetry devices
  are known, with any channel;
* ``ts_out_of_window``: its instant lies outside ``[now − max_age_s, now + max_ahead_s]`` of
  the injected clock (``site.plausibility``);
* ``negative_counter``: an energy counter below 0;
* ``counter_decrease`` / ``power_above_rating``: an energy counter's step from the reading
  before it (and, for a late one, to the reading after it) is implausible by
  :func:`vpp.metering.plausibility.counter_step` — it fell with no recorded meter exchange
  and not at its register's wrap, or grew faster than the device's rating allows;
* ``power_above_rating``: a measured power above the device's rating (+10 %).

For each reading quarantined the gate counts ``waldstadt_readings_quarantined_total{source,
reason}``; for each device and reason it logs one warning and raises **one** alarm
(``plausibility:<device>:<reason>``, through ``store.alarms``, which keeps an active alarm
from being raised twice across restarts too).

The newest admitted value of each counter is kept in memory (found in the store on first
sight), so consecutive readings are judged against each other before their commit; a reading
older than that newest one is judged against its stored neighbours.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kernel.clock import Clock
from kernel.readings import Reading
from protocols.mqtt.telemetry import TelemetryLimits
from scheduler.observability import Metrics
from scheduler.site import Site
from scheduler.site.plausibility import COUNTER_CHANNELS, POWER_CHANNELS, PlausibilityConfig
from scheduler.site.ratings import DeviceFacts, device_facts
from store import Store
from store.errors import StoreError, StoreUnavailable
from store.quarantine import QuarantinedReading
from vpp.metering.plausibility import RATING_MARGIN, CounterRules, counter_step

log = logging.getLogger(__name__)

#: ``source`` of readings from MQTT telemetry (devices and channels are checked) and from the
#: cycle's reading of the site's devices.
SOURCE_TELEMETRY = "mqtt"
SOURCE_CYCLE = "modbus"
#: How many counters, and (device, reason) pairs, are remembered at most (device ids come
#: from senders when there is no site).
_MAX_KEYS = 100_000
#: Unknown devices alarmed one by one; beyond, they are counted only (an attacker names them).
MAX_UNKNOWN_ALARMS = 100
_NO_RULES = CounterRules()


class Reason(enum.StrEnum):
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_CHANNEL = "unknown_channel"
    TS_OUT_OF_WINDOW = "ts_out_of_window"
    NEGATIVE_COUNTER = "negative_counter"
    COUNTER_DECREASE = "counter_decrease"
    POWER_ABOVE_RATING = "power_above_rating"


@dataclass(frozen=True, slots=True)
class _Level:
    """The newest admitted value of one counter (``None``: the store has none)."""

    ts: datetime
    value_wh: float


class ReadingGate:
    """One per process, shared by the ingest and the cycle's recorder. ``site`` None (an
    ingest process without a site file): devices, channels and ratings are not checked."""

    def __init__(self, store: Store, clock: Clock, metrics: Metrics, site: Site | None) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._site = site
        self._facts: dict[str, DeviceFacts] = device_facts(site) if site is not None else {}
        #: telemetry devices the broker section names that are no Modbus device: any channel
        self._open = frozenset(site.broker.telemetry_devices if site is not None else ())
        config = site.plausibility if site is not None else PlausibilityConfig()
        self._max_age = timedelta(seconds=config.max_age_s)
        self._max_ahead = timedelta(seconds=config.max_ahead_s)
        self.limits = TelemetryLimits(config.max_readings_per_message, config.max_message_bytes)
        self._levels: dict[tuple[str, str], _Level | None] = {}
        self._warned: set[tuple[str, str]] = set()
        self._unknown = 0
        #: readings quarantined by this gate, per reason
        self.counts: Counter[str] = Counter()

    async def admit(self, readings: Sequence[Reading], source: str) -> list[Reading]:
        """The readings that may be stored; the others are quarantined (see module doc).

        Raises :class:`~store.errors.StoreUnavailable` when a counter's history cannot be
        read: the caller keeps the readings and tries again (nothing is admitted unchecked).
        A quarantine or an alarm that cannot be written is logged; the count stands."""
        now = self._clock.now()
        lo, hi = now - self._max_age, now + self._max_ahead
        known = self._site is not None and source == SOURCE_TELEMETRY
        kept: list[Reading] = []
        refused: list[QuarantinedReading] = []
        for r in readings:
            verdict = self._check(r, lo, hi, known)
            if verdict is None and r.value is not None and r.channel in COUNTER_CHANNELS:
                verdict = await self._counter(r)
            if verdict is None:
                kept.append(r)
                continue
            reason, detail = verdict
            value = None if r.value is None else repr(r.value)
            refused.append(
                QuarantinedReading(now, source, r.device_id, r.channel, r.ts, value, reason, detail)
            )
        if refused:
            await self._quarantine(refused, now)
        return kept

    def _check(
        self, r: Reading, lo: datetime, hi: datetime, known: bool
    ) -> tuple[Reason, str] | None:
        """The checks that need no history."""
        facts = self._facts.get(r.device_id)
        if known and facts is None and r.device_id not in self._open:
            return Reason.UNKNOWN_DEVICE, f"no device {r.device_id!r} in the site file"
        if known and facts is not None and r.channel not in facts.channels:
            return Reason.UNKNOWN_CHANNEL, f"{r.device_id!r} reads no channel {r.channel!r}"
        if not lo <= r.ts <= hi:
            return (
                Reason.TS_OUT_OF_WINDOW,
                f"{r.ts.isoformat()} is outside {lo.isoformat()} … {hi.isoformat()}",
            )
        if r.value is None:
            return None
        if r.channel in COUNTER_CHANNELS and r.value < 0:
            return Reason.NEGATIVE_COUNTER, f"an energy counter of {r.value:g} Wh"
        rating = None if facts is None else facts.rating_w
        if (
            r.channel in POWER_CHANNELS
            and rating is not None
            and abs(r.value) > rating * (1 + RATING_MARGIN)
        ):
            return Reason.POWER_ABOVE_RATING, f"{r.value:g} W, the device's rating is {rating:g} W"
        return None

    def _rules(self, r: Reading) -> CounterRules:
        facts = self._facts.get(r.device_id)
        return _NO_RULES if facts is None else facts.counters.get(r.channel, _NO_RULES)

    async def _counter(self, r: Reading) -> tuple[Reason, str] | None:
        assert r.value is not None
        key = (r.device_id, r.channel)
        if key not in self._levels:
            if len(self._levels) > _MAX_KEYS:
                self._levels.clear()
            newest = await self._store.readings.latest(r.device_id, r.channel, with_value=True)
            self._levels[key] = _level(newest)
        level = self._levels[key]
        rules = self._rules(r)
        if level is None or r.ts > level.ts:
            if level is not None:
                step = counter_step(level.ts, level.value_wh, r.ts, r.value, rules)
                if step.fault is not None:
                    return Reason(step.fault.value), step.detail
                self._levels[key] = _Level(r.ts, step.level_wh)
            else:
                self._levels[key] = _Level(r.ts, r.value)
            return None
        return await self._late(r, rules)

    async def _late(self, r: Reading, rules: CounterRules) -> tuple[Reason, str] | None:
        """A counter reading at or before the newest one: judged against its stored
        neighbours (a redelivered reading meets itself: no step, no fault)."""
        assert r.value is not None
        repo = self._store.readings
        before = await repo.latest(r.device_id, r.channel, at_or_before=r.ts, with_value=True)
        if before is not None and before.value is not None:
            step = counter_step(before.ts, before.value, r.ts, r.value, rules)
            if step.fault is not None:
                return Reason(step.fault.value), step.detail
        after = await repo.first_after(r.device_id, r.channel, r.ts)
        if after is not None and after.value is not None:
            step = counter_step(r.ts, r.value, after.ts, after.value, rules)
            if step.fault is not None:
                later = f"the reading after it ({after.value:g} Wh at {after.ts.isoformat()})"
                return Reason(step.fault.value), f"{step.detail}; judged against {later}"
        return None

    async def _quarantine(self, refused: list[QuarantinedReading], now: datetime) -> None:
        counter = self._metrics.readings_quarantined
        for q in refused:
            counter.labels(source=q.source, reason=q.reason).inc()
            self.counts[q.reason] += 1
        try:
            await self._store.quarantine.add(refused)
        except (StoreError, StoreUnavailable) as exc:
            log.warning("%d quarantined readings not kept: %s", len(refused), exc)
        for q in refused:
            key = (q.device_id, q.reason)
            if key in self._warned or not self._may_warn(q.reason):
                continue
            self._warned.add(key)
            if q.reason == Reason.UNKNOWN_DEVICE:
                self._unknown += 1
            log.warning(
                "reading of %s/%s quarantined (%s): %s", q.device_id, q.channel, q.reason, q.detail
            )
            await self._alarm(q, now)

    def _may_warn(self, reason: str) -> bool:
        """Device ids of unknown devices come from the senders: after
        :data:`MAX_UNKNOWN_ALARMS` of them, the next are quarantined and counted, with one
        warning for all of them and no alarm each."""
        if reason != Reason.UNKNOWN_DEVICE or self._unknown < MAX_UNKNOWN_ALARMS:
            return len(self._warned) < _MAX_KEYS
        if self._unknown == MAX_UNKNOWN_ALARMS:
            self._unknown += 1
            log.warning(
                "more than %d unknown devices sent telemetry: the next are quarantined and "
                "counted (waldstadt_readings_quarantined_total), without a warning or an "
                "alarm each",
                MAX_UNKNOWN_ALARMS,
            )
        return False

    async def _alarm(self, q: QuarantinedReading, now: datetime) -> None:
        try:
            await self._store.alarms.raise_alarm(
                f"plausibility:{q.device_id}:{q.reason}",
                source="plausibility",
                kind=q.reason,
                severity="warning",
                message=f"{q.device_id}/{q.channel}: reading quarantined ({q.reason}): {q.detail}",
                now=now,
                details={"device": q.device_id, "channel": q.channel, "reason": q.reason},
            )
        except (StoreError, StoreUnavailable) as exc:
            log.warning("alarm for %s (%s) not raised: %s", q.device_id, q.reason, exc)


def _level(r: Reading | None) -> _Level | None:
    if r is None or r.value is None:
        return None
    return _Level(r.ts, r.value)


__all__ = ["SOURCE_CYCLE", "SOURCE_TELEMETRY", "ReadingGate", "Reason"]
