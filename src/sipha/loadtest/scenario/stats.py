"""Per-step and per-call statistics of a scenario run, and SIPp's screen of them.

Every statistic is a counter, a sum, an extreme or an HDR histogram (each rtd keeps one, in
microseconds, the load tester's shape), so the statistics of several agents running the same
scenario merge exactly (:meth:`ScenarioStats.merge`): never an average of averages, and a
percentile of the merged histogram is the percentile of every sample.
``peak`` merges as a sum (the agents' peaks may not coincide: an upper bound of the total's).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from sipha.loadtest.histmath import percentile_values
from sipha.loadtest.scenario import model as m
from sipha.loadtest.stats import HIST_HIGHEST_US, HIST_LOWEST_US, new_histogram

__all__ = ["RtdStats", "ScenarioStats", "StepStats", "format_screen"]


@dataclass(slots=True)
class StepStats:
    """SIPp's screen columns: Messages, Retrans, Timeout, Unexpected-Msg (and lost)."""

    messages: int = 0
    retrans: int = 0
    timeouts: int = 0
    unexpected: int = 0
    lost: int = 0

    def merge(self, other: StepStats) -> None:
        self.messages += other.messages
        self.retrans += other.retrans
        self.timeouts += other.timeouts
        self.unexpected += other.unexpected
        self.lost += other.lost


@dataclass(slots=True)
class RtdStats:
    count: int = 0
    total: float = 0.0
    sumsq: float = 0.0
    low: float = float("inf")
    high: float = 0.0
    buckets: list[int] = field(default_factory=list)
    hist: HdrHistogram | None = None  # microseconds; created on the first sample

    def add(self, seconds: float, bounds_ms: tuple[float, ...]) -> None:
        if self.hist is None:
            self.hist = new_histogram()
        # Clamped, never dropped: the histogram's count stays the rtd's count.
        us = round(seconds * 1_000_000) if seconds == seconds else HIST_LOWEST_US
        self.hist.record_value(min(max(us, HIST_LOWEST_US), HIST_HIGHEST_US))
        self.count += 1
        self.total += seconds
        self.sumsq += seconds * seconds
        self.low = min(self.low, seconds)
        self.high = max(self.high, seconds)
        if not self.buckets:
            self.buckets = [0] * (len(bounds_ms) + 1)
        ms = seconds * 1000.0
        for i, b in enumerate(bounds_ms):
            if ms < b:
                self.buckets[i] += 1
                return
        self.buckets[-1] += 1

    def merge(self, other: RtdStats) -> None:
        self.count += other.count
        self.total += other.total
        self.sumsq += other.sumsq
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        if other.hist is not None:
            if self.hist is None:
                self.hist = new_histogram()
            self.hist.add(other.hist)
        if other.buckets:
            if not self.buckets:
                self.buckets = [0] * len(other.buckets)
            if len(self.buckets) != len(other.buckets):
                raise ValueError("rtd repartitions of different scenarios do not merge")
            self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


@dataclass(slots=True)
class ScenarioStats:
    steps: list[StepStats]
    created: int = 0
    successful: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    current: int = 0
    peak: int = 0
    dead_messages: int = 0  # messages for a call ended lately: SIPp's "dead call msg"
    out_of_call: int = 0  # messages for no call at all: SIPp's OutOfCallMsgs
    auto_answered: int = 0  # unexpected BYE/CANCEL answered 200 (default behaviours)
    warnings: int = 0
    malformed: int = 0
    counters: Counter[str] = field(default_factory=Counter)
    rtd: dict[str, RtdStats] = field(default_factory=dict)
    call_length: RtdStats = field(default_factory=RtdStats)

    def merge(self, other: ScenarioStats) -> None:
        """Add ``other`` (the same scenario's statistics from another agent) into this.
        Raises ValueError if the scenarios differ in steps."""
        if len(self.steps) != len(other.steps):
            raise ValueError("statistics of different scenarios do not merge")
        for mine, theirs in zip(self.steps, other.steps, strict=True):
            mine.merge(theirs)
        for name in ("created", "successful", "current", "peak", "dead_messages",
                     "out_of_call", "auto_answered", "warnings", "malformed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed.update(other.failed)
        self.counters.update(other.counters)
        for rtd, r in other.rtd.items():
            self.rtd.setdefault(rtd, RtdStats()).merge(r)
        self.call_length.merge(other.call_length)

    @property
    def retransmissions(self) -> int:
        return sum(s.retrans for s in self.steps)

    @property
    def failed_calls(self) -> int:
        return sum(self.failed.values())


def _name(step: m.Step) -> str:
    if step.display:
        return step.display
    if isinstance(step, m.Send) and step.message is not None:
        return step.message.method or str(step.message.status)
    if isinstance(step, m.Recv):
        return step.request or str(step.response)
    return "Nop"


def _pause_label(step: m.Pause, config_pause_ms: float) -> str:
    if step.variable:
        return f"Pause [${step.variable}]"
    if step.distribution is not None:
        return f"Pause [{step.distribution.kind}]"
    ms = step.milliseconds if step.milliseconds is not None else config_pause_ms
    return f"Pause [{ms:7.0f}ms]"


def format_screen(scenario: m.Scenario, stats: ScenarioStats, *, pause_ms: float = 0.0) -> str:
    """The per-step table and call outcomes, laid out as SIPp 3.6's scenario screen."""
    out = [f"{'':33}Messages  Retrans   Timeout   Unexpected-Msg"]
    for step, s in zip(scenario.steps, stats.steps, strict=True):
        if step.hide:
            continue
        marker = ""
        if step.rtd:
            marker = f"E-RTD{step.rtd}"
        elif step.start_rtd:
            marker = f"B-RTD{step.start_rtd}"
        if isinstance(step, m.Pause):
            line = (f"{_pause_label(step, pause_ms):>24}{'':9}{s.messages:<10}{'':20}"
                    f"{s.unexpected}")
        else:
            arrow = ("<----------" if isinstance(step, m.Recv) else
                     "---------->" if isinstance(step, m.Send) else "           ")
            head = f"{_name(step):>12} {arrow}  {marker:<7}"
            if isinstance(step, m.Recv):
                cols = f"{s.messages:<10}{s.retrans:<10}{s.timeouts:<10}{s.unexpected}"
            elif isinstance(step, m.Send):
                cols = f"{s.messages:<10}{s.retrans:<10}" + (f"{s.timeouts}" if step.retrans
                                                              else "")
            else:
                cols = f"{s.messages:<10}{'':20}{s.unexpected}"
            line = head + cols
        out.append(line.rstrip() + (f"  (lost {s.lost})" if s.lost else ""))
        if step.crlf:
            out.append("")
    out.append("")
    failed = ", ".join(f"{k} {v}" for k, v in sorted(stats.failed.items()))
    out.append(f"Calls: created {stats.created}  successful {stats.successful}  "
               f"failed {stats.failed_calls}{' (' + failed + ')' if failed else ''}  "
               f"peak {stats.peak}  dead-call messages {stats.dead_messages}  "
               f"out-of-call messages {stats.out_of_call}")
    for name, r in sorted(stats.rtd.items()):
        if r.count:
            tail = ""
            if r.hist is not None:  # percentiles of every sample, merged or not
                p = percentile_values(r.hist, [50.0, 99.0])
                tail = f", p50 {p[50.0] / 1000:.1f} ms, p99 {p[99.0] / 1000:.1f} ms"
            out.append(f"RTD {name}: {r.count} samples, mean {1000 * r.total / r.count:.1f} ms, "
                       f"min {1000 * r.low:.1f} ms, max {1000 * r.high:.1f} ms{tail}")
    for name, n in sorted(stats.counters.items()):
        out.append(f"counter {name}: {n}")
    return "\n".join(out)
