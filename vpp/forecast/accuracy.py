"""Forecast accuracy per member and lead time: mean absolute error and bias, in W.

A record pairs what was forecast for one quarter-hour, when it was issued, with what was
measured. The lead time (horizon) is counted in quarter-hours from issue to target, so the
operator sees how accuracy decays from the next quarter-hour to tomorrow evening.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kernel.quarterhours import QH


@dataclass(frozen=True)
class ForecastRecord:
    """A forecast of ``forecast_w`` for the quarter-hour starting at ``target``."""

    member_id: str
    issued_at: datetime
    target: datetime
    forecast_w: float
    measured_w: float


@dataclass(frozen=True)
class AccuracyRow:
    """``bias_w`` > 0: the forecast was too high on average. ``n`` counts usable records."""

    member_id: str
    horizon_qh: int
    n: int
    mae_w: float
    bias_w: float


def forecast_accuracy(
    records: Iterable[ForecastRecord], horizon_buckets_qh: tuple[int, ...] = ()
) -> tuple[AccuracyRow, ...]:
    """MAE and bias per member and lead time, sorted by member then lead time.

    With ``horizon_buckets_qh`` (ascending upper bounds, e.g. ``(4, 16, 96)``) lead times are
    grouped into the first bucket that holds them; otherwise each lead time is its own row.
    Records with NaN (unavailable measurement) are skipped.
    """
    errors: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in records:
        if not (math.isfinite(r.forecast_w) and math.isfinite(r.measured_w)):
            continue
        lead = (r.target - r.issued_at) // QH
        if horizon_buckets_qh:
            lead = next((b for b in horizon_buckets_qh if lead <= b), horizon_buckets_qh[-1])
        errors[(r.member_id, lead)].append(r.forecast_w - r.measured_w)
    return tuple(
        AccuracyRow(m, h, len(e), sum(abs(x) for x in e) / len(e), sum(e) / len(e))
        for (m, h), e in sorted(errors.items())
    )
