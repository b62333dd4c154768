"""The results folder of a run: what the test bed writes and the report reads.

Layout (every ``*.jsonl`` file is JSON lines, one record per line, flushed as the run goes so
an interrupted run still leaves readable results)::

    RESULTS/
      meta.json        RunMeta: plan, profile, time scale, nodes, status, start time
      calls.jsonl      CallsSecond: calls per second, one record per (second, tester source)
      servers.jsonl    ServerSample: active calls per server, once a second
      roles.jsonl      RoleSample: each dispatcher's role, each time it was polled
      nodes.jsonl      NodeSample: CPU % and RSS per node, once a second
      events.jsonl     Event: faults, role changes, takeovers, node exits, phases
      summary.json     written by the report (see sipha.report.summary)
      calls.csv        the calls per second, merged over testers, for spreadsheets
      report.html      the self-contained report; figures/*.png beside it

Times ``t`` are seconds since the load started (negative while the cluster was starting).
Records are msgspec Structs so a reader gets typed values or a clear error, never a KeyError.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final, TextIO, TypeVar

import msgspec

from sipha.common.expect import Criteria

__all__ = [
    "CALLS",
    "EVENTS",
    "META",
    "NODES",
    "ROLES",
    "SERVERS",
    "CallsSecond",
    "Event",
    "JsonlWriter",
    "NodeInfo",
    "NodeSample",
    "Results",
    "ResultsError",
    "RoleSample",
    "RunMeta",
    "ServerSample",
    "load_results",
    "read_jsonl",
    "write_meta",
]

META: Final = "meta.json"
CALLS: Final = "calls.jsonl"
SERVERS: Final = "servers.jsonl"
ROLES: Final = "roles.jsonl"
NODES: Final = "nodes.jsonl"
EVENTS: Final = "events.jsonl"


class ResultsError(Exception):
    """A results folder that cannot be read: missing meta.json, a malformed record."""


class NodeInfo(msgspec.Struct, kw_only=True):
    name: str
    kind: str  # server | dispatcher | tester | controller | redis
    address: str = ""


class RunMeta(msgspec.Struct, kw_only=True):
    name: str
    profile: str
    time_scale: float = 1.0
    started_at: float = 0.0  # unix time of t = 0
    load_duration: float = 0.0
    status: str = "running"  # running | complete | interrupted | aborted
    status_detail: str = ""
    nodes: list[NodeInfo] = msgspec.field(default_factory=list)
    plan: dict[str, object] = msgspec.field(default_factory=dict)
    leftover_pids: list[int] = msgspec.field(default_factory=list)
    # The criteria of this run's profile (the plan's [expect]), judged by the report.
    expect: Criteria = msgspec.field(default_factory=Criteria)
    # Whole-run INVITE -> 200 p99 of sipha's testers, from their exact merged histograms (the
    # highest over phases: no p99 of a part is below the p99 of the whole); None: not measured.
    setup_p99_ms: float | None = None
    # REGISTERs of register+call testers that failed (None: none registered), and each store
    # failover the run saw (fault on the Redis master -> Sentinels name a new one), in ms.
    failed_registrations: int | None = None
    store_failover_ms: list[float] = msgspec.field(default_factory=list)


class CallsSecond(msgspec.Struct, kw_only=True):
    """One second of calls from one source (``sipha`` or ``sipp:<tester>``)."""

    t: float
    source: str
    attempted: int = 0
    successful: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    concurrent: int = 0
    # Requests and responses this source sent again (Timer A/E/G, SIPp's Retransmissions(P)):
    # what loss on the wire costs when calls still succeed (case D).
    retransmissions: int = 0
    # Setup latency (INVITE -> 200) percentiles in ms for this second of this source; SIPp's
    # files only give a mean, kept as "mean".
    setup_ms: dict[str, float] = msgspec.field(default_factory=dict)
    # Hex bitmap of the 10 ms slots of this second in which a call was answered (sipha's
    # testers only; "" from SIPp, whose files count per second).
    answered_slots: str = ""


class ServerSample(msgspec.Struct, kw_only=True):
    t: float
    node: str
    up: bool
    active_calls: int = 0
    calls_total: int | None = None  # calls answered or proxied so far, when the server says


class RoleSample(msgspec.Struct, kw_only=True):
    t: float
    node: str
    role: str  # active | standby | down | unknown


class NodeSample(msgspec.Struct, kw_only=True):
    t: float
    node: str
    cpu_percent: float
    rss_bytes: int
    state: str = "running"  # running | stopped | dead


class Event(msgspec.Struct, kw_only=True):
    t: float
    kind: str  # fault | heal | fenced | role | takeover | exit | phase | error
    node: str = ""
    detail: str = ""
    ms: float | None = None  # takeover duration


T = TypeVar("T")


class JsonlWriter:
    """Appends records to one JSON-lines file, flushing each line (a crash loses none)."""

    __slots__ = ("_encoder", "_stream")

    def __init__(self, path: Path) -> None:
        self._stream: TextIO = path.open("a", encoding="utf-8")
        self._encoder = msgspec.json.Encoder()

    def write(self, record: msgspec.Struct) -> None:
        self._stream.write(self._encoder.encode(record).decode() + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def write_meta(folder: Path, meta: RunMeta) -> None:
    """Write meta.json atomically (temp file + rename), so a reader never sees half of it."""
    tmp = folder / (META + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(meta), indent=2))
    tmp.replace(folder / META)


def read_jsonl(path: Path, type_: type[T]) -> Iterator[T]:
    """Records of ``path`` (none if it does not exist).  A torn last line (the run was killed
    mid-write) is skipped; a malformed line elsewhere raises ResultsError."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    decoder = msgspec.json.Decoder(type_)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if i == len(lines) - 1:
                return
            raise ResultsError(f"{path}:{i + 1}: {exc}") from None


class Results(msgspec.Struct, kw_only=True):
    """Everything in a results folder, loaded."""

    folder: str
    meta: RunMeta
    calls: list[CallsSecond]
    servers: list[ServerSample]
    roles: list[RoleSample]
    nodes: list[NodeSample]
    events: list[Event]

    def fault_times(self) -> list[tuple[float, str]]:
        """Faults and heals (of network faults), in time order, labelled."""
        return [(e.t, f"{e.detail or 'fault'} {e.node}".strip()) for e in self.events
                if e.kind in ("fault", "heal")]

    def fault_spans(self) -> list[tuple[float, float]]:
        """(start, end) of faults that last (network faults, CPU hogs): until their heal, or
        for their planned duration (``ms``), or to the end of the run."""
        spans: list[tuple[float, float]] = []
        heals = [e for e in self.events if e.kind == "heal"]
        end = max((e.t for e in self.events), default=0.0)
        for e in self.events:
            if e.kind != "fault":
                continue
            healed = next((h.t for h in heals if h.node == e.node and h.t >= e.t
                           and _action(h) == _action(e)), None)
            if healed is not None:
                spans.append((e.t, healed))
            elif e.ms is not None:
                spans.append((e.t, e.t + e.ms / 1000.0))
            elif any(h.t >= e.t for h in heals):  # healed by a heal of everything
                spans.append((e.t, min(h.t for h in heals if h.t >= e.t)))
            elif _action(e) in _LASTING:
                spans.append((e.t, end))
        return spans


# Fault actions that last until healed (network faults); drawn as a band.
_LASTING = frozenset({"loss", "delay", "duplicate", "reorder", "corrupt", "rate", "partition",
                      "split_pair", "cpu_hog"})


def _action(e: Event) -> str:
    return (e.detail.split() or [""])[0]


def load_results(folder: str | Path) -> Results:
    """Load a results folder; raise ResultsError if it is not one."""
    f = Path(folder)
    meta_path = f / META
    try:
        meta = msgspec.json.decode(meta_path.read_bytes(), type=RunMeta)
    except OSError as exc:
        raise ResultsError(
            f"{meta_path}: cannot read ({exc.strerror}); is it a results folder?"
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ResultsError(f"{meta_path}: {exc}") from None
    return Results(
        folder=str(f),
        meta=meta,
        calls=list(read_jsonl(f / CALLS, CallsSecond)),
        servers=list(read_jsonl(f / SERVERS, ServerSample)),
        roles=list(read_jsonl(f / ROLES, RoleSample)),
        nodes=list(read_jsonl(f / NODES, NodeSample)),
        events=list(read_jsonl(f / EVENTS, Event)),
    )
