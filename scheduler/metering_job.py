"""The metering job: raw meter counter readings → quarter-hour intervals in the store.

Every member's grid meter delivers two energy counters, ``import_energy_wh`` and
``export_energy_wh`` (the channel names of the SDM630 and SunSpec 203 templates and of the
SunSpec meter mapping). After each quarter-hour the job turns the counter readings stored since
the last *open* quarter-hour into exact whole-Wh intervals with :mod:`vpp.metering` and records
them with :meth:`store.intervals.IntervalRepository.record`, under the member's id and the
channel's name, quality ``good`` (L1) or ``substitute`` (L2, interpolated across a gap).

What the register may do comes from the site file (:mod:`scheduler.site.ratings`): readings
that imply a fall without a recorded meter exchange or a wrap, or more power than the
device's rating, are left out (:func:`vpp.metering.plausibility.screen_register`; the ingest
quarantines such readings before they are stored, so metering meets them only in data
stored before that check). A counter that goes down is never billed as a reset.

Which readings are read. Per meter and channel the job keeps a watermark: the start of the
first quarter-hour that is not yet recorded as L1 (on the first call it is found in the store,
``lookback`` back from now). A call reads the readings from the watermark (at least
``late_s`` back, to take readings that arrive a little late) to now, plus the last reading
before that, which anchors the interpolation across a gap of any length. Interval values depend
only on the readings around their boundaries, so this window gives exactly the values a
computation over all readings would give: the stored intervals telescope, and a day's sum is
the counter's growth over the day. Recording is idempotent (unchanged values append nothing);
a reading that arrives later and fills a gap turns L2 into L1 and restates the intervals as a
new version.

Nothing is extrapolated: a quarter-hour is recorded once a reading at or after its end exists.
L3 estimates are not stored; settlement makes them where it needs them.

What the job recorded is kept in an :class:`IntervalCache` (:attr:`MeteringJob.cache`), which
the settlement job reads instead of reading the day back from the store each quarter-hour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from kernel.quarterhours import QH, floor_qh
from kernel.readings import Quality, Reading, utc
from scheduler.site import Site
from scheduler.site.ratings import device_facts
from store import Store
from store.intervals import Interval, StoredInterval
from vpp.metering.intervals import MeteredInterval, register_intervals
from vpp.metering.plausibility import CounterRules, screen_register
from vpp.metering.quality import IntervalQuality
from vpp.metering.registers import MeteringInputError, ReadingQuality, RegisterReading

log = logging.getLogger(__name__)

IMPORT_CHANNEL = "import_energy_wh"
EXPORT_CHANNEL = "export_energy_wh"
#: The counters of a grid meter, in the order they are read.
METER_CHANNELS = (IMPORT_CHANNEL, EXPORT_CHANNEL)

_READING_QUALITY = {
    Quality.GOOD: ReadingQuality.GOOD,
    Quality.SUBSTITUTE: ReadingQuality.SUBSTITUTE,
    Quality.UNAVAILABLE: ReadingQuality.UNAVAILABLE,
}
#: How many reasons :attr:`MeteringJob.rejected` keeps per counter (the newest).
_REJECTED_KEPT = 20
#: How far before a window the job first looks for the reading that anchors it.
_ANCHOR_SEARCH = timedelta(minutes=10)
_STORE_QUALITY = {IntervalQuality.L1: Quality.GOOD, IntervalQuality.L2: Quality.SUBSTITUTE}
#: Stored interval quality → metering quality (what settlement reads back).
METERED_QUALITY = {Quality.GOOD: IntervalQuality.L1, Quality.SUBSTITUTE: IntervalQuality.L2}


def register_readings(readings: Sequence[Reading]) -> tuple[list[RegisterReading], list[Reading]]:
    """Stored counter readings as whole-Wh register readings, and the readings refused.

    Unavailable readings are dropped. Counter values arrive as floats (an SDM630 sends kWh);
    they are rounded to the nearest Wh, which keeps a growing counter growing. A negative
    value is no counter value at all: it is refused (and returned) so that the readings around
    it still meter the quarter-hour.
    """
    out: list[RegisterReading] = []
    refused: list[Reading] = []
    for r in readings:
        if r.value is None or r.quality is Quality.UNAVAILABLE:
            continue
        value_wh = round(r.value)
        if value_wh < 0:
            refused.append(r)
            continue
        out.append(RegisterReading(utc(r.ts), value_wh, _READING_QUALITY[r.quality]))
    return out, refused


class IntervalCache:
    """The newest intervals of each member and channel as this process recorded them.

    The metering job notes every interval it computes (after ``record`` the store holds exactly
    these values) and loads what the store holds when it starts; the settlement job reads a day
    from here instead of from the store every quarter-hour. A member's intervals count as
    complete from the instant they were loaded from the store (:meth:`load`); before that, the
    store must be read. It is right only while the metering job that feeds it, in this
    process, is the only writer of intervals (as in the service); a settlement job in another
    process gets no cache. Entries older than ``keep`` are dropped.
    """

    def __init__(self, keep: timedelta = timedelta(days=3)) -> None:
        self._keep = keep
        self._values: dict[tuple[str, str], dict[datetime, MeteredInterval]] = {}
        self._loaded_from: dict[str, datetime] = {}

    def note(self, member_id: str, channel: str, intervals: Iterable[MeteredInterval]) -> None:
        """Intervals just recorded (the newest values)."""
        values = self._values.setdefault((member_id, channel), {})
        for iv in intervals:
            values[iv.qh_start] = iv

    def load(
        self,
        member_id: str,
        start: datetime,
        by_channel: dict[str, dict[datetime, MeteredInterval]],
    ) -> None:
        """What the store holds from ``start`` on; values noted meanwhile are newer and stay."""
        for channel, intervals in by_channel.items():
            values = self._values.setdefault((member_id, channel), {})
            for qh, iv in intervals.items():
                values.setdefault(qh, iv)
        loaded = self._loaded_from.get(member_id)
        self._loaded_from[member_id] = start if loaded is None else min(start, loaded)

    def covers(self, member_id: str, start: datetime) -> bool:
        """True when every interval of the member from ``start`` on is here."""
        loaded = self._loaded_from.get(member_id)
        return loaded is not None and loaded <= start

    def get(
        self, member_id: str, channel: str, start: datetime, end: datetime
    ) -> dict[datetime, MeteredInterval]:
        """The member's intervals of one channel with ``start <= qh_start < end``."""
        values = self._values.get((member_id, channel), {})
        return {qh: iv for qh, iv in values.items() if start <= qh < end}

    def known(self, member_id: str, channel: str, qh: datetime) -> MeteredInterval | None:
        return self._values.get((member_id, channel), {}).get(qh)

    def prune(self, now: datetime) -> None:
        """Forget what is older than ``keep``."""
        cutoff = now - self._keep
        for values in self._values.values():
            for qh in [qh for qh in values if qh < cutoff]:
                del values[qh]
        for member_id, loaded in self._loaded_from.items():
            self._loaded_from[member_id] = max(loaded, cutoff)


def metered_by_channel(
    stored: Iterable[StoredInterval],
) -> dict[str, dict[datetime, MeteredInterval]]:
    """Stored intervals of a grid meter's counters as metered intervals, by channel."""
    out: dict[str, dict[datetime, MeteredInterval]] = {ch: {} for ch in METER_CHANNELS}
    for s in stored:
        i = s.interval
        if i.channel not in out or i.quality not in METERED_QUALITY:
            continue
        start = utc(i.interval_start)
        out[i.channel][start] = MeteredInterval(start, int(i.energy_wh), METERED_QUALITY[i.quality])
    return out


@dataclass(frozen=True, slots=True)
class MeterChannel:
    """One counter of one member's grid meter."""

    member_id: str
    device: str
    channel: str


class MeteringJob:
    """Closes the quarter-hours of every member's grid meter; see the module doc.

    ``max_gap_s``: readings further apart than this make the quarter-hours between them
    substitutes (L2). ``late_s``: how far back every call looks again for late readings.
    ``lookback``: how far back the first call looks for quarter-hours still open.
    """

    def __init__(
        self,
        store: Store,
        site: Site,
        *,
        max_gap_s: int = 300,
        late_s: int = 900,
        lookback: timedelta = timedelta(hours=36),
        cache: IntervalCache | None = None,
    ) -> None:
        self._store = store
        self._site = site
        self._facts = device_facts(site)
        self._max_gap_s = max_gap_s
        self._late = timedelta(seconds=late_s)
        self._lookback = lookback
        self._open_from: dict[tuple[str, str], datetime] = {}
        #: readings (or windows) metering could not use, by (member, channel): why, newest last
        self.rejected: dict[tuple[str, str], list[str]] = {}
        #: the intervals this job recorded; give it to the settlement job
        self.cache = cache if cache is not None else IntervalCache()

    @property
    def channels(self) -> list[MeterChannel]:
        """Every counter the job meters: each member's meter, import and export."""
        return [
            MeterChannel(m.id, m.meter, channel)
            for m in self._site.members
            for channel in METER_CHANNELS
        ]

    def reconfigure(self, site: Site) -> None:
        """Use a changed site from the next call on (watermarks of kept meters stay)."""
        self._site = site
        self._facts = device_facts(site)
        keep = {(c.member_id, c.channel) for c in self.channels}
        self._open_from = {k: v for k, v in self._open_from.items() if k in keep}

    async def close_quarter_hours(self, now: datetime) -> int:
        """Record the intervals of quarter-hours ended by ``now``; returns versions appended.

        A reading that is no counter value (negative) is ignored; a meter whose readings
        cannot be turned into intervals at all is skipped. Both are logged once and listed in
        :attr:`rejected`; the other meters go on.
        """
        now = utc(now)
        batch: list[Interval] = []
        noted: list[tuple[MeterChannel, tuple[MeteredInterval, ...]]] = []
        advanced: dict[tuple[str, str], datetime] = {}
        for mc in self.channels:
            key = (mc.member_id, mc.channel)
            if key not in self._open_from:
                await self._initial_open_from(mc.member_id, now)
            open_from = self._open_from[key]
            computed = await self._compute(mc, open_from, now)
            if computed is None:
                advanced[key] = open_from
                continue
            metered, anchored = computed
            noted.append((mc, metered))
            # values this job recorded before are in the store already: not sent again
            fresh = [iv for iv in metered if self.cache.known(*key, iv.qh_start) != iv]
            batch += [
                Interval(
                    mc.member_id,
                    mc.channel,
                    iv.qh_start,
                    Decimal(iv.energy_wh),
                    _STORE_QUALITY[iv.quality],
                )
                for iv in fresh
            ]
            if not anchored and metered:
                # no reading before the window: nothing before the first one can be metered
                open_from = max(open_from, metered[0].qh_start)
            advanced[key] = _next_open(metered, open_from)
        appended = await self._store.intervals.record(batch, now=now)
        self._open_from.update(advanced)
        for mc, metered in noted:
            self.cache.note(mc.member_id, mc.channel, metered)
        self.cache.prune(now)
        return appended

    def _rules(self, mc: MeterChannel) -> CounterRules:
        facts = self._facts.get(mc.device)
        return facts.counters.get(mc.channel, CounterRules()) if facts else CounterRules()

    def _ignore(self, mc: MeterChannel, reason: str) -> None:
        """A reading metering leaves out: logged once, listed in :attr:`rejected`."""
        key = (mc.member_id, mc.channel)
        if reason not in self.rejected.get(key, ()):
            log.warning("metering of member %s ignores a reading: %s", mc.member_id, reason)
            self._reject(key, reason)

    def _reject(self, key: tuple[str, str], reason: str) -> None:
        reasons = self.rejected.setdefault(key, [])
        reasons.append(reason)
        del reasons[:-_REJECTED_KEPT]

    async def _initial_open_from(self, member_id: str, now: datetime) -> None:
        """After a start: per channel the first quarter-hour in the lookback not stored as L1;
        what is stored goes into the cache."""
        start = floor_qh(now - self._lookback)
        stored = metered_by_channel(await self._store.intervals.for_member(member_id, start, now))
        for channel, intervals in stored.items():
            t = start
            while (iv := intervals.get(t)) is not None and iv.quality is IntervalQuality.L1:
                t += QH
            self._open_from[(member_id, channel)] = t
        self.cache.load(member_id, start, stored)

    async def _compute(
        self, mc: MeterChannel, open_from: datetime, now: datetime
    ) -> tuple[tuple[MeteredInterval, ...], bool] | None:
        """The intervals computable from the window's readings, and whether an older reading
        anchored them; None when the readings are refused."""
        window_start = min(open_from, floor_qh(now - self._late))
        repo = self._store.readings
        # usually a reading shortly before the window anchors it; else ask for the last one
        readings = await repo.between(mc.device, mc.channel, window_start - _ANCHOR_SEARCH, now)
        anchored = bool(readings) and readings[0].ts <= window_start
        if not anchored:
            anchor = await repo.latest(mc.device, mc.channel, at_or_before=window_start)
            if anchor is not None:
                readings.insert(0, anchor)
                anchored = True
        key = (mc.member_id, mc.channel)
        usable, negative = register_readings(readings)
        reasons = [f"at {r.ts.isoformat()}: negative counter {r.value}" for r in negative]
        rules = self._rules(mc)
        usable, refused = screen_register(usable, rules)
        reasons += [f"at {r.reading.ts.isoformat()}: {r.step.detail}" for r in refused]
        for text in reasons:
            self._ignore(mc, f"{mc.device}/{mc.channel} {text}")
        try:
            metered = register_intervals(
                f"{mc.device}/{mc.channel}",
                usable,
                exchanges=rules.exchanges,
                rollover_wh=rules.rollover_wh,
                max_power_w=rules.max_power_w,
                max_gap_s=self._max_gap_s,
            )
        except MeteringInputError as exc:
            if str(exc) not in self.rejected.get(key, ()):
                log.warning("metering of member %s skipped: %s", mc.member_id, exc)
                self._reject(key, str(exc))
            return None
        # quarter-hours before the window (from the anchor on) are recomputed identically;
        # only whole quarter-hours that have ended are recorded
        return tuple(iv for iv in metered if iv.qh_start + QH <= now), anchored


def _next_open(metered: tuple[MeteredInterval, ...], open_from: datetime) -> datetime:
    """The new watermark: the first quarter-hour from ``open_from`` on that is not L1."""
    t = open_from
    for iv in metered:
        if iv.qh_start < t:
            continue
        if iv.qh_start != t or iv.quality is not IntervalQuality.L1:
            return t
        t = iv.qh_start + QH
    return t
