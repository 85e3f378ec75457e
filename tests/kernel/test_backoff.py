"""The one retry rule: exponential, capped, jittered, never zero after a failure."""

from __future__ import annotations

import random

import pytest

from kernel.backoff import Backoff
from kernel.errors import ConfigError


def test_delay_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    b = Backoff(initial_s=1.0, cap_s=30.0)
    delays = [b.delay_s(n, rng) for n in range(1, 12)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(30.0, 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped, but not all identical


def test_many_clients_are_spread() -> None:
    b = Backoff(initial_s=0.5, cap_s=8.0)
    rng = random.Random(1)
    delays = [b.delay_s(n, rng) for n in range(1, 20) for _ in range(50)]
    assert max(delays) <= 8.0
    assert min(delays) >= 0.25
    assert len({round(d, 6) for d in delays}) > 500  # jitter, not a fixed ladder
    assert [b.bound_s(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_no_delay_before_the_first_failure() -> None:
    assert Backoff().delay_s(0, random.Random(1)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"initial_s": 2.0, "cap_s": 1.0}, "backoff"), ({"factor": 0.5}, "backoff.factor")],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        Backoff(**kwargs)
    assert err.value.field == field
