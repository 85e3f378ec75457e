"""Checks that run before anything is settled: each failure names member, interval and field.

Validation is separate from computation so that bad input is refused *before* a run is built:
an error leaves every earlier run untouched (runs are values; nothing is ever modified).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from kernel.quarterhours import TimeGridError, is_qh_boundary, qh_index, qh_start, require_utc
from vpp.settlement.errors import KeyConfigError, SettlementInputError
from vpp.settlement.model import (
    MAX_COMMUNITIES_PER_MEMBER,
    Community,
    MemberInterval,
    Membership,
    SettlementInputs,
)

_ENERGY_FIELDS = ("consumption_wh", "generation_wh", "own_generation_used_wh")


def _boundary(ts: datetime, what: str, member_id: str | None = None) -> None:
    try:
        utc = require_utc(ts, what)
    except TimeGridError as exc:
        raise SettlementInputError(str(exc), member_id=member_id, field=what) from exc
    if not is_qh_boundary(utc):
        raise SettlementInputError(
            "not on a quarter-hour boundary", member_id=member_id, interval=ts, field=what
        )


def validate_community(community: Community) -> None:
    """Members, keys and tariffs of one community are consistent."""
    seen: set[str] = set()
    for m in community.members:
        if m.member_id in seen:
            raise SettlementInputError("member listed twice", member_id=m.member_id, field="id")
        seen.add(m.member_id)
        if not 0 <= m.participation_pct <= 100:
            raise KeyConfigError(
                f"participation factor {m.participation_pct} % is outside 0..100 %",
                member_id=m.member_id,
                field="participation_pct",
            )
        for name, ts in (("joined", m.joined), ("left", m.left)):
            if ts is not None:
                _boundary(ts, name, m.member_id)
        if m.joined is not None and m.left is not None and m.left <= m.joined:
            raise SettlementInputError(
                "leaves before it joins", member_id=m.member_id, interval=m.left, field="left"
            )
    if not community.keys:
        raise KeyConfigError(f"community {community.community_id!r} has no key", field="keys")
    for i, period in enumerate(community.keys):
        _boundary(period.valid_from, "key valid_from")
        if i and period.valid_from <= community.keys[i - 1].valid_from:
            raise KeyConfigError(
                "key periods are not in increasing order of valid_from",
                interval=period.valid_from,
                field="keys",
            )
        for member_id, _ in period.key.shares:
            if member_id not in seen:
                raise KeyConfigError(
                    f"key names a member unknown to community {community.community_id!r}",
                    member_id=member_id,
                    interval=period.valid_from,
                    field="shares",
                )
    if not community.tariffs:
        raise SettlementInputError("no tariff", field="tariffs")
    for i, tariff in enumerate(community.tariffs):
        if i and tariff.valid_from <= community.tariffs[i - 1].valid_from:
            raise SettlementInputError(
                "tariffs are not in increasing order of valid_from",
                interval=tariff.valid_from,
                field="tariffs",
            )
    if community.emission_factor_g_per_kwh < 0:
        raise SettlementInputError("is negative", field="emission_factor_g_per_kwh")


def validate_participation(communities: Iterable[Community]) -> None:
    """Across communities: at most five per member, participation summing to at most 100 %."""
    total: dict[str, int] = defaultdict(int)
    where: dict[str, list[str]] = defaultdict(list)
    for community in communities:
        for m in community.members:
            total[m.member_id] += m.participation_pct
            where[m.member_id].append(f"{community.community_id}={m.participation_pct}%")
    for member_id in sorted(total):
        if len(where[member_id]) > MAX_COMMUNITIES_PER_MEMBER:
            raise KeyConfigError(
                f"member of {len(where[member_id])} communities "
                f"(at most {MAX_COMMUNITIES_PER_MEMBER}): {', '.join(where[member_id])}",
                member_id=member_id,
                field="communities",
            )
        if total[member_id] > 100:
            raise KeyConfigError(
                f"participation factors sum to {total[member_id]} % (> 100 %): "
                f"{', '.join(where[member_id])}",
                member_id=member_id,
                field="participation_pct",
            )


def _period(inputs: SettlementInputs) -> None:
    """The period lies on the quarter-hour grid, is not empty, and a key and a tariff are in
    force at its start."""
    community = inputs.community
    _boundary(inputs.period_start, "period_start")
    _boundary(inputs.period_end, "period_end")
    if inputs.period_end <= inputs.period_start:
        raise SettlementInputError("period ends before it starts", field="period_end")
    if community.keys[0].valid_from > inputs.period_start:
        raise KeyConfigError(
            "no key in force at the start of the period",
            interval=inputs.period_start,
            field="keys",
        )
    if community.tariffs[0].valid_from > inputs.period_start:
        raise SettlementInputError(
            "no tariff in force at the start of the period",
            interval=inputs.period_start,
            field="tariffs",
        )


def _interval(inputs: SettlementInputs, members: dict[str, Membership], iv: MemberInterval) -> None:
    """One interval belongs to a member of the community, active then, inside the period, on
    the grid, with whole non-negative Wh."""
    membership = members.get(iv.member_id)
    if membership is None:
        raise SettlementInputError(
            f"member unknown to community {inputs.community.community_id!r}",
            member_id=iv.member_id,
            interval=iv.qh_start,
            field="member_id",
        )
    _boundary(iv.qh_start, "qh_start", iv.member_id)
    if not inputs.period_start <= iv.qh_start < inputs.period_end:
        raise SettlementInputError(
            "interval outside the settlement period",
            member_id=iv.member_id,
            interval=iv.qh_start,
            field="qh_start",
        )
    if not membership.active_at(iv.qh_start):
        raise SettlementInputError(
            "member is not in the community in this interval",
            member_id=iv.member_id,
            interval=iv.qh_start,
            field="qh_start",
        )
    for name in _ENERGY_FIELDS:
        value = getattr(iv, name)
        if not isinstance(value, int) or isinstance(value, bool):
            reason = f"must be whole Wh (int), got {value!r}"
        elif value < 0:
            reason = f"negative energy {value} Wh"
        else:
            continue
        raise SettlementInputError(reason, member_id=iv.member_id, interval=iv.qh_start, field=name)


def validate_inputs(inputs: SettlementInputs) -> dict[str, dict[int, MemberInterval]]:
    """Validate a run's inputs; return intervals per member, keyed by quarter-hour index."""
    community = inputs.community
    validate_community(community)
    _period(inputs)
    members = {m.member_id: m for m in community.members}
    by_member: dict[str, dict[int, MemberInterval]] = {m: {} for m in members}
    last: dict[str, int] = {}
    for iv in inputs.intervals:
        _interval(inputs, members, iv)
        index = qh_index(iv.qh_start)
        previous = last.get(iv.member_id)
        if previous is not None and index <= previous:
            reason = "duplicated" if index == previous else "out of order"
            raise SettlementInputError(
                f"interval {reason} (follows {qh_start(previous).isoformat()})",
                member_id=iv.member_id,
                interval=iv.qh_start,
                field="qh_start",
            )
        last[iv.member_id] = index
        by_member[iv.member_id][index] = iv
    _require_complete(inputs, by_member)
    return by_member


def _require_complete(
    inputs: SettlementInputs, by_member: dict[str, dict[int, MemberInterval]]
) -> None:
    """Every active member needs a value (real or substitute) for every quarter-hour."""
    first, end = qh_index(inputs.period_start), qh_index(inputs.period_end)
    for m in inputs.community.members:
        have = by_member[m.member_id]
        for index in _active_indices(first, end, m.joined, m.left):
            if index not in have:
                raise SettlementInputError(
                    "no metered value (real or substitute) for this interval",
                    member_id=m.member_id,
                    interval=qh_start(index),
                    field="consumption_wh",
                )


def _active_indices(
    first: int, end: int, joined: datetime | None, left: datetime | None
) -> Sequence[int]:
    lo = first if joined is None else max(first, qh_index(joined))
    hi = end if left is None else min(end, qh_index(left))
    return range(lo, max(lo, hi))
