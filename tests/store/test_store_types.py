"""Column types: exact decimals and UTC instants mean the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from store import Store
from store.engine import write_tx
from store.errors import StoreError
from store.types import ExactDecimal, UTCDateTime

scratch = MetaData()
probe = Table(
    "type_probe",
    scratch,
    Column("id", Integer, primary_key=True),
    Column("energy_wh", ExactDecimal(18, 3)),
    Column("amount_eur", ExactDecimal(18, 6)),
    Column("ts", UTCDateTime()),
)

DECIMALS_3 = st.decimals(
    min_value=Decimal("-999999999999.999"),
    max_value=Decimal("999999999999.999"),
    places=3,
    allow_nan=False,
    allow_infinity=False,
)


@given(value=DECIMALS_3)
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_exact_decimal_bind_and_result_round_trip(dialect: object, value: Decimal) -> None:
    t = ExactDecimal(18, 3)
    bound = t.process_bind_param(value, dialect)  # type: ignore[arg-type]
    if dialect.name == "sqlite":  # type: ignore[attr-defined]
        assert isinstance(bound, int)
    assert t.process_result_value(bound, dialect) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0.1, TypeError),
        (True, TypeError),
        (Decimal("0.0001"), ValueError),
        (Decimal("NaN"), TypeError),
    ],
)
def test_exact_decimal_refuses_floats_and_lost_places(value: object, error: type) -> None:
    with pytest.raises(error):
        ExactDecimal(18, 3).process_bind_param(value, sqlite.dialect())  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sqlite.dialect())


async def test_values_survive_the_database_and_sql_sums_stay_exact(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    rows = [
        {
            "energy_wh": Decimal("0.001"),
            "amount_eur": Decimal("0.100000"),
            "ts": datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=UTC),
        },
    ] * 999 + [
        {
            "energy_wh": Decimal("123456789.125"),
            "amount_eur": Decimal("-0.000001"),
            "ts": datetime(2026, 10, 25, 2, 30, tzinfo=berlin),
        },
    ]
    try:
        async with write_tx(store.engine, "probe") as conn:
            await conn.run_sync(scratch.create_all)
            await conn.execute(insert(probe), rows)
        async with store.engine.connect() as conn:
            energy, amount = (
                await conn.execute(
                    select(func.sum(probe.c.energy_wh), func.sum(probe.c.amount_eur))
                )
            ).one()
            stamps = (await conn.execute(select(probe.c.ts).order_by(probe.c.id))).scalars().all()
        assert energy == Decimal("123456790.124")
        assert amount == Decimal("99.899999")
        assert stamps[0] == rows[0]["ts"]
        assert stamps[-1] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
        assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    finally:
        async with write_tx(store.engine, "drop probe") as conn:
            await conn.run_sync(scratch.drop_all)


async def test_a_refused_value_is_a_store_error_naming_the_operation(store: Store) -> None:
    async with write_tx(store.engine, "create probe") as conn:
        await conn.run_sync(scratch.create_all)
    with pytest.raises(StoreError, match="write probe"):
        async with write_tx(store.engine, "write probe") as conn:
            await conn.execute(insert(probe), {"energy_wh": 1.5})
