"""A scenario run as the controller ships it to its agents, and its statistics coming back.

Theory of operation
-------------------
``sipha load scenario FILE.xml TARGET --agents K`` sends every agent the same
:class:`XmlScenario` inside its :class:`~sipha.loadtest.protocol.Plan`: the scenario's bytes,
the injection files' bytes and the run options (SIPp's flags).  Nothing is read from the
agent's disk, so an agent on another host runs exactly the files the operator named.  The
whole plan travels in one CurveZMQ frame (:data:`~sipha.loadtest.curve.MAX_FRAME`, 1 MiB):
:func:`check_size` refuses bigger files before any agent is started (a PRINTF injection file
stands for many users in a few bytes).

Each agent's share (:func:`share_xml`) names its slice of the injection rows:
agent *i* of *K* reads rows *i*, *i + K*, *i + 2K*... of every SEQUENTIAL and USER file (RANDOM
files are read whole, with the agent's own seed), and runs its part of ``--users`` (USER mode:
user *u* of agent *i* reads that slice's row *u - 1*), so no row is used by two agents.

The statistics come back in an agent's Done as a :class:`ScenarioSnapshot`: per-step counters,
calls by outcome, counters, and per rtd its repartition and HDR histogram, everything adding
up exactly (:meth:`~sipha.loadtest.scenario.stats.ScenarioStats.merge`).  A snapshot is a
peer's input: :func:`from_snapshot` checks it against the scenario the controller shipped
(steps, rtd names, repartition sizes, histogram shape) and raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Final

import msgspec

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.stats import RtdStats, ScenarioStats, StepStats
from sipha.loadtest.stats import StatsDecodeError, decode_histogram, encode_histogram

__all__ = [
    "MAX_SHIPPED_BYTES",
    "RtdSnapshot",
    "ScenarioSnapshot",
    "ShippedFile",
    "XmlRunOptions",
    "XmlScenario",
    "check_size",
    "from_snapshot",
    "rtd_names",
    "share_xml",
    "to_snapshot",
]

MAX_SHIPPED_BYTES: Final = 960 * 1024
"""Scenario plus injection files, at most: the plan must fit one 1 MiB control frame."""
MAX_FILES: Final = 16
MAX_STEPS: Final = 10_000
MAX_KEYS: Final = 256

NonNeg = Annotated[int, msgspec.Meta(ge=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Key = Annotated[str, msgspec.Meta(max_length=128)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class ShippedFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file as the operator named it (``[fieldN file=...]`` matches this name) and its bytes."""

    name: Name
    data: Annotated[bytes, msgspec.Meta(max_length=MAX_SHIPPED_BYTES)]


class XmlRunOptions(msgspec.Struct, frozen=True, kw_only=True):
    """SIPp's run options, as ``sipha load scenario`` parsed them (see :mod:`.cli`)."""

    local_ip: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "127.0.0.1"
    local_port: Port = 0
    transport: str = "UDP"
    service: Annotated[str, msgspec.Meta(max_length=256)] = "service"
    media_ip: Annotated[str, msgspec.Meta(max_length=64)] = ""
    media_port: Port = 6000
    users: NonNeg = 0
    pause_ms: NonNegFloat = 0.0
    recv_timeout: NonNegFloat = 0.0
    max_retrans: NonNeg = 7
    max_retrans_invite: NonNeg = 5
    base_cseq: NonNeg = 1
    auth_username: Annotated[str, msgspec.Meta(max_length=256)] = ""
    auth_password: Annotated[str, msgspec.Meta(max_length=256)] = "password"
    behaviors: Annotated[list[Key], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=list)
    auto_answer: bool = False
    cid_str: Annotated[str, msgspec.Meta(max_length=256)] = "%u-%p@%s"
    # SIPp's -rp, -rate_increase, -rate_interval, -rate_max, -no_rate_quit, -timeout
    rate_period: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    rate_increase: NonNegFloat = 0.0
    rate_interval: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    rate_max: NonNegFloat | None = None
    quit_at_max: bool = True
    timeout: NonNegFloat | None = None
    # SIPp's -t un/tn, several -i addresses, -max_reconnect/-reconnect_sleep/-reconnect_close
    per_call: bool = False
    local_ips: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]],
                         msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)
    max_reconnect: NonNeg | None = None
    reconnect_sleep: NonNegFloat = 1.0
    reconnect_close: bool = True


class XmlScenario(msgspec.Struct, frozen=True, kw_only=True, tag="xml"):
    """A SIPp XML scenario run (see the module docstring); ``share_index`` of
    ``share_count`` names this agent's slice of the injection rows."""

    scenario: ShippedFile
    injections: Annotated[list[ShippedFile], msgspec.Meta(max_length=MAX_FILES)] = (
        msgspec.field(default_factory=list))
    infindex: Annotated[list[tuple[Name, NonNeg]], msgspec.Meta(max_length=MAX_FILES)] = (
        msgspec.field(default_factory=list))
    run: XmlRunOptions = XmlRunOptions()
    share_index: NonNeg = 0
    share_count: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 1


def check_size(xml: XmlScenario) -> None:
    """Raise ``ValueError`` if the files cannot travel in one control frame."""
    size = len(xml.scenario.data) + sum(len(f.data) for f in xml.injections)
    if size > MAX_SHIPPED_BYTES:
        raise ValueError(
            f"the scenario and injection files are {size} bytes: at most {MAX_SHIPPED_BYTES} "
            "are shipped to agents (a PRINTF=N injection file stands for N times its lines)")


def _split(total: int, k: int, index: int) -> int:
    base, extra = divmod(total, k)
    return base + (1 if index < extra else 0)


def share_xml(xml: XmlScenario, *, agents: int, index: int) -> XmlScenario:
    """Agent ``index``'s share of ``agents``: its slice of the rows, its part of the users and
    of the rate increase (the base rate is the plan's, divided by :func:`share_plan`); a
    fixed local port is shifted by the index so that agents on one host do not collide."""
    run = xml.run
    run = msgspec.structs.replace(
        run,
        users=_split(run.users, agents, index) if run.users else 0,
        rate_increase=run.rate_increase / agents,
        rate_max=None if run.rate_max is None else run.rate_max / agents,
        local_port=run.local_port + index if run.local_port else 0,
    )
    return msgspec.structs.replace(xml, run=run, share_index=index, share_count=agents)


# -- statistics ----------------------------------------------------------------------------------


class StepCounts(msgspec.Struct, frozen=True, array_like=True):
    messages: NonNeg
    retrans: NonNeg
    timeouts: NonNeg
    unexpected: NonNeg
    lost: NonNeg


class RtdSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    count: NonNeg = 0
    total: float = 0.0  # seconds (a sum of float differences: may be -0.0)
    sumsq: float = 0.0
    low: float = float("inf")
    high: float = 0.0
    buckets: Annotated[list[NonNeg], msgspec.Meta(max_length=MAX_KEYS)] = (
        msgspec.field(default_factory=list))
    hist: str = ""  # HdrHistogram blob, microseconds ("" when empty)


class ScenarioSnapshot(msgspec.Struct, frozen=True, kw_only=True, tag="scenario-stats"):
    """Wire form of :class:`~sipha.loadtest.scenario.stats.ScenarioStats`."""

    steps: Annotated[list[StepCounts], msgspec.Meta(max_length=MAX_STEPS)]
    created: NonNeg = 0
    successful: NonNeg = 0
    current: NonNeg = 0
    peak: NonNeg = 0
    dead_messages: NonNeg = 0
    out_of_call: NonNeg = 0
    auto_answered: NonNeg = 0
    warnings: NonNeg = 0
    malformed: NonNeg = 0
    failed: Annotated[dict[Key, NonNeg], msgspec.Meta(max_length=MAX_KEYS)] = (
        msgspec.field(default_factory=dict))
    counters: Annotated[dict[Key, int], msgspec.Meta(max_length=MAX_KEYS)] = (
        msgspec.field(default_factory=dict))
    rtd: Annotated[dict[Key, RtdSnapshot], msgspec.Meta(max_length=MAX_KEYS)] = (
        msgspec.field(default_factory=dict))
    call_length: RtdSnapshot = RtdSnapshot()


def _rtd_out(r: RtdStats) -> RtdSnapshot:
    return RtdSnapshot(count=r.count, total=r.total, sumsq=r.sumsq, low=r.low, high=r.high,
                       buckets=list(r.buckets), hist=encode_histogram(r.hist))


def to_snapshot(stats: ScenarioStats) -> ScenarioSnapshot:
    return ScenarioSnapshot(
        steps=[StepCounts(s.messages, s.retrans, s.timeouts, s.unexpected, s.lost)
               for s in stats.steps],
        created=stats.created, successful=stats.successful, current=stats.current,
        peak=stats.peak, dead_messages=stats.dead_messages, out_of_call=stats.out_of_call,
        auto_answered=stats.auto_answered, warnings=stats.warnings, malformed=stats.malformed,
        failed=dict(stats.failed), counters=dict(stats.counters),
        rtd={k: _rtd_out(r) for k, r in stats.rtd.items()},
        call_length=_rtd_out(stats.call_length),
    )


def rtd_names(scenario: m.Scenario) -> set[str]:
    """The rtds a scenario can measure."""
    return {name for step in scenario.steps for name in (step.rtd, step.start_rtd) if name}


def _rtd_in(r: RtdSnapshot, repartition: tuple[float, ...], what: str) -> RtdStats:
    if not all(math.isfinite(x) for x in (r.total, r.sumsq, r.high)) or math.isnan(r.low):
        raise ValueError(f"{what}: a sum or an extreme is not a number")
    if r.buckets and len(r.buckets) != len(repartition) + 1:
        raise ValueError(f"{what}: {len(r.buckets)} repartition buckets, the scenario has "
                         f"{len(repartition) + 1}")
    try:
        hist = decode_histogram(r.hist, what)
    except StatsDecodeError as exc:
        raise ValueError(str(exc)) from None
    if hist is not None and hist.get_total_count() != r.count:
        raise ValueError(f"{what}: its histogram holds {hist.get_total_count()} samples, "
                         f"its count is {r.count}")
    if (r.buckets and sum(r.buckets) != r.count) or (r.count and hist is None):
        raise ValueError(f"{what}: samples do not add up to its count {r.count}")
    return RtdStats(count=r.count, total=r.total, sumsq=r.sumsq, low=r.low, high=r.high,
                    buckets=list(r.buckets), hist=hist)


def from_snapshot(snap: ScenarioSnapshot, scenario: m.Scenario) -> ScenarioStats:
    """Statistics from an agent's snapshot of ``scenario``'s run.  Raises ``ValueError`` if
    the snapshot cannot be this scenario's (steps, rtds, repartitions, histograms)."""
    if len(snap.steps) != len(scenario.steps):
        raise ValueError(f"{len(snap.steps)} steps, the scenario has {len(scenario.steps)}")
    unknown = set(snap.rtd) - rtd_names(scenario)
    if unknown:
        raise ValueError(f"rtd {sorted(unknown)[0]!r} is not in the scenario")
    stats = ScenarioStats(steps=[StepStats(s.messages, s.retrans, s.timeouts, s.unexpected,
                                           s.lost) for s in snap.steps])
    for name in ("created", "successful", "current", "peak", "dead_messages", "out_of_call",
                 "auto_answered", "warnings", "malformed"):
        setattr(stats, name, getattr(snap, name))
    if sum(snap.failed.values()) + snap.successful > snap.created:
        raise ValueError(f"{snap.successful} successful and {sum(snap.failed.values())} "
                         f"failed calls of {snap.created} created")
    stats.failed = Counter(snap.failed)
    stats.counters = Counter(snap.counters)
    stats.rtd = {k: _rtd_in(r, scenario.response_time_repartition, f"rtd {k}")
                 for k, r in snap.rtd.items()}
    stats.call_length = _rtd_in(snap.call_length, scenario.call_length_repartition,
                                "call length")
    return stats
