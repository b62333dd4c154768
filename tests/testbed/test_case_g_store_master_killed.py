"""Case G, shortened: the Redis master of a Sentinel store SIGKILLed at 1/3 of the run and
started again at 2/3, under register+call traffic through the dispatcher pair.

Real processes on loopback: a Redis master, two replicas and three Sentinels started by the
test bed as nodes of the plan, two sipha servers on the ``redis-sentinel://`` URL, the pair,
a load controller and two agents.  The plan is ``plans/case-g-store-failover.toml`` with a
shorter run and a lower rate (the full run's figures are in docs/store.md): its own criteria
must be met (0 failed calls, 0 failed registrations), the failover measured, and every user
reached after the master came back.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from sipha.report.model import RunMeta
from sipha.testbed.plan import load_plan, node_names, validate
from sipha.testbed.progress import Progress
from sipha.testbed.runner import run_plan

ROOT = Path(__file__).resolve().parents[2]
CASE_G = ROOT / "plans" / "case-g-store-failover.toml"
KILL_AT, START_AT, DURATION = 4.0, 8.0, 12.0
USERS = 40


def _short_case_g() -> object:
    plan = load_plan(CASE_G)
    phase = msgspec.structs.replace(plan.phases[0], duration=DURATION, rate=20.0)
    faults = [msgspec.structs.replace(plan.faults[0], at=KILL_AT),
              msgspec.structs.replace(plan.faults[1], at=START_AT)]
    users = msgspec.structs.replace(plan.servers.users, count=USERS)
    servers = msgspec.structs.replace(plan.servers, users=users)
    return validate(msgspec.structs.replace(plan, phases=[phase], faults=faults,
                                            servers=servers, drain=3.0))


def test_case_g_plan_names_every_store_node() -> None:
    plan = load_plan(CASE_G)
    assert {"redis", "redis-r1", "redis-r2", "sentinel1", "sentinel2", "sentinel3"} <= set(
        node_names(plan))
    assert plan.expect.default is not None
    assert plan.expect.default.max_failed_registrations == 0


@pytest.mark.timeout(90)
def test_store_master_killed_and_restarted_fails_nothing(tmp_path: Path) -> None:
    plan = _short_case_g()
    out = tmp_path / "case-g"
    outcome = run_plan(plan, out, progress=Progress(every=100))  # type: ignore[arg-type]
    assert outcome.status == "complete", outcome.detail
    assert outcome.leftover_pids == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_attempted"] > 0
    assert summary["calls_failed"] == 0, summary["failed_by_reason"]
    assert summary["criteria_met"], summary["verdicts"]
    meta = msgspec.json.decode((out / "meta.json").read_bytes(), type=RunMeta)
    assert meta.failed_registrations == 0
    # The failover was seen and timed: the Sentinels named a replica within a wide bound.
    assert len(meta.store_failover_ms) == 1
    assert 0 < meta.store_failover_ms[0] < 15_000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    promoted = [e for e in events if e["kind"] == "store-failover"]
    assert promoted
    assert promoted[0]["node"] in ("redis-r1", "redis-r2")
    # Every user registered before the kill answered after the restart: the agents call their
    # users in turn, so once the calls after the restart outnumber the users (with none
    # failed) each user has been called and reached.
    calls = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    after = sum(c["successful"] for c in calls if c["t"] >= START_AT + 1)
    assert after >= USERS
