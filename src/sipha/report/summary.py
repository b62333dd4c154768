"""The numbers of a run: totals, failures by reason, share per server, takeovers, gaps.

Pure functions of a loaded :class:`~sipha.report.model.Results`; ``summary.json`` is
:func:`summarize` encoded.  Counters add across testers; latency percentiles are never added
or averaged (they stay per source, in the figures).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import msgspec

from sipha.report.model import CallsSecond, Results, ServerSample

__all__ = ["Summary", "calls_per_second", "longest_gap_ms", "server_shares", "summarize"]


class Summary(msgspec.Struct, kw_only=True):
    name: str
    profile: str
    status: str
    time_scale: float
    duration_s: float
    calls_attempted: int
    calls_successful: int
    calls_failed: int
    calls_unfinished: int  # attempted but neither successful nor failed when the run ended
    failed_by_reason: dict[str, int]
    calls_per_server: dict[str, int]
    share_per_server: dict[str, float]
    share_basis: str  # "calls" (server counters) or "active-call-seconds" (sampled)
    takeover_ms: list[float]
    longest_gap_ms: float
    peak_concurrent: int
    faults: list[str]
    plan: dict[str, object]
    status_detail: str = ""


class MergedSecond(msgspec.Struct, kw_only=True):
    attempted: int = 0
    successful: int = 0
    failed: int = 0
    concurrent: int = 0


def calls_per_second(calls: Iterable[CallsSecond]) -> dict[int, MergedSecond]:
    """Counters of every source added per second (``t`` floored to the second)."""
    out: dict[int, MergedSecond] = {}
    for c in calls:
        s = out.setdefault(int(c.t // 1), MergedSecond())
        s.attempted += c.attempted
        s.successful += c.successful
        s.failed += c.failed
        s.concurrent += c.concurrent
    return out


def longest_gap_ms(per_second: dict[int, MergedSecond]) -> float:
    """Longest run of whole seconds with no successful call, from the first successful second
    to the last second that saw a call attempted; 0 when every such second had a success.

    It starts at the first success, not the first attempt, because the testers count a call
    successful when it ends, a hold time after it started.  The resolution is one second: the
    testers report per second, not per call.
    """
    active = [s for s, m in per_second.items() if m.attempted > 0]
    ok = [s for s, m in per_second.items() if m.successful > 0]
    if not active:
        return 0.0
    first = min(ok) if ok else min(active)
    longest = run = 0
    for second in range(first, max(active) + 1):
        m = per_second.get(second)
        if m is None or m.successful == 0:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return float(longest * 1000)


def server_shares(samples: list[ServerSample]) -> tuple[dict[str, int], dict[str, float], str]:
    """(counts, shares, basis) per server.

    Servers that report a cumulative call counter are counted by it (its last value, basis
    ``calls``); otherwise counts are active-call-seconds sampled once a second (basis
    ``active-call-seconds``), a fair proxy of the share when every call has the same hold time.
    """
    totals: dict[str, int] = {}
    call_seconds: dict[str, int] = defaultdict(int)
    for s in samples:
        call_seconds[s.node] += s.active_calls
        if s.calls_total is not None:
            totals[s.node] = max(totals.get(s.node, 0), s.calls_total)
    nodes = sorted(set(call_seconds), key=_node_order)
    if nodes and all(n in totals for n in nodes):
        counts = {n: totals[n] for n in nodes}
        basis = "calls"
    else:
        counts = {n: call_seconds[n] for n in nodes}
        basis = "active-call-seconds"
    total = sum(counts.values())
    shares = {n: (counts[n] / total if total else 0.0) for n in nodes}
    return counts, shares, basis


def _node_order(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return head, int(tail) if tail else 0


def summarize(results: Results) -> Summary:
    merged = calls_per_second(results.calls)
    reasons: dict[str, int] = defaultdict(int)
    for c in results.calls:
        for k, n in c.failed_by_reason.items():
            reasons[k] += n
    counts, shares, basis = server_shares(results.servers)
    attempted = sum(m.attempted for m in merged.values())
    if basis != "calls":
        # No per-server counter: apportion the calls by the sampled share.
        counts = {n: round(share * attempted) for n, share in shares.items()}
    meta = results.meta
    return Summary(
        name=meta.name,
        profile=meta.profile,
        status=meta.status,
        status_detail=meta.status_detail,
        time_scale=meta.time_scale,
        duration_s=float(len(merged)),
        calls_attempted=attempted,
        calls_successful=sum(m.successful for m in merged.values()),
        calls_failed=sum(m.failed for m in merged.values()),
        calls_unfinished=max(0, attempted - sum(m.successful + m.failed for m in merged.values())),
        failed_by_reason=dict(sorted(reasons.items())),
        calls_per_server=counts,
        share_per_server=shares,
        share_basis=basis,
        takeover_ms=[e.ms for e in results.events if e.kind == "takeover" and e.ms is not None],
        longest_gap_ms=longest_gap_ms(merged),
        peak_concurrent=max((m.concurrent for m in merged.values()), default=0),
        faults=[f"{t:.1f} s: {label}" for t, label in results.fault_times()],
        plan=meta.plan,
    )
