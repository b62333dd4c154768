"""What an agent's own totals hold beyond the reports the controller merged.

Reports and Done travel in order on one connection, so when a Done's totals hold more than
the agent's merged reports, a report was lost on the way (or refused by the merge).  The
difference -- counters, failure reasons and, bucket by bucket, the setup latencies -- goes
into a later second so the run's totals stay exact; the coordinator says so every time.
"""

from __future__ import annotations

from sipha.loadtest.histmath import difference
from sipha.loadtest.stats import IntervalStats, LatencyKind

__all__ = ["COUNTERS", "counters", "has_counts", "unreported"]

COUNTERS = ("calls_attempted", "calls_successful", "calls_failed", "retransmissions",
            "transactions_ok", "transactions_failed")


def unreported(own: IntervalStats, seen: IntervalStats) -> IntervalStats | None:
    """What an agent's own totals ``own`` hold beyond its merged reports ``seen``: counters,
    failure reasons and, bucket by bucket, the setup latencies (the Done totals carry the
    agent's whole-run histograms, so a lost report's samples are rebuilt exactly).

    None when it is not a clean difference: some counter or latency bucket of the reports
    exceeds the totals, or the failure reasons do not add up to the failed calls.
    """
    gap = IntervalStats()
    for name in COUNTERS:
        extra = getattr(own, name) - getattr(seen, name)
        if extra < 0:
            return None
        setattr(gap, name, extra)
    for key in own.failed_by_reason.keys() | seen.failed_by_reason.keys():
        extra = own.failed_by_reason.get(key, 0) - seen.failed_by_reason.get(key, 0)
        if extra < 0:
            return None
        if extra:
            gap.failed_by_reason[key] = extra
    if sum(gap.failed_by_reason.values()) != gap.calls_failed:
        return None
    which: LatencyKind
    for which in ("setup_18x", "setup_200"):
        whole, part = own.histogram(which), seen.histogram(which)
        if whole is None:
            if part is not None and part.get_total_count():
                return None
            continue
        extra_samples = difference(whole, part)
        if extra_samples is None:
            return None
        gap.add_latencies(which, extra_samples)
    return gap


def has_counts(stats: IntervalStats) -> bool:
    """True if any counter (not the gauge) is non-zero."""
    return any(getattr(stats, name) for name in COUNTERS)


def counters(stats: IntervalStats) -> dict[str, object]:
    """The counters and failure reasons, for an event record."""
    fields: dict[str, object] = {name: getattr(stats, name) for name in COUNTERS}
    fields["failed_by_reason"] = dict(stats.failed_by_reason)
    return fields
