"""Sharing keys (docs/domain.md §2) as values, and their validation.

Per quarter-hour: consumption ``C_i``, generation ``G``, allocation ``A_i``, surplus
``S = G − Σ A_i``. The keys:

=====================  =================================================================
``AT_STATIC``          ``A_i = min(C_i, k_i·G)``; an unused share is surplus.
``AT_DYNAMIC``         ``A_i = C_i · min(1, G/ΣC)``.
``DE_CONSTANT``        §42b GGV constant key ``f_i`` ("in case of doubt in equal parts"):
                       ``A_i = min(C_i, f_i·G)``, i.e. ``R_i = max(0, C_i − f_i·G)``.
``DE_PROPORTIONAL``    §42b proportional key ``r_i = C_i/ΣC``: ``A_i = min(C_i, r_i·G)``,
                       which is the same allocation as ``AT_DYNAMIC``.
``DE_CONTRACT``        §42c energy sharing: a static share per member from the contract,
                       optionally with *re-offer* (see :mod:`vpp.settlement.allocate`).
=====================  =================================================================

Shares are exact fractions of the generation (``Fraction``/``Decimal``/``int``/``str`` in,
``Fraction`` kept). They are stored as integer numerators over one common denominator so that
the bulk settlement can compute ``k_i·G`` in ``int64`` without rounding. A share of generation
that no member holds (shares summing below 100 %) is surplus, except under re-offer.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from vpp.settlement.errors import KeyConfigError

#: Largest common denominator accepted for shares: keeps ``numerator · G`` inside int64 for
#: any quarter-hour generation below 9·10^9 Wh (9 GWh per quarter-hour).
MAX_DENOMINATOR = 1_000_000_000

ShareLike = Fraction | Decimal | int | str


class KeyKind(enum.StrEnum):
    AT_STATIC = "at_static"
    AT_DYNAMIC = "at_dynamic"
    DE_CONSTANT = "de_constant"
    DE_PROPORTIONAL = "de_proportional"
    DE_CONTRACT = "de_contract"


#: Keys whose allocation is proportional to consumption (no shares).
PROPORTIONAL_KINDS = frozenset({KeyKind.AT_DYNAMIC, KeyKind.DE_PROPORTIONAL})


@dataclass(frozen=True, slots=True)
class SharingKey:
    """One key. ``shares`` maps member id → fraction of generation (share-based kinds only)."""

    kind: KeyKind
    shares: tuple[tuple[str, Fraction], ...] = ()
    reoffer: bool = False

    @property
    def proportional(self) -> bool:
        """True for keys that split by consumption rather than by fixed shares."""
        return self.kind in PROPORTIONAL_KINDS

    def share_of(self, member_id: str) -> Fraction:
        """The member's share of generation (0 when the key gives it none)."""
        for mid, share in self.shares:
            if mid == member_id:
                return share
        return Fraction(0)

    def integer_shares(self, member_ids: Iterable[str]) -> tuple[list[int], int]:
        """Numerators for ``member_ids`` (in that order) over one common denominator."""
        table = dict(self.shares)
        fracs = [table.get(m, Fraction(0)) for m in member_ids]
        denominator = math.lcm(1, *(f.denominator for f in fracs))
        return [int(f * denominator) for f in fracs], denominator


def _to_fraction(value: ShareLike, member_id: str) -> Fraction:
    try:
        share = Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise KeyConfigError(
            f"share {value!r} is not a number", member_id=member_id, field="share"
        ) from exc
    if share < 0:
        raise KeyConfigError(f"share {share} is negative", member_id=member_id, field="share")
    if share > 1:
        raise KeyConfigError(f"share {share} is above 100 %", member_id=member_id, field="share")
    return share


def _shares(shares: Mapping[str, ShareLike]) -> tuple[tuple[str, Fraction], ...]:
    parsed = tuple(sorted((mid, _to_fraction(v, mid)) for mid, v in shares.items()))
    total = sum((s for _, s in parsed), Fraction(0))
    if total > 1:
        listing = ", ".join(f"{m}={float(s):.6g}" for m, s in parsed)
        raise KeyConfigError(
            f"shares sum to {float(total) * 100:.6g} % (> 100 %): {listing}", field="shares"
        )
    denominator = math.lcm(1, *(s.denominator for _, s in parsed))
    if denominator > MAX_DENOMINATOR:
        raise KeyConfigError(
            f"shares need a common denominator of {denominator} (> {MAX_DENOMINATOR}); "
            "give them with fewer digits",
            field="shares",
        )
    return parsed


def static_key(shares: Mapping[str, ShareLike]) -> SharingKey:
    """Austrian static key: member → share of generation; unused shares become surplus."""
    return SharingKey(KeyKind.AT_STATIC, _shares(shares))


def dynamic_key() -> SharingKey:
    """Austrian dynamic key: generation split in proportion to consumption."""
    return SharingKey(KeyKind.AT_DYNAMIC)


def constant_key(
    member_ids: Iterable[str], factors: Mapping[str, ShareLike] | None = None
) -> SharingKey:
    """§42b GGV constant key; without ``factors`` in equal parts among ``member_ids``."""
    ids = sorted(set(member_ids))
    if factors is None:
        if not ids:
            raise KeyConfigError("a constant key needs at least one member", field="members")
        factors = {m: Fraction(1, len(ids)) for m in ids}
    unknown = sorted(set(factors) - set(ids))
    if unknown:
        raise KeyConfigError(
            "factor given for a member outside the key", member_id=unknown[0], field="factors"
        )
    return SharingKey(KeyKind.DE_CONSTANT, _shares(factors))


def proportional_key() -> SharingKey:
    """§42b GGV proportional key ``r_i = C_i / ΣC`` (0 when ΣC = 0)."""
    return SharingKey(KeyKind.DE_PROPORTIONAL)


def contract_key(shares: Mapping[str, ShareLike], *, reoffer: bool = False) -> SharingKey:
    """§42c energy-sharing key from the contract; ``reoffer`` passes unused shares on."""
    return SharingKey(KeyKind.DE_CONTRACT, _shares(shares), reoffer=reoffer)
