"""Errors of the dispatch core.

The dispatch's branch of the one tree (:mod:`kernel.errors`). Both kinds name the member, the
asset and the field, so that an operator can find the bad value in the site file or the
forecast feed::

    kernel.errors.InputError
    └── InvalidDispatchInput        member, asset, field, reason
        ├── InvalidAssetConfig      a capacity, power or efficiency that cannot be right: raised
        └── InvalidForecast         NaN/inf/wrong length in a series: ``solve`` falls back + alarm
"""

from __future__ import annotations

from kernel.errors import InputError


class InvalidDispatchInput(InputError):
    """An input to the dispatch that cannot be planned with.

    ``member`` and ``asset`` are ``None`` where the field is community-wide (prices, limits).
    """

    def __init__(self, member: str | None, asset: str | None, field: str, reason: str) -> None:
        self.member = member
        self.asset = asset
        where = "community" if member is None else f"member {member!r}"
        if asset is not None:
            where += f", asset {asset!r}"
        super().__init__(field, reason, f"{where}: field {field!r}: {reason}")


class InvalidAssetConfig(InvalidDispatchInput):
    """Configuration that no solver run can fix (negative capacity, efficiency above 1, ...)."""


class InvalidForecast(InvalidDispatchInput):
    """A forecast or price series that is unusable for this round (NaN, inf, wrong length).

    This is fault F9 ("missing forecast"): :func:`vpp.dispatch.solve.solve` answers it with the
    last valid plan or the safe default and an alarm, not with an exception.
    """
