"""Shared pieces of the load tester's tests: plans, a loopback silent peer, SIPp stat files."""

from __future__ import annotations

import contextlib
import csv
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.protocol import HoldTime, Plan, Ramp, UserRange


def make_plan(
    port: int,
    *,
    scenario: str = "call",
    rate: float = 10.0,
    duration: float | None = 1.0,
    max_calls: int | None = None,
    hold: float = 0.0,
    ramp: Ramp | None = None,
    users: UserRange | None = None,
    transport: str = "udp",
    **options: Any,
) -> Plan:
    return Plan(
        run_id="test", scenario=scenario, target_host="127.0.0.1", target_port=port,
        transport=transport,  # type: ignore[arg-type]
        rate=rate, duration=duration, start_at=time.time(), seed=7, ramp=ramp,
        max_calls=max_calls, hold=HoldTime(mean=hold), users=users,
        options=ScenarioOptions(**options),
    )


@contextlib.contextmanager
def silent_peer() -> Iterator[int]:
    """A bound UDP port that never answers (a target that swallows everything)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def sipp_last_row(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert len(rows) >= 2, f"no rows in {path}"
    return dict(zip(rows[0], rows[-1], strict=False))
