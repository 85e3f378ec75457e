"""The fallback ladder: when the solver cannot deliver, a plan still comes back (fault F9).

1. The last valid plan shifted forward to the new horizon, clipped to today's physics
   (measured states of charge, new forecasts, windows); quarter-hours beyond it get the safe
   default.
2. Else the safe default: batteries idle, no curtailment, EVs at their §14a minimum, storage
   heaters charging from the start of their window (what they do uncontrolled).

Unusable series are first made usable (:func:`sanitize`): non-finite or negative values become
0, wrong lengths are cut or padded with 0, so that even a NaN forecast yields a plan.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np

from kernel.quarterhours import QH
from vpp.dispatch.assemble import RawSolution
from vpp.dispatch.bounds import FloatArray, deferrable_bounds, ev_floor_kw, soc_bounds_kwh
from vpp.dispatch.community import (
    QH_H,
    Asset,
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    Prices,
    Pv,
    StorageHeater,
)
from vpp.dispatch.plan import AssetKind, Plan, PlanStatus


def _clean(values: tuple[float, ...], n: int, *, non_negative: bool) -> tuple[float, ...]:
    out = [v if math.isfinite(v) and (v >= 0 or not non_negative) else 0.0 for v in values[:n]]
    return tuple(out + [0.0] * (n - len(out)))


def sanitize(problem: DispatchProblem) -> DispatchProblem:
    """A copy whose series are usable (see module doc); configuration is left as it is."""
    n = problem.n_qh
    p = problem.prices
    prices = Prices(
        _clean(p.import_eur_per_kwh, n, non_negative=False),
        _clean(p.feed_in_eur_per_kwh, n, non_negative=False),
        _clean(p.community_eur_per_kwh, n, non_negative=False),
        _clean(p.network_fee_eur_per_kwh, n, non_negative=True),
    )
    members = []
    for m in problem.members:
        assets: list[Asset] = []
        for a in m.assets:
            if isinstance(a, Pv):
                assets.append(replace(a, forecast_w=_clean(a.forecast_w, n, non_negative=True)))
            elif isinstance(a, Battery) and not (
                math.isfinite(a.soc_wh) and 0 <= a.soc_wh <= a.capacity_wh
            ):
                soc = min(max(a.soc_wh, 0.0), a.capacity_wh) if math.isfinite(a.soc_wh) else 0.0
                assets.append(replace(a, soc_wh=soc))
            else:
                assets.append(a)
        load = _clean(m.load_w, n, non_negative=True)
        members.append(Member(m.member_id, load, tuple(assets)))
    return replace(problem, members=tuple(members), prices=prices)


def _asap_kw(upper_kw: FloatArray, need_kwh: float) -> FloatArray:
    """Full power from the start of the window until the need is met."""
    out = np.zeros_like(upper_kw)
    remaining = need_kwh
    for t, cap in enumerate(upper_kw):
        if remaining <= 0:
            break
        out[t] = min(cap, remaining / QH_H)
        remaining -= out[t] * QH_H
    return out


def _default_deferrable_kw(a: EvCharger | StorageHeater, n: int) -> FloatArray:
    if isinstance(a, EvCharger):
        return ev_floor_kw(replace(a, smart_charging=False), n)
    db = deferrable_bounds(a, n)
    return _asap_kw(db.upper_kw, db.need_kwh)


def safe_default(problem: DispatchProblem) -> RawSolution:
    """Batteries idle, no curtailment, EVs at the minimum, storage heaters uncontrolled."""
    n = problem.n_qh
    raw = RawSolution()
    for m in problem.members:
        for a in m.assets:
            key = (m.member_id, a.asset_id)
            if isinstance(a, Pv):
                raw.pv_kw[key] = np.asarray(a.forecast_w, dtype=float) / 1e3
            elif isinstance(a, Battery):
                raw.charge_kw[key] = np.zeros(n)
                raw.discharge_kw[key] = np.zeros(n)
            else:
                raw.deferrable_kw[key] = _default_deferrable_kw(a, n)
    return raw


def _clip_battery(b: Battery, power_kw: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Charge/discharge that follow ``power_kw`` as far as today's state of charge allows."""
    lo, hi = soc_bounds_kwh(b, len(power_kw))
    soc = b.soc_wh / 1e3
    ch = np.zeros_like(power_kw)
    dis = np.zeros_like(power_kw)
    for t, p in enumerate(power_kw):
        if p > 0:
            room = max(0.0, hi[t] - soc) / (QH_H * b.charge_efficiency)
            ch[t] = min(p, b.max_charge_w / 1e3, room)
        elif p < 0:
            avail = max(0.0, soc - lo[t]) * b.discharge_efficiency / QH_H
            dis[t] = min(-p, b.max_discharge_w / 1e3, avail)
        soc += QH_H * (ch[t] * b.charge_efficiency - dis[t] / b.discharge_efficiency)
    return ch, dis


def shift_plan(problem: DispatchProblem, last: Plan) -> RawSolution | None:
    """The last plan moved to ``problem.start``, or ``None`` if it does not cover it.

    Only plans from the solver count (not fallbacks), of the same community, starting on the
    quarter-hour grid at or before the new start and still covering it.
    """
    if last.status.is_fallback or last.community_id != problem.community_id:
        return None
    offset = problem.start - last.start
    if offset < timedelta(0) or offset % QH:
        return None
    k = offset // QH
    if k >= last.n_qh:
        return None
    n = problem.n_qh
    default = safe_default(problem)
    by_key = {(s.member_id, s.asset_id): s for s in last.assets}

    def shifted(values: tuple[float, ...], tail: FloatArray) -> FloatArray:
        head = np.asarray(values[k : k + n], dtype=float) / 1e3
        return np.concatenate([head, tail[len(head) :]])

    raw = RawSolution()
    for m in problem.members:
        for a in m.assets:
            key = (m.member_id, a.asset_id)
            old = by_key.get(key)
            if isinstance(a, Pv):
                forecast = default.pv_kw[key]
                if old is not None and old.kind is AssetKind.PV and old.limit_w is not None:
                    raw.pv_kw[key] = np.minimum(forecast, shifted(old.limit_w, forecast))
                else:
                    raw.pv_kw[key] = forecast
            elif isinstance(a, Battery):
                if old is not None and old.kind is AssetKind.BATTERY:
                    power = shifted(old.power_w, np.zeros(n))
                    raw.charge_kw[key], raw.discharge_kw[key] = _clip_battery(a, power)
                else:
                    raw.charge_kw[key] = default.charge_kw[key]
                    raw.discharge_kw[key] = default.discharge_kw[key]
            else:
                fallback_kw = default.deferrable_kw[key]
                if old is None or old.kind is AssetKind.PV or old.kind is AssetKind.BATTERY:
                    raw.deferrable_kw[key] = fallback_kw
                    continue
                db = deferrable_bounds(a, n)
                power = shifted(old.power_w, fallback_kw)
                raw.deferrable_kw[key] = np.clip(power, db.lower_kw, db.upper_kw)
    return raw


def fallback_raw(problem: DispatchProblem, last: Plan | None) -> tuple[RawSolution, PlanStatus]:
    """The best rung of the ladder available: shifted last plan, else the safe default."""
    if last is not None:
        raw = shift_plan(problem, last)
        if raw is not None:
            return raw, PlanStatus.FALLBACK_LAST_PLAN
    return safe_default(problem), PlanStatus.FALLBACK_SAFE_DEFAULT
