"""SIPp's statistics files, written from a scenario run: ``-trace_stat`` and ``-trace_counts``.

Theory of operation
-------------------
Both writers take a snapshot of the run's cumulative :class:`~.stats.ScenarioStats` once a
period (and once at the end) and write one ``;``-separated row, in SIPp 3.6's layout, so that
a tool reading SIPp's files by column reads sipha's:

* :class:`TraceStatWriter`: the ``-trace_stat`` file, all of SIPp's columns in SIPp's order:
  counters as ``(P)`` (this period) and ``(C)`` (cumulative), then for each ``rtd`` of the
  scenario its mean and standard deviation, the call length, and the repartition tables.
  Failure reasons map to SIPp's columns (:data:`FAILURE_COLUMNS`); sipha has no watchdog and
  no 3PCC, so those columns stay 0.
* :class:`TraceCountsWriter`: the ``-trace_counts`` file, per step ``N_NAME_Sent`` (or
  ``_Recv``), ``_Retrans``, ``_Timeout``, ``_Unexp``, ``_Lost`` and ``N_Pause_Sessions``.

Neither reads the clock: the caller passes the wall time.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, TextIO

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.stats import RtdStats, ScenarioStats
from sipha.loadtest.stats_output import format_sipp_duration, format_sipp_time

__all__ = ["FAILURE_COLUMNS", "TraceCountsWriter", "TraceStatWriter", "trace_stat_header"]

# sipha's failure reasons -> SIPp's Failed* column stem.
FAILURE_COLUMNS: Final[dict[str, str]] = {
    "max_udp_retrans": "FailedMaxUDPRetrans",
    "unexpected": "FailedUnexpectedMessage",
    "regexp_doesnt_match": "FailedRegexpDoesntMatch",
    "regexp_shouldnt_match": "FailedRegexpShouldntMatch",
    "regexp_hdr_not_found": "FailedRegexpHdrNotFound",
    "recv_timeout": "FailedTimeoutOnRecv",
    "tcp_closed": "FailedTcpClosed",
}
_FAILED: Final = (
    "FailedCannotSendMessage", "FailedMaxUDPRetrans", "FailedTcpConnect", "FailedTcpClosed",
    "FailedUnexpectedMessage", "FailedCallRejected", "FailedCmdNotSent",
    "FailedRegexpDoesntMatch", "FailedRegexpShouldntMatch", "FailedRegexpHdrNotFound",
    "FailedOutboundCongestion", "FailedTimeoutOnRecv", "FailedTimeoutOnSend",
    "FailedTestDoesntMatch", "FailedTestShouldntMatch", "FailedStrcmpDoesntMatch",
    "FailedStrcmpShouldntMatch",
)
_COUNTERS: Final = ("OutOfCallMsgs", "DeadCallMsgs", "Retransmissions", "AutoAnswered",
                    "Warnings", "FatalErrors", "WatchdogMajor", "WatchdogMinor")


def _rtd_names(scenario: m.Scenario) -> list[str]:
    names: list[str] = []
    for s in scenario.steps:
        if s.rtd and s.rtd not in names:
            names.append(s.rtd)
    return names


def _bound(ms: float) -> str:
    return f"{ms:g}"


def trace_stat_header(scenario: m.Scenario) -> list[str]:
    """The column names SIPp writes for this scenario, in its order."""
    cols = ["StartTime", "LastResetTime", "CurrentTime", "ElapsedTime(P)", "ElapsedTime(C)",
            "TargetRate", "CallRate(P)", "CallRate(C)"]
    for stem in ("IncomingCall", "OutgoingCall"):
        cols += [f"{stem}(P)", f"{stem}(C)"]
    cols += ["TotalCallCreated", "CurrentCall"]
    for stem in ("SuccessfulCall", "FailedCall", *_FAILED, *_COUNTERS):
        cols += [f"{stem}(P)", f"{stem}(C)"]
    for name in _rtd_names(scenario):
        cols += [f"ResponseTime{name}(P)", f"ResponseTime{name}(C)",
                 f"ResponseTime{name}StDev(P)", f"ResponseTime{name}StDev(C)"]
    cols += ["CallLength(P)", "CallLength(C)", "CallLengthStDev(P)", "CallLengthStDev(C)"]
    for name in _rtd_names(scenario):
        cols += _repartition(f"ResponseTimeRepartition{name}",
                             scenario.response_time_repartition)
    cols += _repartition("CallLengthRepartition", scenario.call_length_repartition)
    return cols


def _repartition(stem: str, bounds: tuple[float, ...]) -> list[str]:
    if not bounds:
        return [stem]
    return [stem, *(f"{stem}_<{_bound(b)}" for b in bounds), f"{stem}_>={_bound(bounds[-1])}"]


@dataclass(slots=True)
class _Snap:
    values: Counter[str] = field(default_factory=Counter)
    rtd: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def _counters(stats: ScenarioStats, client: bool) -> Counter[str]:
    c: Counter[str] = Counter()
    c["IncomingCall" if not client else "OutgoingCall"] = stats.created
    c["SuccessfulCall"] = stats.successful
    c["FailedCall"] = stats.failed_calls
    for reason, n in stats.failed.items():
        if reason in FAILURE_COLUMNS:
            c[FAILURE_COLUMNS[reason]] += n
    c["OutOfCallMsgs"] = stats.out_of_call
    c["DeadCallMsgs"] = stats.dead_messages
    c["Retransmissions"] = stats.retransmissions
    c["AutoAnswered"] = stats.auto_answered
    c["Warnings"] = stats.warnings
    return c


def _mean_sd(n: int, total: float, sumsq: float) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 0.0
    mean = total / n
    return mean, math.sqrt(max(0.0, sumsq / n - mean * mean))


class TraceStatWriter:
    """Writes SIPp's ``-trace_stat`` rows for one run to ``stream``."""

    def __init__(self, stream: TextIO, scenario: m.Scenario, *, start_wall: float,
                 target_rate: float) -> None:
        self.stream = stream
        self.scenario = scenario
        self.start = start_wall
        self.rate = target_rate
        self.rtds = _rtd_names(scenario)
        self.prev = _Snap()
        self.prev_time = start_wall
        stream.write(";".join(trace_stat_header(scenario)) + ";\n")
        stream.flush()

    def write(self, stats: ScenarioStats, wall: float) -> None:
        client = self.scenario.client
        cur = _counters(stats, client)
        period = max(wall - self.prev_time, 1e-9)
        elapsed = max(wall - self.start, 1e-9)
        created_p = stats.created - self.prev.values[
            "IncomingCall" if not client else "OutgoingCall"]
        row: list[str] = [
            format_sipp_time(self.start), format_sipp_time(self.prev_time),
            format_sipp_time(wall), format_sipp_duration(period, micros=False),
            format_sipp_duration(elapsed, micros=False), f"{self.rate:g}",
            f"{created_p / period:g}", f"{stats.created / elapsed:g}",
        ]
        for stem in ("IncomingCall", "OutgoingCall"):
            row += [str(cur[stem] - self.prev.values[stem]), str(cur[stem])]
        row += [str(stats.created), str(stats.current)]
        for stem in ("SuccessfulCall", "FailedCall", *_FAILED, *_COUNTERS):
            row += [str(cur[stem] - self.prev.values[stem]), str(cur[stem])]
        snap_rtd: dict[str, tuple[int, float, float]] = {}
        for name in [*self.rtds, "__call_length__"]:
            r = stats.call_length if name == "__call_length__" else stats.rtd.get(name, RtdStats())
            pn, pt, ps = self.prev.rtd.get(name, (0, 0.0, 0.0))
            mean_p, sd_p = _mean_sd(r.count - pn, r.total - pt, r.sumsq - ps)
            mean_c, sd_c = _mean_sd(r.count, r.total, r.sumsq)
            row += [format_sipp_duration(mean_p), format_sipp_duration(mean_c),
                    format_sipp_duration(sd_p), format_sipp_duration(sd_c)]
            snap_rtd[name] = (r.count, r.total, r.sumsq)
        for name in self.rtds:
            row += self._buckets(stats.rtd.get(name, RtdStats()),
                                 self.scenario.response_time_repartition)
        row += self._buckets(stats.call_length, self.scenario.call_length_repartition)
        self.stream.write(";".join(row) + ";\n")
        self.stream.flush()
        self.prev = _Snap(cur, snap_rtd)
        self.prev_time = wall

    @staticmethod
    def _buckets(r: RtdStats, bounds: tuple[float, ...]) -> list[str]:
        if not bounds:
            return [""]
        counts = r.buckets or [0] * (len(bounds) + 1)
        return ["", *(str(n) for n in counts)]


class TraceCountsWriter:
    """Writes SIPp's ``-trace_counts`` rows (per-step message counts) to ``stream``."""

    def __init__(self, stream: TextIO, scenario: m.Scenario, *, start_wall: float) -> None:
        self.stream = stream
        self.scenario = scenario
        self.start = start_wall
        stream.write(";".join(["CurrentTime", "ElapsedTime", *self.columns()]) + ";\n")
        stream.flush()

    def columns(self) -> list[str]:
        cols: list[str] = []
        for s in self.scenario.steps:
            cols += [f"{s.index}_{k}" for k in self._kinds(s)]
        return cols

    @staticmethod
    def _kinds(s: m.Step) -> list[str]:
        if isinstance(s, m.Send):
            assert s.message is not None
            name = s.message.method or str(s.message.status)
            kinds = [f"{name}_Sent", f"{name}_Retrans"]
            kinds += [f"{name}_Timeout"] if s.retrans else []
            return kinds + ([f"{name}_Lost"] if s.lost else [])
        if isinstance(s, m.Recv):
            name = s.request or str(s.response)
            kinds = [f"{name}_Recv", f"{name}_Retrans", f"{name}_Timeout", f"{name}_Unexp"]
            return kinds + ([f"{name}_Lost"] if s.lost else [])
        if isinstance(s, m.Pause):
            return ["Pause_Sessions", "Pause_Unexp"]
        return ["Nop_Sessions", "Nop_Unexp"]

    def write(self, stats: ScenarioStats, wall: float) -> None:
        row = [format_sipp_time(wall), format_sipp_duration(wall - self.start)]
        for s, st in zip(self.scenario.steps, stats.steps, strict=True):
            values = {"Sent": st.messages, "Recv": st.messages, "Retrans": st.retrans,
                      "Timeout": st.timeouts, "Unexp": st.unexpected, "Lost": st.lost,
                      "Sessions": st.messages}
            row += [str(values[k.rsplit("_", 1)[1]]) for k in self._kinds(s)]
        self.stream.write(";".join(row) + ";\n")
        self.stream.flush()
