"""A community at one snapshot: generation, consumption, sharing and grid, summed per member.

Used by the operator page and the demo's readout, so both show the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.site import Site
from scheduler.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class CommunityNow:
    """A community at one cycle, in W (grid: + = import). ``shared_w``: what members feed in
    that other members use at the same instant. ``unread``: members whose meter did not answer
    (left out of the sums, never counted as zero)."""

    community_id: str
    name: str
    members: int
    generation_w: float
    consumption_w: float
    shared_w: float
    grid_w: float
    unread: int = 0


def community_now(site: Site, community_id: str, snapshot: Snapshot) -> CommunityNow:
    """Sum a community's members at one snapshot. Per member: generation is its PV,
    consumption its grid meter plus PV minus battery charging (a wallbox or heater is behind
    the meter, so it is in the meter's figure)."""
    cfg = site.community(community_id)
    gen = cons = grid = imports = exports = 0.0
    unread = 0
    for m in site.members_of(community_id):
        meter = snapshot.value(m.meter, "power_w")
        if meter is None:
            unread += 1
            continue
        pv = sum(snapshot.value(p.device, "power_w") or 0.0 for p in m.pv)
        battery = 0.0
        if m.battery is not None:
            battery = snapshot.value(m.battery.device, "battery_power_w") or 0.0
        gen += pv
        cons += max(0.0, meter + pv - battery)
        grid += meter
        imports += max(0.0, meter)
        exports += max(0.0, -meter)
    return CommunityNow(
        community_id, cfg.name, len(cfg.members), gen, cons, min(imports, exports), grid, unread
    )


__all__ = ["CommunityNow", "community_now"]
