"""Small builders for hand-checkable dispatch cases."""

from __future__ import annotations

from datetime import UTC, datetime

from vpp.dispatch import DispatchProblem, Member, Prices, Weights

START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def flat_prices(
    n: int,
    import_: float = 0.30,
    feed_in: float = 0.08,
    community: float = 0.20,
    fee: float = 0.05,
) -> Prices:
    return Prices((import_,) * n, (feed_in,) * n, (community,) * n, (fee,) * n)


def problem(
    members: list[Member],
    n: int,
    prices: Prices | None = None,
    weights: Weights | None = None,
    **kwargs: float | None,
) -> DispatchProblem:
    return DispatchProblem(
        community_id="test",
        start=START,
        n_qh=n,
        members=tuple(members),
        prices=prices or flat_prices(n),
        weights=weights or Weights(),
        **kwargs,  # type: ignore[arg-type]
    )


def series(*values: float) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
