"""SIPp's pause and sample distributions, drawn from an injected, seeded ``random.Random``.

Parameters are those of SIPp's XML attributes (times in milliseconds).  SIPp draws from GSL;
these are the same distributions with the same parameters:
fixed(value), uniform(min, max), normal(mean, stdev), lognormal(mean, stdev) (of the
underlying normal, as GSL), exponential(mean), weibull(lambda, k) (scale, shape),
pareto(k, x_m) (shape, scale), gamma(k, theta) (shape, scale), negbin(p, n) (failures
before the n-th success with success probability p).
"""

from __future__ import annotations

import math
import random

from sipha.loadtest.scenario.model import Distribution

__all__ = ["sample"]


def sample(dist: Distribution, rng: random.Random) -> float:
    """One draw; never negative for a pause (the caller clamps)."""
    p = dist.params
    kind = dist.kind
    if kind == "fixed":
        return p[0]
    if kind == "uniform":
        return rng.uniform(p[0], p[1])
    if kind == "normal":
        return rng.gauss(p[0], p[1])
    if kind == "lognormal":
        return rng.lognormvariate(p[0], p[1])
    if kind == "exponential":
        return rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0
    if kind == "weibull":
        return rng.weibullvariate(p[0], p[1])
    if kind == "pareto":
        return p[1] * rng.paretovariate(p[0])
    if kind == "gamma":
        return rng.gammavariate(p[0], p[1])
    if kind == "negbin":
        return float(_negbin(p[0], p[1], rng))
    raise ValueError(f"unknown distribution {kind!r}")


def _negbin(prob: float, n: float, rng: random.Random) -> int:
    # A gamma-Poisson mixture, as GSL draws it.
    if prob >= 1.0:
        return 0
    lam = rng.gammavariate(n, (1.0 - prob) / prob)
    return _poisson(lam, rng)


def _poisson(lam: float, rng: random.Random) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k
