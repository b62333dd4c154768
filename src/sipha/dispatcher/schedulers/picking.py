"""Selection arithmetic that several schedulers share, kept exact and in one place.

* `by_weight` - the destination a uniform draw in ``[0, total weight)`` lands on; the draw
  comes from the caller's injected `random.Random` (`rweight`, `srv`, `twos`).
* `min_ratio` - the eligible destination with the fewest ``(active_calls + extra) / weight``,
  compared by cross-multiplication so there are no float ties (`wlc`, `sed`, `nq`).

Both keep configuration order on ties, like every scheduler here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Destination

__all__ = ["by_weight", "min_ratio"]


def by_weight(cands: Sequence[Destination], total: int, r: int) -> Destination:
    """The destination whose cumulative-weight interval contains `r` in [0, total)."""
    for d in cands:
        r -= d.weight
        if r < 0:
            return d
    raise AssertionError("r outside [0, total)")  # pragma: no cover - callers draw < total


def min_ratio(
    dests: Sequence[Destination], exclude: frozenset[str], extra: int
) -> Destination | None:
    """Eligible destination minimising (active_calls + extra) / weight; first on ties."""
    best: Destination | None = None
    best_num = best_w = 0
    for d in dests:
        w = d.weight
        if not d.usable or w <= 0 or d.id in exclude:
            continue
        num = d.active_calls + extra
        # num/w < best_num/best_w  <=>  num*best_w < best_num*w  (weights are positive)
        if best is None or num * best_w < best_num * w:
            best, best_num, best_w = d, num, w
    return best
