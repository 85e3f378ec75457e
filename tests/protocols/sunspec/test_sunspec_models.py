"""Model layouts come from the pysunspec2 JSON; check them against the published offsets."""

from __future__ import annotations

import pytest

from protocols.sunspec.models import SUPPORTED_MODELS, model_def


@pytest.mark.parametrize(
    ("model_id", "point", "offset"),
    [
        (103, "A", 2),
        (103, "PhVphA", 10),
        (103, "W", 14),
        (103, "W_SF", 15),
        (103, "Hz", 16),
        (103, "WH", 24),
        (103, "St", 38),
        (123, "WMaxLimPct", 5),
        (123, "WMaxLimPct_WinTms", 6),
        (123, "WMaxLimPct_RvrtTms", 7),
        (123, "WMaxLimPct_RmpTms", 8),
        (123, "WMaxLim_Ena", 9),
        (123, "WMaxLimPct_SF", 23),
        (203, "W", 18),
        (203, "W_SF", 22),
        (203, "TotWhExp", 38),
        (203, "TotWhImp", 46),
        (203, "TotWh_SF", 54),
    ],
)
def test_offsets_match_the_sunspec_tables(model_id: int, point: str, offset: int) -> None:
    assert model_def(model_id).point(point).offset == offset


@pytest.mark.parametrize(
    ("model_id", "length"), [(1, 66), (103, 50), (113, 60), (120, 26), (123, 24), (203, 105)]
)
def test_model_lengths(model_id: int, length: int) -> None:
    assert model_def(model_id).length == length


def test_nested_groups_of_704_are_laid_out_after_the_top_level_points() -> None:
    m = model_def(704)
    top = m.point("VarSetPct_SF")
    first_group = m.point("PFWInj.PF")
    assert first_group.offset == top.offset + 1
    assert first_group.sf == "PF_SF"  # resolved to the top-level scale factor
    assert m.length + 2 == m.points[-1].offset + m.points[-1].size


@pytest.mark.parametrize("model_id", SUPPORTED_MODELS)
def test_every_supported_model_is_contiguous(model_id: int) -> None:
    m = model_def(model_id)
    at = 0
    for p in m.points:
        assert p.offset == at, p.name
        at += p.size
    assert at == m.length + 2
