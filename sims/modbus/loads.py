"""Simulated controllable loads: a wallbox with a car that comes and goes, and a storage heater.

Both speak their register template (``ev_charger``, ``storage_heater``) with the same layout.
Input registers: 0–1 load power W (int32), 2–3 lifetime energy Wh (uint32), 4 state (0 nothing
to do: no car / outside the window, 1 connected or in the window but not drawing, 2 drawing),
5 max power W, 6 minimum power W it keeps while drawing (§14a EnWG: 4200 W for a controlled
wallbox), 7–8 energy of this session Wh (uint32), 9 core charge level (0.1 %, heater only).
Holding registers: 100–101 power setpoint W (int32), 102 revert time s, 103 enable.

A *session* is a span of time with an energy need: a car plugged in from the evening to the
morning, or a heater's charging window in the night. During a session the device draws

* its commanded power while the setpoint is enabled, raised to its minimum power (§14a) and
  capped at its maximum, or
* its default -- full power -- when nothing was commanded, or when the setpoint was not
  rewritten within the revert time (it reverts by itself: the fail-safe a controller relies
  on),

until the session's need is met; then it stops (state 1). Outside a session it draws nothing.
State advances from the injected clock on every request, in steps that end exactly at the
revert instant and at session boundaries, so the energy is exact.
"""

from __future__ import annotations

import abc
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.clock import Clock
from protocols.modbus.codec import decode, encode
from sims.modbus.server import SimUnit

_MAX_STEP_S = 60.0
IDLE, CONNECTED, DRAWING = 0, 1, 2
#: §14a EnWG (BK6-22-300): a controlled consumer keeps at least this power.
P14A_MIN_W = 4200.0


@dataclass(frozen=True, slots=True)
class Session:
    """A car plugged in, or a heater's charging window: ``start`` ≤ t < ``end``, needing
    ``need_wh``."""

    start: datetime
    end: datetime
    need_wh: float


@dataclass(frozen=True, slots=True)
class EvParams:
    """A wallbox and the car that uses it. The car arrives around ``arrival`` (local) and
    leaves around ``departure`` the next morning, each shifted by up to ``jitter_min`` minutes;
    it needs ``energy_need_wh`` × a factor in [0.6, 1.4] per day (seeded, reproducible)."""

    max_w: float = 11_000.0
    min_w: float = P14A_MIN_W
    energy_need_wh: float = 15_000.0
    arrival: time = time(18, 0)
    departure: time = time(7, 0)
    jitter_min: float = 45.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_w <= self.max_w:
            raise ValueError(f"ev: min_w {self.min_w} must lie in 0..max_w ({self.max_w})")
        if self.energy_need_wh < 0:
            raise ValueError(f"ev: energy_need_wh {self.energy_need_wh} must be >= 0")


@dataclass(frozen=True, slots=True)
class HeaterParams:
    """A storage heater that charges ``energy_need_wh`` into its core in its window
    ``window_start``–``window_end`` (local; past midnight when the end is earlier)."""

    max_w: float = 6_000.0
    min_w: float = 0.0
    energy_need_wh: float = 30_000.0
    window_start: time = time(22, 0)
    window_end: time = time(6, 0)

    def __post_init__(self) -> None:
        if not 0 <= self.min_w <= self.max_w:
            raise ValueError(f"heater: min_w {self.min_w} must lie in 0..max_w ({self.max_w})")
        if self.energy_need_wh < 0:
            raise ValueError(f"heater: energy_need_wh {self.energy_need_wh} must be >= 0")
        if self.window_start == self.window_end:
            raise ValueError("heater: window_start and window_end must differ")


def _span(day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``start`` on ``day`` to ``end`` on the same day, or the next one when ``end`` ≤ ``start``."""
    a = datetime.combine(day, start, zone)
    b = datetime.combine(day if end > start else day + timedelta(days=1), end, zone)
    return a, b


class ControllableLoadSim(SimUnit, abc.ABC):
    """A device that draws power in sessions, following a reverting power setpoint."""

    def __init__(
        self, clock: Clock, *, max_w: float, min_w: float, tz: str, energy_wh: float
    ) -> None:
        super().__init__()
        self.clock = clock
        self.max_w = max_w
        self.min_w = min_w
        self.zone = ZoneInfo(tz)
        self.energy_wh = energy_wh
        self.setpoint_w = 0.0
        self.revert_s = 0
        self.enabled = False
        self.written_at = clock.monotonic()
        self.reverts = 0
        self.power_w = 0.0
        self.session: Session | None = None
        self.session_wh = 0.0
        self._sessions: dict[date, Session | None] = {}
        self._inputs = self.add_bank("input", 0, [0] * 10)
        self._holding = self.add_bank("holding", 100, [0] * 4)
        self.writable = {100, 101, 102, 103}
        self._t = clock.monotonic()
        # started in the middle of a session (the demo opens at dawn): it has been drawing at
        # full power since the session began, as far as its need allowed
        now = clock.now()
        self._enter(self.session_at(now))
        if self.session is not None:
            hours = (now - self.session.start).total_seconds() / 3600.0
            self.session_wh = min(self.session.need_wh, self.max_w * hours)
        self.refresh()

    @abc.abstractmethod
    def _session_of(self, day: date) -> Session | None:
        """The session that starts on local ``day`` (None: none that day)."""

    def _charge_level_pct(self, at: datetime) -> float:
        return 0.0

    def _sessions_near(self, at: datetime) -> list[Session]:
        day = at.astimezone(self.zone).date()
        out = []
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            if d not in self._sessions:
                if len(self._sessions) > 16:
                    self._sessions.clear()
                self._sessions[d] = self._session_of(d)
            s = self._sessions[d]
            if s is not None:
                out.append(s)
        return out

    def session_at(self, at: datetime) -> Session | None:
        """The session running at ``at`` (None: nothing to do)."""
        for s in self._sessions_near(at):
            if s.start <= at < s.end:
                return s
        return None

    def _next_boundary(self, at: datetime) -> datetime | None:
        times = [t for s in self._sessions_near(at) for t in (s.start, s.end) if t > at]
        return min(times, default=None)

    @property
    def commanded(self) -> bool:
        """Whether a setpoint is in force (not reverted, enabled)."""
        return self.enabled

    def _revert_if_due(self, at_mono: float) -> None:
        if self.enabled and self.revert_s and at_mono - self.written_at >= self.revert_s:
            self.enabled = False
            self.setpoint_w = 0.0
            self._holding.put(100, [*encode(0, "int32"), self.revert_s, 0])
            self.reverts += 1

    def _deadline(self) -> float:
        if self.enabled and self.revert_s:
            return self.written_at + self.revert_s
        return math.inf

    def target_w(self) -> float:
        """What the device draws while its session needs energy."""
        if not self.enabled:
            return self.max_w
        return min(self.max_w, max(self.min_w, self.setpoint_w))

    def _enter(self, session: Session | None) -> None:
        if session != self.session:
            self.session = session
            self.session_wh = 0.0

    @property
    def remaining_wh(self) -> float:
        """Energy the running session still needs (0 outside a session)."""
        return 0.0 if self.session is None else max(0.0, self.session.need_wh - self.session_wh)

    def refresh(self) -> None:
        now_mono = self.clock.monotonic()
        now = self.clock.now()
        t = self._t
        while t < now_mono:
            at = now - timedelta(seconds=now_mono - t)
            self._revert_if_due(t)
            self._enter(self.session_at(at))
            end = min(t + _MAX_STEP_S, now_mono)
            deadline = self._deadline()
            if t < deadline < end:
                end = deadline
            boundary = self._next_boundary(at)
            if boundary is not None:
                b = t + (boundary - at).total_seconds()
                if t < b < end:
                    end = b
            if self.remaining_wh > 0:
                e = min(self.remaining_wh, self.target_w() * (end - t) / 3600.0)
                self.session_wh += e
                self.energy_wh += e
            t = end
        self._t = now_mono
        self._revert_if_due(now_mono)
        self._enter(self.session_at(now))
        self.power_w = self.target_w() if self.remaining_wh > 1e-9 else 0.0
        self._publish(now)

    def _publish(self, now: datetime) -> None:
        if self.session is None:
            state = IDLE
        elif self.power_w > 0:
            state = DRAWING
        else:
            state = CONNECTED
        regs = [
            *encode(round(self.power_w), "int32"),
            *encode(round(self.energy_wh), "uint32"),
            state,
            round(self.max_w),
            round(self.min_w),
            *encode(round(self.session_wh), "uint32"),
            round(self._charge_level_pct(now) * 10),
        ]
        self._inputs.put(0, regs)

    def on_write(self, address: int, values: list[int]) -> None:
        regs = self._holding.get(100, 4)
        self.setpoint_w = float(decode(regs[0:2], "int32"))
        self.revert_s = regs[2]
        self.enabled = regs[3] == 1
        self.written_at = self.clock.monotonic()
        self.refresh()


class EvChargerSim(ControllableLoadSim):
    """A wallbox (``ev_charger`` template) and a car arriving in the evening, leaving in the
    morning, with a daily energy need (see :class:`EvParams`)."""

    def __init__(
        self,
        clock: Clock,
        params: EvParams | None = None,
        *,
        tz: str = "Europe/Berlin",
        energy_wh: float = 2_000_000.0,
    ) -> None:
        self.params = params or EvParams()
        super().__init__(
            clock,
            max_w=self.params.max_w,
            min_w=self.params.min_w,
            tz=tz,
            energy_wh=energy_wh,
        )

    def _session_of(self, day: date) -> Session | None:
        p = self.params
        rng = random.Random(f"ev-{p.seed}-{day.isoformat()}")
        start, end = _span(day, p.arrival, p.departure, self.zone)
        start += timedelta(minutes=rng.uniform(-p.jitter_min, p.jitter_min))
        end += timedelta(minutes=rng.uniform(-p.jitter_min, p.jitter_min))
        if end <= start:
            return None
        return Session(start, end, p.energy_need_wh * rng.uniform(0.6, 1.4))


class StorageHeaterSim(ControllableLoadSim):
    """A storage heater (``storage_heater`` template) charging its core in its window (see
    :class:`HeaterParams`); the core gives its heat off until the next window."""

    def __init__(
        self,
        clock: Clock,
        params: HeaterParams | None = None,
        *,
        tz: str = "Europe/Berlin",
        energy_wh: float = 5_000_000.0,
    ) -> None:
        self.params = params or HeaterParams()
        self._last_session: Session | None = None
        self._last_fill_wh = 0.0
        super().__init__(
            clock,
            max_w=self.params.max_w,
            min_w=self.params.min_w,
            tz=tz,
            energy_wh=energy_wh,
        )

    def _session_of(self, day: date) -> Session | None:
        p = self.params
        start, end = _span(day, p.window_start, p.window_end, self.zone)
        return Session(start, end, p.energy_need_wh)

    def _charge_level_pct(self, at: datetime) -> float:
        """Core charge: filled during the window, emptying linearly until the next one."""
        need = self.params.energy_need_wh
        if need <= 0:
            return 0.0
        if self.session is not None:
            return min(100.0, 100.0 * self.session_wh / need)
        past = [s for s in self._sessions_near(at) if s.end <= at]
        future = [s for s in self._sessions_near(at) if s.start > at]
        if not past or not future:
            return 0.0
        last, nxt = past[-1], future[0]
        full = 100.0 * self._last_fill_wh / need if self._last_session == last else 100.0
        left = (nxt.start - at) / (nxt.start - last.end)
        return max(0.0, min(100.0, full * left))

    def _enter(self, session: Session | None) -> None:
        if session != self.session and self.session is not None:
            self._last_session = self.session
            self._last_fill_wh = self.session_wh
        super()._enter(session)
