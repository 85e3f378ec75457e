"""What the lighting engineer's page shows: the configuration that applies (chosen as the
lighting routes choose it), a street's luminaires with the running lighting's decision and
each node's last report, and the core's previews of a night and a year. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from api.routers.lighting.shared import configured
from api.runtime import LightingControl, Runtime
from lighting.config import LightingConfig
from lighting.preview import NightPreview, YearPreview, preview_night, preview_year
from lighting.program import Program
from lighting.site import LightingIndex
from store import Store


async def lighting_config(
    store: Store, runtime: Runtime | None
) -> tuple[LightingConfig, str] | None:
    """The lighting configuration that applies and where it came from (None: there is none)."""
    chosen = await configured(runtime, store)
    if chosen is None:
        return None
    return chosen.config, chosen.source


@dataclass(frozen=True)
class LuminaireRow:
    """A luminaire's commanded level (None: not decided, or no lighting runs), its reported
    level and power (None: no report yet), and the reason chain of the commanded level."""

    luminaire_id: str
    pole: int
    rated_power_w: float
    level_pct: float | None
    reported_pct: float | None
    power_w: float | None
    reason: str


@dataclass(frozen=True)
class StreetView:
    """A street's luminaires; ``running``: a lighting control runs in this process (else no
    level, report or reason is known, and ``reporting`` is 0 for that reason alone)."""

    street_id: str
    segment_ids: list[str]
    rows: list[LuminaireRow]
    reporting: int
    running: bool


def street_view(
    index: LightingIndex, street_id: str, control: LightingControl | None
) -> StreetView:
    """The street's luminaires in pole order with the running lighting's view of each."""
    decisions = control.decisions if control is not None else {}
    states = control.node_states if control is not None else {}
    street = index.streets[street_id]
    rows = []
    segs: list[str] = []
    for lid in street.luminaire_ids:
        lum = index.luminaires[lid]
        if lum.segment_id not in segs:
            segs.append(lum.segment_id)
        d = decisions.get(lid)
        s = states.get(lid)
        rows.append(
            LuminaireRow(
                luminaire_id=lid,
                pole=lum.pole_index,
                rated_power_w=lum.rated_power_w,
                level_pct=None if d is None else d.level_pct,
                reported_pct=None if s is None else s.level_pct,
                power_w=None if s is None else s.power_w,
                reason="" if d is None else d.reason_text,
            )
        )
    reporting = sum(1 for r in rows if r.reported_pct is not None)
    return StreetView(street_id, segs, rows, reporting, running=control is not None)


def night_preview(
    config: LightingConfig, segment_id: str, night: date, program: Program | None = None
) -> NightPreview:
    """A night of the segment with its calendar's program, or ``program``."""
    site = config.site
    segment = site.index.segments[segment_id]
    return preview_night(
        segment,
        site.index.by_segment.get(segment_id, ()),
        site.programs,
        night,
        program,
        site.co2_g_per_kwh,
    )


def year_preview(config: LightingConfig, segment_id: str, year: int) -> YearPreview:
    """Every night of ``year`` of the segment with its calendar's programs."""
    site = config.site
    segment = site.index.segments[segment_id]
    return preview_year(
        segment,
        site.index.by_segment.get(segment_id, ()),
        site.programs,
        year,
        co2_g_per_kwh=site.co2_g_per_kwh,
    )


def curve_points(curve: Sequence[tuple[datetime, float]]) -> list[list[float]]:
    """The level curve as ``[[UTC seconds, level %], …]`` for the chart."""
    return [[t.timestamp(), round(level, 2)] for t, level in curve]


__all__ = [
    "LuminaireRow",
    "StreetView",
    "curve_points",
    "lighting_config",
    "night_preview",
    "street_view",
    "year_preview",
]
