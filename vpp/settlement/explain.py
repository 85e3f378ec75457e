"""Why a member got what it got in one quarter-hour: the allocation, step by step.

For a member's question ("why 33 Wh and not 33.3?") the statement needs the exact quota, the
whole Wh it was rounded to, the Wh the remainder rule added, and what re-offer rounds moved.
:func:`explain_quarter_hour` recomputes one quarter-hour on Python ints and returns those steps
per member; the numbers equal the settled ones (the tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from vpp.settlement.allocate import allocate_quarter_hour
from vpp.settlement.apportion import apportion
from vpp.settlement.keys import SharingKey


@dataclass(frozen=True, slots=True)
class MemberExplanation:
    """One member's allocation in one quarter-hour (Wh; ``quota_wh`` is exact)."""

    member_id: str
    consumption_wh: int
    quota_wh: Fraction
    rounded_wh: int
    capped_wh: int
    reoffered_wh: int
    allocated_wh: int

    def text(self) -> str:
        """One line a member can read."""
        parts = [
            f"{self.member_id}: consumption {self.consumption_wh} Wh",
            f"exact quota {float(self.quota_wh):.3f} Wh ({self.quota_wh})",
            f"whole Wh after the largest-remainder rule {self.rounded_wh}",
        ]
        if self.capped_wh != self.rounded_wh:
            parts.append(f"capped at consumption {self.capped_wh}")
        if self.reoffered_wh:
            parts.append(f"re-offered {self.reoffered_wh:+d}")  # rounding once: may be −1
        parts.append(f"allocated {self.allocated_wh} Wh")
        return ", ".join(parts)


def explain_quarter_hour(
    key: SharingKey,
    member_ids: Sequence[str],
    consumption_wh: Sequence[int],
    generation_wh: Sequence[int],
) -> tuple[MemberExplanation, ...]:
    """Per member: quota, rounding, cap, re-offer and result for one quarter-hour."""
    g = sum(generation_wh)
    c_total = sum(consumption_wh)
    final = allocate_quarter_hour(key, member_ids, consumption_wh, generation_wh).allocated_wh
    if key.proportional:
        total = min(g, c_total)
        quotas = [Fraction(c * total, c_total) if c_total else Fraction(0) for c in consumption_wh]
        rounded = apportion(total, consumption_wh) if c_total else [0] * len(member_ids)
    else:
        numerators, denominator = key.integer_shares(member_ids)
        quotas = [Fraction(w * g, denominator) for w in numerators]
        weights = [*numerators, denominator - sum(numerators)]
        rounded = apportion(g, weights)[: len(member_ids)]
    out = []
    for i, member_id in enumerate(member_ids):
        capped = min(rounded[i], consumption_wh[i])
        out.append(
            MemberExplanation(
                member_id=member_id,
                consumption_wh=consumption_wh[i],
                quota_wh=quotas[i],
                rounded_wh=rounded[i],
                capped_wh=capped,
                reoffered_wh=final[i] - capped,
                allocated_wh=final[i],
            )
        )
    return tuple(out)
