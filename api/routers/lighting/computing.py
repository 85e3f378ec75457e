"""What the lighting figures share: the core's errors as 422s naming a field, the segment and
program a request names, energy figures, and the longest period one request may compute.

The figures compute with the pure core (:mod:`lighting.preview`, :mod:`lighting.backtest`,
:mod:`lighting.svg`) on the configuration in force
(:func:`api.routers.lighting.shared.current`); nothing is changed, so operators may ask as
well as lighting engineers. A year, a backtest and savings run in a worker thread: a year is
365 nights of sun positions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from api.errors import bad_field
from lighting.config import LightingSite, ProgramConfig
from lighting.errors import LightingInputError
from lighting.preview import NightEnergy, co2_kg
from lighting.program import Program
from lighting.site import Segment

#: Longest backtest and savings period, in nights.
MAX_NIGHTS = 400

#: What the core raises for input it cannot compute with: its own LightingInputError (a
#: ValueError), and arithmetic beyond the calendar (an offset of 10^300 minutes).
CORE_ERRORS = (ValueError, ArithmeticError)


def core_reason(exc: Exception) -> str:
    """The reason of a core error, naming the core's field where it has one."""
    if isinstance(exc, LightingInputError):
        return f"{exc.field}: {exc.reason}"
    return f"cannot be computed: {exc}"


def segment_of(site: LightingSite, segment_id: str, field: str) -> Segment:
    """The segment a request names (a 422 on ``field`` when the site has none of that id)."""
    seg = site.index.segments.get(segment_id)
    if seg is None:
        raise bad_field(field, f"unknown segment {segment_id!r}")
    return seg


def program_of(
    site: LightingSite, name: str | None, posted: ProgramConfig | None
) -> Program | None:
    """The program posted, else the stored one named, else None (the segment's calendar)."""
    if posted is not None:
        return posted.program
    if name is None:
        return None
    program = site.programs.programs.get(name)
    if program is None:
        raise bad_field("body.program_name", f"unknown program {name!r}")
    return program


def nights(first: date, last: date, where: str) -> int:
    """How many nights from ``first`` to ``last`` (a 422 on ``{where}.last_night`` when they
    are out of order or more than :data:`MAX_NIGHTS`)."""
    if last < first:
        raise bad_field(f"{where}.last_night", "before first_night")
    count = (last - first).days + 1
    if count > MAX_NIGHTS:
        raise bad_field(f"{where}.last_night", f"more than {MAX_NIGHTS} nights after first_night")
    return count


def energy_figures(rows: Iterable[NightEnergy], co2_g_per_kwh: float) -> dict[str, int | float]:
    """Energy used and the full-light baseline of ``rows`` in Wh, the savings, and both as
    CO₂ in kg."""
    rows = list(rows)
    used = sum(r.energy_wh for r in rows)
    base = sum(r.baseline_wh for r in rows)
    return {
        "energy_wh": used,
        "baseline_wh": base,
        "savings_wh": base - used,
        "savings_pct": round(100.0 * (base - used) / base, 2) if base else 0.0,
        "co2_kg": round(co2_kg(used, co2_g_per_kwh), 3),
        "co2_saved_kg": round(co2_kg(base - used, co2_g_per_kwh), 3),
    }


__all__ = [
    "CORE_ERRORS",
    "MAX_NIGHTS",
    "core_reason",
    "energy_figures",
    "nights",
    "program_of",
    "segment_of",
]
