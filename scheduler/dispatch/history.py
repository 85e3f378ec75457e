"""Quarter-hour means of stored raw readings per (device, channel), read incrementally.

The load correction of every round looks at the last ``history_qh`` quarter-hours of each
member's devices; reading them all again every quarter-hour would read the same rows ~100
times. The first round reads the whole window asked for; later rounds read only what is new
(plus the last quarter-hour again, for readings that were committed late). Means older than
``keep_qh`` quarter-hours before the newest request are dropped.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from kernel.quarterhours import qh_index, qh_start
from store import Store


class QhMeans:
    """The means of one store's readings, per (device, channel) and quarter-hour index."""

    def __init__(self, store: Store, keep_qh: int) -> None:
        self._store = store
        self._keep_qh = keep_qh
        self._means: dict[tuple[str, str], dict[int, float]] = {}
        #: the quarter-hour indices [first, end) already read, per key
        self._fetched: dict[tuple[str, str], tuple[int, int]] = {}

    async def series(
        self, device: str, channel: str, first: int, end: int
    ) -> npt.NDArray[np.float64]:
        """Means (the channel's unit) for quarter-hour indices ``[first, end)``; NaN where
        nothing available was stored."""
        key = (device, channel)
        if end <= first:
            return np.zeros(0)
        means = self._means.setdefault(key, {})
        done = self._fetched.get(key)
        if done is None or first < done[0] or done[1] < first:
            lo, covered_from, done = first, first, None
            means.clear()
        else:
            lo, covered_from = max(first, done[1] - 1), done[0]
        if lo < end:
            readings = await self._store.readings.between(
                device, channel, qh_start(lo), qh_start(end)
            )
            buckets: dict[int, list[float]] = {}
            for r in readings:
                if r.value is not None and r.available:
                    buckets.setdefault(qh_index(r.ts), []).append(r.value)
            for i in range(lo, end):
                means.pop(i, None)
            means.update({i: sum(v) / len(v) for i, v in buckets.items()})
        keep_from = min(first, end - self._keep_qh)
        for stale in [i for i in means if i < keep_from]:
            del means[stale]
        newest = end if done is None else max(end, done[1])
        self._fetched[key] = (max(covered_from, keep_from), newest)
        return np.array([means.get(i, math.nan) for i in range(first, end)], dtype=float)
