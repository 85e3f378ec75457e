"""Energy, savings and CO₂ per night, and the preview of any night or a whole year.

Energy per night integrates the segment's level curve (the program at the design class with
the floor applied, ramps included) over its luminaires' power curves. Savings are measured
against full light (100 %) from dusk to dawn of the same night (by default sunset to sunrise,
where photocells switch; configurable), standby included in both.
CO₂ uses a configurable factor in g/kWh. Energy is reported in whole Wh, so a year's total is
a sum of integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lighting.energy import Load, energy_wh, load_of
from lighting.errors import LightingInputError
from lighting.program import Anchor, Program, ResolvedNight, level_curve, resolve_night
from lighting.schedule import Programs, effective_night, resolve_segment_night
from lighting.site import Luminaire, Segment
from lighting.sun import NightAnchors

#: Default CO₂ factor of grid electricity in g/kWh (German mix, order of magnitude; a site
#: sets its supplier's figure).
DEFAULT_CO2_G_PER_KWH = 380.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class NightEnergy:
    night: date
    segment_id: str
    program: str
    rule: str
    energy_wh: int
    baseline_wh: int
    co2_kg: float
    co2_saved_kg: float

    @property
    def savings_wh(self) -> int:
        return self.baseline_wh - self.energy_wh

    @property
    def savings_pct(self) -> float:
        return 100.0 * self.savings_wh / self.baseline_wh if self.baseline_wh else 0.0


@dataclass(frozen=True, slots=True)
class NightPreview:
    energy: NightEnergy
    night: ResolvedNight
    curve: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class YearPreview:
    segment_id: str
    rows: tuple[NightEnergy, ...]

    @property
    def energy_wh(self) -> int:
        return sum(r.energy_wh for r in self.rows)

    @property
    def baseline_wh(self) -> int:
        return sum(r.baseline_wh for r in self.rows)

    @property
    def savings_pct(self) -> float:
        base = self.baseline_wh
        return 100.0 * (base - self.energy_wh) / base if base else 0.0


#: The full-light baseline runs between these anchors: photocell switching, which is close
#: to sunset and sunrise. A site may choose civil dusk and dawn instead.
DUSK_TO_DAWN: tuple[Anchor, Anchor] = (Anchor.SUNSET, Anchor.SUNRISE)


def baseline_wh(
    anchors: NightAnchors, load: Load, baseline: tuple[Anchor, Anchor] = DUSK_TO_DAWN
) -> float:
    """Full light between the ``baseline`` anchors, standby for the rest of the night window,
    in Wh."""
    if Anchor.CLOCK in baseline:
        raise LightingInputError("baseline", "needs two sun anchors, not 'clock'")
    on: datetime = getattr(anchors, baseline[0].value)
    off: datetime = getattr(anchors, baseline[1].value)
    lit_s = max(0.0, (off - on).total_seconds())
    window_s = (anchors.end - anchors.start).total_seconds()
    return (load.power_w(100.0) * lit_s + load.standby_w * (window_s - lit_s)) / 3600.0


def co2_kg(energy: float, co2_g_per_kwh: float) -> float:
    """kg CO₂ for ``energy`` in Wh."""
    return energy / 1000.0 * co2_g_per_kwh / 1000.0


def night_energy(
    segment_id: str,
    resolved: ResolvedNight,
    load: Load,
    co2_g_per_kwh: float = DEFAULT_CO2_G_PER_KWH,
    used_wh: float | None = None,
    baseline: tuple[Anchor, Anchor] = DUSK_TO_DAWN,
) -> NightEnergy:
    """Energy of ``load`` following ``resolved`` (or ``used_wh`` when measured or simulated
    otherwise), with the baseline and CO₂ of the same night."""
    used = energy_wh(level_curve(resolved), load) if used_wh is None else used_wh
    base = baseline_wh(resolved.anchors, load, baseline)
    return NightEnergy(
        resolved.night,
        segment_id,
        resolved.program,
        resolved.rule,
        round(used),
        round(base),
        co2_kg(used, co2_g_per_kwh),
        co2_kg(base - used, co2_g_per_kwh),
    )


def _night(
    segment: Segment, programs: Programs, night: date, program: Program | None
) -> ResolvedNight:
    if program is None:
        resolved = resolve_segment_night(segment, programs, night)
    else:
        resolved = resolve_night(program, segment.place, night, "preview")
    return effective_night(resolved, segment.classing)


def preview_night(
    segment: Segment,
    luminaires: Iterable[Luminaire],
    programs: Programs,
    night: date,
    program: Program | None = None,
    co2_g_per_kwh: float = DEFAULT_CO2_G_PER_KWH,
    baseline: tuple[Anchor, Anchor] = DUSK_TO_DAWN,
) -> NightPreview:
    """One night of a segment: its calendar's program, or ``program`` to try another one."""
    resolved = _night(segment, programs, night, program)
    load = load_of(luminaires)
    curve = tuple(level_curve(resolved))
    used = energy_wh(curve, load)
    return NightPreview(
        night_energy(segment.segment_id, resolved, load, co2_g_per_kwh, used, baseline),
        resolved,
        curve,
    )


def preview_year(
    segment: Segment,
    luminaires: Iterable[Luminaire],
    programs: Programs,
    year: int,
    program: Program | None = None,
    co2_g_per_kwh: float = DEFAULT_CO2_G_PER_KWH,
    progress: Progress | None = None,
    baseline: tuple[Anchor, Anchor] = DUSK_TO_DAWN,
) -> YearPreview:
    """Every night whose evening lies in ``year``; ``progress(done, total)`` after each."""
    load = load_of(luminaires)
    first = date(year, 1, 1)
    total = (date(year + 1, 1, 1) - first).days
    rows: list[NightEnergy] = []
    for k in range(total):
        resolved = _night(segment, programs, first + timedelta(days=k), program)
        rows.append(
            night_energy(segment.segment_id, resolved, load, co2_g_per_kwh, baseline=baseline)
        )
        if progress is not None:
            progress(k + 1, total)
    return YearPreview(segment.segment_id, tuple(rows))


def format_table(rows: Iterable[NightEnergy]) -> str:
    """Markdown table: night, program, energy, full-light baseline, savings, CO₂."""
    lines = [
        "| night | program | rule | energy (Wh) | full light (Wh) | savings (%) | CO₂ (kg) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.night.isoformat()} | {r.program} | {r.rule} | {r.energy_wh} | "
            f"{r.baseline_wh} | {r.savings_pct:.1f} | {r.co2_kg:.2f} |"
        )
    return "\n".join(lines) + "\n"
