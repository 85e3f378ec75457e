"""Settlement runs: versions append, money and energy stay exact, members see their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from store import Statement, Store
from store.errors import StoreError
from tests.store.conftest import T0

END = T0 + timedelta(days=31)


def statement(member: str, consumption: str, amount: str) -> Statement:
    c = Decimal(consumption)
    return Statement(
        member_id=member,
        consumption_wh=c,
        generation_wh=Decimal(0),
        shared_received_wh=c / 2,
        shared_delivered_wh=Decimal(0),
        grid_import_wh=c - c / 2,
        grid_export_wh=Decimal(0),
        amount_eur=Decimal(amount),
        co2_g=Decimal("123.456"),
        details={"key": "dynamic"},
    )


async def test_restatement_appends_a_new_version(store: Store) -> None:
    v1 = await store.settlement.append(
        "c1",
        T0,
        END,
        [statement("m1", "1000.5", "0.123456"), statement("m2", "2", "1")],
        reason="monthly",
        now=T0,
    )
    v2 = await store.settlement.append(
        "c1", T0, END, [statement("m1", "1100.5", "0.2")], reason="meter data corrected", now=T0
    )
    assert (v1.version, v2.version) == (1, 2)
    versions = await store.settlement.versions("c1", T0, END)
    assert [r.version for r in versions] == [1, 2]
    assert versions[0].statements == v1.statements  # version 1 untouched
    assert versions[0].statements[0].amount_eur == Decimal("0.123456")
    assert versions[0].statements[0].consumption_wh == Decimal("1000.500")
    latest = await store.settlement.latest("c1", T0, END)
    assert latest is not None
    assert latest.reason == "meter data corrected"
    # another period has its own numbering
    other = await store.settlement.append(
        "c1", END, END + timedelta(days=30), [], reason="x", now=T0
    )
    assert other.version == 1


async def test_a_member_sees_only_the_newest_version_and_only_their_statement(
    store: Store,
) -> None:
    await store.settlement.append(
        "c1",
        T0,
        END,
        [statement("m1", "10", "1"), statement("m2", "20", "2")],
        reason="monthly",
        now=T0,
    )
    await store.settlement.append(
        "c1",
        T0,
        END,
        [statement("m1", "11", "1.5"), statement("m2", "20", "2")],
        reason="restated",
        now=T0,
    )
    rows = await store.settlement.member_statements("m1", T0, END)
    assert len(rows) == 1
    run, mine = rows[0]
    assert run.version == 2
    assert mine.consumption_wh == Decimal("11.000")
    assert [s.member_id for s in run.statements] == ["m1"]


async def test_exact_sums_over_many_statements(store: Store) -> None:
    """0.1 EUR a thousand times is exactly 100 EUR (a float sum would not be)."""
    statements = [statement(f"m{i:04d}", "0.002", "0.1") for i in range(1000)]
    run = await store.settlement.append("c1", T0, END, statements, reason="r", now=T0)
    assert sum((s.amount_eur for s in run.statements), Decimal(0)) == Decimal("100")
    assert sum((s.consumption_wh for s in run.statements), Decimal(0)) == Decimal("2")


async def test_floats_are_refused_for_money(store: Store) -> None:
    bad = statement("m1", "1", "1")
    bad = Statement(**{**{f: getattr(bad, f) for f in bad.__dataclass_fields__}, "amount_eur": 0.1})  # type: ignore[arg-type]
    with pytest.raises((StoreError, TypeError), match="float"):
        await store.settlement.append("c1", T0, END, [bad], reason="r", now=T0)
    assert await store.settlement.versions("c1", T0, END) == []


async def test_concurrent_restatements_get_consecutive_versions(
    store: Store, open_store: Callable[..., Store]
) -> None:
    async with open_store() as other:
        runs = await asyncio.gather(
            *(
                s.settlement.append(
                    "c1", T0, END, [statement("m1", str(i), "1")], reason=f"r{i}", now=T0
                )
                for i, s in enumerate([store, other] * 3)
            )
        )
    assert sorted(r.version for r in runs) == [1, 2, 3, 4, 5, 6]


async def test_duplicate_member_in_one_run_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="duplicate member"):
        await store.settlement.append(
            "c1",
            T0,
            END,
            [statement("m1", "1", "1"), statement("m1", "2", "1")],
            reason="r",
            now=T0,
        )
