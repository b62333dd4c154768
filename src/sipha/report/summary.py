"""The numbers of a run: totals, failures by reason, share per server, takeovers, gaps.

Pure functions of a loaded :class:`~sipha.report.model.Results`; ``summary.json`` is
:func:`summarize` encoded.  Counters add across testers; latency percentiles are never added
or averaged (they stay per source, in the figures).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import msgspec

from sipha.common.expect import Measured, Verdict, evaluate, longest_gap_slots
from sipha.report.model import CallsSecond, Results, ServerSample

__all__ = [
    "Summary",
    "calls_per_second",
    "longest_answer_gap_ms",
    "longest_gap_ms",
    "measured",
    "server_shares",
    "summarize",
]

SLOT_MS = 10.0  # the load tester's answered_slots resolution (100 slots a second)


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
    longest_gap_resolution_ms: float  # 10 from sipha's answered slots, 1000 from counts only
    peak_concurrent: int
    faults: list[str]
    plan: dict[str, object]
    status_detail: str = ""
    # Retransmissions the testers sent (what loss cost when calls still succeeded).
    retransmissions: int = 0
    setup_p99_ms: float | None = None
    failed_registrations: int | None = None
    store_failover_ms: list[float] = msgspec.field(default_factory=list)
    # One per criterion of the plan's [expect] for this profile: measured, bound, passed.
    verdicts: list[Verdict] = msgspec.field(default_factory=list)
    criteria_met: bool = True  # every verdict passed (true when there is none)


class MergedSecond(msgspec.Struct, kw_only=True):
    attempted: int = 0
    successful: int = 0
    failed: int = 0
    concurrent: int = 0
    retransmissions: int = 0


def calls_per_second(calls: Iterable[CallsSecond]) -> dict[int, MergedSecond]:
    """Counters of every source added per second (``t`` floored to the second)."""
    out: dict[int, MergedSecond] = {}
    for c in calls:
        s = out.setdefault(int(c.t // 1), MergedSecond())
        s.attempted += c.attempted
        s.successful += c.successful
        s.failed += c.failed
        s.concurrent += c.concurrent
        s.retransmissions += c.retransmissions
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


def longest_answer_gap_ms(calls: Iterable[CallsSecond]) -> float | None:
    """Longest stretch with no call answered, to 10 ms, from the sources that report the
    10 ms slots in which calls were answered (sipha's testers; SIPp's files cannot), or None
    when no source does.

    Every such source's slots are placed on the run clock (its seconds may start at another
    fraction of a run second than another source's) and ORed (a call answered by either tester
    counts); the longest run of empty slots is measured from the first answer to the later of
    the last answer and the start of the last second with an attempt (so an outage that lasts
    to the end of the load counts). With no outage at all it is about the time between two
    calls (1 / rate).
    """
    calls = list(calls)
    sources = {c.source for c in calls if c.answered_slots.strip("0")}
    if not sources:
        return None
    per_s = 1000.0 / SLOT_MS
    answered = 0  # bit n: some call answered in run slot n (slots of SLOT_MS from t = 0)
    last_attempt = 0
    for c in calls:
        if c.source not in sources:
            continue
        base = max(round(c.t * per_s), 0)
        if c.answered_slots:
            answered |= int(c.answered_slots, 16) << base
        if c.attempted:
            last_attempt = max(last_attempt, base)
    return longest_gap_slots(answered, last_attempt) * SLOT_MS


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


def measured(s: Summary) -> Measured:
    """The run's measurements the criteria bound (see :mod:`sipha.common.expect`)."""
    return Measured(
        failed_calls=s.calls_failed,
        success_ratio=s.calls_successful / s.calls_attempted if s.calls_attempted else None,
        takeover_ms=max(s.takeover_ms, default=None),
        setup_p99_ms=s.setup_p99_ms,
        longest_gap_ms=s.longest_gap_ms if s.calls_successful else None,
        unfinished_calls=s.calls_unfinished,
        failed_registrations=s.failed_registrations,
    )


def summarize(results: Results) -> Summary:
    merged = calls_per_second(results.calls)
    gap = longest_answer_gap_ms(results.calls)
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
    summary = Summary(
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
        longest_gap_ms=gap if gap is not None else longest_gap_ms(merged),
        longest_gap_resolution_ms=SLOT_MS if gap is not None else 1000.0,
        peak_concurrent=max((m.concurrent for m in merged.values()), default=0),
        retransmissions=sum(m.retransmissions for m in merged.values()),
        faults=[f"{t:.1f} s: {label}" for t, label in results.fault_times()],
        plan=meta.plan,
        setup_p99_ms=meta.setup_p99_ms,
        failed_registrations=meta.failed_registrations,
        store_failover_ms=list(meta.store_failover_ms),
    )
    summary.verdicts = evaluate(meta.expect, measured(summary))
    summary.criteria_met = all(v.passed for v in summary.verdicts)
    return summary
