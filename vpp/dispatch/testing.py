"""Synthetic communities for tests and benchmarks (test helpers shipped with the model).

``synthetic_community(n_members, seed)`` draws a reproducible town: most members with PV, half
with batteries, two in five with an EV or a storage heater, a day of dynamic
prices with a midday dip (negative feed-in at the lowest hours) and an evening peak.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from vpp.dispatch.community import (
    Asset,
    Battery,
    DispatchProblem,
    EvCharger,
    Member,
    Prices,
    Pv,
    StorageHeater,
)


def _day_shapes(n_qh: int) -> tuple[np.ndarray, np.ndarray]:
    hours = (np.arange(n_qh) * 0.25) % 24
    sun = np.clip(np.sin((hours - 6.0) / 14.0 * np.pi), 0.0, None) ** 1.5
    sun[(hours < 6) | (hours > 20)] = 0.0
    load = 0.35 + 0.25 * np.exp(-((hours - 7.5) ** 2) / 2) + 0.6 * np.exp(-((hours - 19) ** 2) / 4)
    return sun, load


def synthetic_prices(n_qh: int) -> Prices:
    sun, load = _day_shapes(n_qh)
    spot = 0.10 + 0.12 * (load - load.mean()) - 0.14 * sun
    import_ = 0.20 + spot
    feed_in = np.minimum(0.08, spot + 0.02)
    community = np.full(n_qh, 0.18)
    fee = np.full(n_qh, 0.04)
    return Prices(
        tuple(map(float, import_)),
        tuple(map(float, feed_in)),
        tuple(map(float, community)),
        tuple(map(float, fee)),
    )


def synthetic_member(i: int, n_qh: int, rng: np.random.Generator) -> Member:
    sun, load = _day_shapes(n_qh)
    annual_kwh = rng.uniform(2000, 6000)
    noise = rng.uniform(0.8, 1.2, n_qh)
    load_w = load / load.mean() * annual_kwh / 8.76 * noise
    assets: list[Asset] = []
    if rng.random() < 0.8:
        kwp = float(rng.uniform(3, 12))
        pv = sun * kwp * 1000 * rng.uniform(0.7, 1.0, n_qh)
        assets.append(Pv(f"pv{i}", tuple(map(float, pv)), kwp * 1000, rng.random() < 0.9))
    if rng.random() < 0.5:
        cap = float(rng.uniform(5, 15)) * 1000
        assets.append(Battery(f"bat{i}", cap, float(rng.uniform(0.1, 0.9)) * cap, cap / 2, cap / 2))
    r = rng.random()
    if r < 0.2:
        dep = min(n_qh, 28 + int(rng.integers(0, 8)))
        assets.append(
            EvCharger(
                f"ev{i}",
                11000.0,
                float(rng.uniform(5, 25)) * 1000,
                dep,
                smart_charging=bool(rng.random() < 0.5),
            )
        )
    elif r < 0.4:
        end = min(n_qh, 24)
        assets.append(StorageHeater(f"nsh{i}", 6000.0, float(rng.uniform(10, 25)) * 1000, 0, end))
    return Member(f"m{i:05d}", tuple(map(float, load_w)), tuple(assets))


def synthetic_community(
    n_members: int,
    seed: int = 0,
    n_qh: int = 96,
    start: datetime | None = None,
    feeder_limit_w_per_member: float | None = 3000.0,
) -> DispatchProblem:
    """A reproducible community of ``n_members`` over ``n_qh`` quarter-hours."""
    rng = np.random.default_rng(seed)
    members = tuple(synthetic_member(i, n_qh, rng) for i in range(n_members))
    limit = None if feeder_limit_w_per_member is None else feeder_limit_w_per_member * n_members
    return DispatchProblem(
        community_id=f"synthetic-{n_members}-{seed}",
        start=start or datetime.fromisoformat("2026-06-01T00:00:00+00:00"),
        n_qh=n_qh,
        members=members,
        prices=synthetic_prices(n_qh),
        feeder_import_limit_w=limit,
        feeder_export_limit_w=limit,
    )
