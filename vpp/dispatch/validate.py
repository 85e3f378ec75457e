"""Check a :class:`DispatchProblem` before any model is built.

Configuration errors raise :class:`InvalidAssetConfig`; unusable series (NaN, inf, wrong length,
negative forecasts) raise :class:`InvalidForecast`. Both name the member, asset and field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from vpp.dispatch.community import (
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    Pv,
    StorageHeater,
)
from vpp.dispatch.errors import InvalidAssetConfig, InvalidForecast


def _series(
    values: Sequence[float],
    n_qh: int,
    member: str | None,
    asset: str | None,
    name: str,
    *,
    non_negative: bool,
) -> None:
    if len(values) != n_qh:
        raise InvalidForecast(
            member, asset, name, f"has {len(values)} values, the horizon has {n_qh} quarter-hours"
        )
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise InvalidForecast(member, asset, name, f"value {v!r} at quarter-hour {i}")
        if non_negative and v < 0:
            raise InvalidForecast(member, asset, name, f"negative value {v} at quarter-hour {i}")


def _config(ok: bool, member: str, asset: str, name: str, reason: str) -> None:
    if not ok:
        raise InvalidAssetConfig(member, asset, name, reason)


def _non_negative(value: float, member: str, asset: str, name: str) -> None:
    _config(math.isfinite(value) and value >= 0, member, asset, name, f"must be ≥ 0, got {value}")


def _efficiency(value: float, member: str, asset: str, name: str) -> None:
    _config(0 < value <= 1, member, asset, name, f"must be in (0, 1], got {value}")


def _battery(b: Battery, m: str) -> None:
    for name in ("capacity_wh", "max_charge_w", "max_discharge_w", "min_soc_wh"):
        _non_negative(getattr(b, name), m, b.asset_id, name)
    _efficiency(b.charge_efficiency, m, b.asset_id, "charge_efficiency")
    _efficiency(b.discharge_efficiency, m, b.asset_id, "discharge_efficiency")
    _config(
        b.min_soc_wh <= b.capacity_wh,
        m,
        b.asset_id,
        "min_soc_wh",
        f"{b.min_soc_wh} exceeds capacity_wh {b.capacity_wh}",
    )
    if not math.isfinite(b.soc_wh) or not 0 <= b.soc_wh <= b.capacity_wh * (1 + 1e-9):
        raise InvalidForecast(
            m, b.asset_id, "soc_wh", f"measured {b.soc_wh} outside [0, {b.capacity_wh}]"
        )
    if b.terminal_soc_wh is not None:
        _config(
            0 <= b.terminal_soc_wh <= b.capacity_wh,
            m,
            b.asset_id,
            "terminal_soc_wh",
            f"{b.terminal_soc_wh} outside [0, {b.capacity_wh}]",
        )


def _ev(ev: EvCharger, m: str) -> None:
    for name in ("max_power_w", "energy_needed_wh", "min_power_w"):
        _non_negative(getattr(ev, name), m, ev.asset_id, name)
    _config(
        0 <= ev.arrival_qh <= ev.departure_qh,
        m,
        ev.asset_id,
        "departure_qh",
        f"window [{ev.arrival_qh}, {ev.departure_qh}) is not a window",
    )
    if ev.energy_max_wh is not None:
        _config(
            ev.energy_max_wh >= ev.energy_needed_wh,
            m,
            ev.asset_id,
            "energy_max_wh",
            f"{ev.energy_max_wh} is below energy_needed_wh {ev.energy_needed_wh}",
        )


def _heater(h: StorageHeater, m: str) -> None:
    for name in ("max_power_w", "energy_needed_wh"):
        _non_negative(getattr(h, name), m, h.asset_id, name)
    _config(
        0 <= h.window_start_qh <= h.window_end_qh,
        m,
        h.asset_id,
        "window_end_qh",
        f"window [{h.window_start_qh}, {h.window_end_qh}) is not a window",
    )
    if h.capacity_wh is not None:
        _config(
            h.capacity_wh >= h.energy_needed_wh,
            m,
            h.asset_id,
            "capacity_wh",
            f"{h.capacity_wh} is below energy_needed_wh {h.energy_needed_wh}",
        )


def _member(member: Member, n_qh: int) -> None:
    m = member.member_id
    _series(member.load_w, n_qh, m, None, "load_w", non_negative=True)
    seen: set[str] = set()
    for a in member.assets:
        if a.asset_id in seen:
            raise InvalidAssetConfig(m, a.asset_id, "asset_id", "appears twice in this member")
        seen.add(a.asset_id)
        if isinstance(a, Pv):
            _non_negative(a.rated_power_w, m, a.asset_id, "rated_power_w")
            _series(a.forecast_w, n_qh, m, a.asset_id, "forecast_w", non_negative=True)
        elif isinstance(a, Battery):
            _battery(a, m)
        elif isinstance(a, EvCharger):
            _ev(a, m)
        else:
            _heater(a, m)


def validate_problem(problem: DispatchProblem) -> None:
    """Raise :class:`InvalidAssetConfig` or :class:`InvalidForecast` for the first bad field."""
    if problem.start.tzinfo is None or problem.start.utcoffset() != timedelta(0):
        raise InvalidAssetConfig(
            None, None, "start", f"must be an aware UTC datetime: {problem.start}"
        )
    if problem.n_qh < 1:
        raise InvalidAssetConfig(None, None, "n_qh", f"must be at least 1, got {problem.n_qh}")
    n = problem.n_qh
    p = problem.prices
    _series(p.import_eur_per_kwh, n, None, None, "import_eur_per_kwh", non_negative=False)
    _series(p.feed_in_eur_per_kwh, n, None, None, "feed_in_eur_per_kwh", non_negative=False)
    _series(p.community_eur_per_kwh, n, None, None, "community_eur_per_kwh", non_negative=False)
    _series(p.network_fee_eur_per_kwh, n, None, None, "network_fee_eur_per_kwh", non_negative=True)
    for name in ("feeder_import_limit_w", "feeder_export_limit_w"):
        limit = getattr(problem, name)
        if limit is not None and not (math.isfinite(limit) and limit >= 0):
            raise InvalidAssetConfig(None, None, name, f"must be ≥ 0 or None, got {limit}")
    ids: set[str] = set()
    for member in problem.members:
        if member.member_id in ids:
            raise InvalidAssetConfig(member.member_id, None, "member_id", "appears twice")
        ids.add(member.member_id)
        _member(member, n)
