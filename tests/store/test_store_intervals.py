"""Quarter-hour intervals: idempotent writes, restatements as new versions, kept for good."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from kernel.readings import Quality
from store import Interval, Store
from tests.store.conftest import T0

QH = timedelta(minutes=15)


def iv(k: int, wh: str, member: str = "m1", quality: Quality = Quality.GOOD) -> Interval:
    return Interval(member, "import_energy_wh", T0 + k * QH, Decimal(wh), quality)


async def test_writing_the_same_intervals_again_appends_nothing(store: Store) -> None:
    day = [iv(k, f"{k}.125") for k in range(96)]
    assert await store.intervals.record(day, now=T0) == 96
    assert await store.intervals.record(day, now=T0) == 0
    stored = await store.intervals.for_member("m1", T0, T0 + timedelta(days=1))
    assert [s.interval for s in stored] == day
    assert all(s.version == 1 and not s.restated for s in stored)


@pytest.mark.parametrize(
    ("change", "expect_versions"),
    [
        (lambda i: i, 1),  # unchanged
        (lambda i: Interval(i.member_id, i.channel, i.interval_start, Decimal("99.5")), 2),
        (
            lambda i: Interval(
                i.member_id, i.channel, i.interval_start, i.energy_wh, Quality.SUBSTITUTE
            ),
            2,
        ),
    ],
    ids=["same", "new-energy", "new-quality"],
)
async def test_a_changed_value_is_a_restatement(
    store: Store, change: object, expect_versions: int
) -> None:
    original = iv(3, "10.5")
    await store.intervals.record([original], now=T0)
    await store.intervals.record([change(original)], now=T0 + timedelta(days=2))  # type: ignore[operator]
    history = await store.intervals.for_member("m1", T0, T0 + timedelta(days=1), history=True)
    assert len(history) == expect_versions
    current = await store.intervals.for_member("m1", T0, T0 + timedelta(days=1))
    assert len(current) == 1
    assert current[0].version == expect_versions
    assert current[0].restated == (expect_versions > 1)
    assert history[0].interval == original


async def test_members_do_not_see_each_other(store: Store) -> None:
    await store.intervals.record([iv(0, "1", "m1"), iv(0, "2", "m2")], now=T0)
    mine = await store.intervals.for_member("m1", T0, T0 + QH)
    assert [s.interval.member_id for s in mine] == ["m1"]


async def test_a_large_batch_is_looked_up_in_chunks(store: Store) -> None:
    batch = [iv(k, "0.001", member=f"m{k % 7}") for k in range(2500)]
    assert await store.intervals.record(batch, now=T0) == 2500
    assert await store.intervals.record(batch, now=T0) == 0


def test_interval_must_start_on_a_quarter_hour() -> None:
    with pytest.raises(ValueError, match="quarter-hour"):
        Interval("m1", "import_energy_wh", T0 + timedelta(minutes=7), Decimal(1))


def test_interval_energy_must_be_decimal() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        Interval("m1", "import_energy_wh", T0, 1.5)  # type: ignore[arg-type]
