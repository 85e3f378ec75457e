"""Quality of a quarter-hour value, after the Austrian data-exchange flags.

``L1`` real (measured), ``L2`` substitute value derived from real readings (interpolated across
missing readings, or across a counter reset), ``L3`` substitute value without a reading on one
side (estimated). A settlement line carries the worst quality of its inputs, so a member sees
which of their quarter-hours rest on substitute values.
"""

from __future__ import annotations

import enum


class IntervalQuality(enum.StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def is_substitute(self) -> bool:
        """True for substitute values (L2, L3)."""
        return self is not IntervalQuality.L1


_RANK = {IntervalQuality.L1: 0, IntervalQuality.L2: 1, IntervalQuality.L3: 2}


def worst(*qualities: IntervalQuality) -> IntervalQuality:
    """The least trustworthy of several qualities (L1 when none are given)."""
    return max(qualities, key=_RANK.__getitem__, default=IntervalQuality.L1)
