"""The live state of a running service as the operator's API and page show it: the communities
now and every asset, from the runtime's newest cycle (:meth:`api.runtime.Runtime.live`: its
snapshot, the devices away since start and the setpoints its writer keeps in force) and its
site. Without a runtime, without a site, or before the first cycle there is no live state:
the functions say so with None instead of showing zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.runtime import Runtime, site_of
from scheduler.assets import AssetState, asset_states
from scheduler.community import community_now


@dataclass(frozen=True)
class CommunityLive:
    """A community at the newest cycle, in kW (grid: + = import); None: not measured."""

    community_id: str
    name: str
    members: int
    unread: int
    generation_kw: float
    consumption_kw: float
    shared_kw: float
    grid_kw: float
    import_headroom_kw: float | None
    export_headroom_kw: float | None
    at: datetime


def community_live(runtime: Runtime | None) -> list[CommunityLive] | None:
    """The communities now from the runtime's newest cycle; None without a runtime, a site or
    a cycle.

    Per member: generation is its PV, consumption its grid meter plus PV minus battery
    charging; a member whose grid meter did not answer is left out and counted as unread,
    never as zero. Shared is what members export that others import at the same instant."""
    site = site_of(runtime)
    if runtime is None or site is None:
        return None
    snapshot = runtime.live().snapshot
    if snapshot is None:
        return None
    out: list[CommunityLive] = []
    for c in site.communities:
        now = community_now(site, c.id, snapshot)
        imp = c.feeder_import_limit_w
        exp = c.feeder_export_limit_w
        grid = now.grid_w
        out.append(
            CommunityLive(
                community_id=c.id,
                name=c.name,
                members=now.members,
                unread=now.unread,
                generation_kw=now.generation_w / 1000,
                consumption_kw=now.consumption_w / 1000,
                shared_kw=now.shared_w / 1000,
                grid_kw=grid / 1000,
                import_headroom_kw=None if imp is None else (imp - max(0.0, grid)) / 1000,
                export_headroom_kw=None if exp is None else (exp - max(0.0, -grid)) / 1000,
                at=snapshot.at,
            )
        )
    return out


@dataclass(frozen=True)
class AssetsNow:
    """Every device of the site (``assets``) at the newest cycle ``at`` (None before the
    first cycle)."""

    at: datetime | None
    assets: list[AssetState]

    @property
    def available(self) -> int:
        return sum(1 for a in self.assets if a.available)


def assets_now(runtime: Runtime | None) -> AssetsNow | None:
    """The site's devices with their live state; None without a runtime that has a site."""
    site = site_of(runtime)
    if runtime is None or site is None:
        return None
    live = runtime.live()
    snapshot = live.snapshot
    return AssetsNow(
        at=snapshot.at if snapshot is not None else None,
        assets=asset_states(site, snapshot, live.away, live.in_force),
    )


__all__ = ["AssetsNow", "CommunityLive", "assets_now", "community_live"]
