"""A member's quarter-hours from its meter channels: the input of the settlement.

At the member's grid connection the import register gives consumption and the export register
generation fed in (sign convention: import positive). Where PV behind the meter is metered on
its own channel, the PV used on site is ``max(0, PV − export)`` (PV that did not leave the
house). A quarter-hour is produced only when every given channel has it; its quality is the
worst of the channels'.
"""

from __future__ import annotations

from collections.abc import Iterable

from vpp.metering.intervals import MeteredInterval
from vpp.metering.quality import worst
from vpp.settlement.model import MemberInterval


def member_intervals(
    member_id: str,
    import_intervals: Iterable[MeteredInterval],
    export_intervals: Iterable[MeteredInterval] | None = None,
    pv_intervals: Iterable[MeteredInterval] | None = None,
) -> tuple[MemberInterval, ...]:
    """Combine channel intervals into :class:`MemberInterval` values, sorted by quarter-hour."""
    imp = {iv.qh_start: iv for iv in import_intervals}
    exp = None if export_intervals is None else {iv.qh_start: iv for iv in export_intervals}
    pv = None if pv_intervals is None else {iv.qh_start: iv for iv in pv_intervals}
    out: list[MemberInterval] = []
    for qh in sorted(imp):
        i = imp[qh]
        e = exp.get(qh) if exp is not None else None
        p = pv.get(qh) if pv is not None else None
        if (exp is not None and e is None) or (pv is not None and p is None):
            continue
        generation = e.energy_wh if e is not None else 0
        own_used = max(0, p.energy_wh - generation) if p is not None else 0
        qualities = [iv.quality for iv in (i, e, p) if iv is not None]
        out.append(
            MemberInterval(
                member_id=member_id,
                qh_start=qh,
                consumption_wh=i.energy_wh,
                generation_wh=generation,
                own_generation_used_wh=own_used,
                quality=worst(*qualities),
            )
        )
    return tuple(out)
