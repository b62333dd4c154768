"""Each pause distribution draws with its documented parameters from the seeded generator."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from sipha.loadtest.scenario.distributions import sample
from sipha.loadtest.scenario.model import Distribution

N = 20_000


@pytest.mark.parametrize(("kind", "params", "mean"), [
    ("fixed", (250.0,), 250.0),
    ("uniform", (100.0, 300.0), 200.0),
    ("normal", (500.0, 50.0), 500.0),
    ("lognormal", (5.0, 0.5), math.exp(5.0 + 0.5**2 / 2)),
    ("exponential", (400.0,), 400.0),
    ("weibull", (300.0, 2.0), 300.0 * math.gamma(1 + 1 / 2.0)),
    ("pareto", (3.0, 100.0), 3.0 * 100.0 / (3.0 - 1)),
    ("gamma", (4.0, 50.0), 200.0),
    ("negbin", (0.25, 5.0), 5.0 * (1 - 0.25) / 0.25),
])
def test_sample_means(kind: str, params: tuple[float, ...], mean: float) -> None:
    rng = random.Random(7)
    draws = [sample(Distribution(kind, params), rng) for _ in range(N)]
    assert abs(statistics.fmean(draws) - mean) <= 0.05 * mean, kind
    again = random.Random(7)
    assert [sample(Distribution(kind, params), again) for _ in range(5)] == draws[:5]


def test_uniform_stays_in_bounds() -> None:
    rng = random.Random(1)
    draws = [sample(Distribution("uniform", (2000.0, 3000.0)), rng) for _ in range(1000)]
    assert min(draws) >= 2000.0
    assert max(draws) <= 3000.0
