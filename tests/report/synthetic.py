"""A synthetic results folder: what a dispatcher-failure run writes, without running one."""

from __future__ import annotations

from pathlib import Path

from sipha.common.expect import Criteria
from sipha.report.model import (
    CALLS,
    EVENTS,
    NODES,
    ROLES,
    SERVERS,
    CallsSecond,
    Event,
    JsonlWriter,
    NodeInfo,
    NodeSample,
    RoleSample,
    RunMeta,
    ServerSample,
    write_meta,
)


def write_synthetic(
    folder: Path,
    *,
    profile: str = "default",
    seconds: int = 20,
    fail_at: tuple[int, ...] = (),
    gap_at: tuple[int, ...] = (),
    calls_total: bool = True,
    expect: Criteria | None = None,
) -> Path:
    """Two servers, a pair, 10 calls/s.  Seconds in ``fail_at`` lose 4 calls ('timeout');
    seconds in ``gap_at`` have no success at all.  d1 is killed at 5 s, d2 takes over."""
    folder.mkdir(parents=True, exist_ok=True)
    write_meta(folder, RunMeta(
        name="synthetic", profile=profile, time_scale=60.0, status="complete",
        nodes=[NodeInfo(name=n, kind=k, address="127.9.9.1") for n, k in
               (("s1", "server"), ("s2", "server"), ("d1", "dispatcher"), ("d2", "dispatcher"))],
        plan={"name": "synthetic", "description": "made up"},
        expect=expect or Criteria(),
    ))
    calls, servers = JsonlWriter(folder / CALLS), JsonlWriter(folder / SERVERS)
    roles, nodes, events = (JsonlWriter(folder / ROLES), JsonlWriter(folder / NODES),
                            JsonlWriter(folder / EVENTS))
    total = {"s1": 0, "s2": 0}
    for t in range(seconds):
        failed = 4 if t in fail_at else 0
        ok = 0 if t in gap_at else 10 - failed
        calls.write(CallsSecond(
            t=float(t), source="sipha", attempted=10, successful=ok, failed=failed,
            failed_by_reason={"timeout": failed} if failed else {}, concurrent=20,
            setup_ms={"p50": 2.0, "p90": 3.0, "p99": 9.0},
        ))
        calls.write(CallsSecond(t=float(t), source="sipp:t2", attempted=5,
                                successful=0 if t in gap_at else 5, setup_ms={"mean": 4.0}))
        total["s1"] += 9
        total["s2"] += 6
        for node, active in (("s1", 12), ("s2", 8)):
            servers.write(ServerSample(t=float(t), node=node, up=True, active_calls=active,
                                       calls_total=total[node] if calls_total else None))
            nodes.write(NodeSample(t=float(t), node=node, cpu_percent=10.0 + t,
                                   rss_bytes=50 << 20))
        roles.write(RoleSample(t=float(t), node="d1", role="active" if t < 5 else "down"))
        roles.write(RoleSample(t=float(t), node="d2", role="standby" if t < 5 else "active"))
    events.write(Event(t=5.0, kind="fault", node="d1", detail="kill"))
    events.write(Event(t=5.3, kind="takeover", node="d2", detail="d1 -> d2", ms=250.0))
    for w in (calls, servers, roles, nodes, events):
        w.close()
    return folder
