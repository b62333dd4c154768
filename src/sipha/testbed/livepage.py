"""`sipha run PLAN --web HOST:PORT`: the run's live page (see `sipha.report.live`).

The runner hands this module what it already makes once a second (its `Snapshot`, the
testers' per-second calls, the servers' active calls) and every event it records; the page
shows them. The page's controls come back to the runner as `RunActions` on the runner's loop:
inject a process fault now, drain or disable a server through the dispatchers' HTTP API, stop
the run. Each action is recorded by the runner as an event like a scheduled fault, so it is on
the report's timelines too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sipha.common.expect import Criteria
from sipha.report.live.board import NODE_STATES, Board
from sipha.report.live.board import Event as BoardEvent
from sipha.report.live.bridge import LateControls, LivePage, RunControls
from sipha.report.live.criteria import SoFar, live_criteria
from sipha.report.model import CallsSecond, Event
from sipha.report.summary import longest_answer_gap_ms
from sipha.testbed.progress import Snapshot

__all__ = ["RunActions", "RunPage"]

_ROLE_LEVEL = {"active": 2.0, "standby": 1.0}  # the roles chart: 2 active, 1 standby, 0 down
_NODE_STATE = {"running": "up", "stopped": "stopped", "exited": "exited", "pending": "starting"}
# A running server's state as the active dispatcher sees it, when not plain "active".
_HEALTH_SHOWN = frozenset({"suspect", "inactive", "disabled", "draining"})


@dataclass(frozen=True)
class RunActions:
    """What the runner lets the page do; each coroutine runs on the runner's loop and returns
    a line for the events (or raises ValueError with the reason it cannot)."""

    stop: Callable[[], Awaitable[str]]
    fault: Callable[[str, str], Awaitable[str]]
    server_state: Callable[[str, str], Awaitable[str]]
    set_rate: Callable[[float], Awaitable[str]]
    # netns runs only: (kind, node, parameters) -> a network fault now
    network: Callable[[str, str, Mapping[str, float]], Awaitable[str]] | None = None


class RunPage:
    """The page of one run: started before the cluster, closed after the report."""

    def __init__(self, address: tuple[str, int], title: str, *,
                 criteria: Criteria | None = None, results: Path | None = None) -> None:
        self.board = Board(title, kind="run")
        self._address = address
        self._controls = LateControls()
        host, port = address
        # The runner records each control as an event of the run: the page must not add its own.
        # ``results``: the folder holding this run's results folder, served as /runs/.
        self._page = LivePage(self.board, self._controls, host=host, port=port,
                              record_controls=False, results=results)
        self.page: LivePage | None = None  # set once serving
        self._seconds_shown = -1
        self._criteria = criteria
        self._faulted: dict[str, str] = {}  # node -> "killed" / "stopped" by a fault
        self._takeovers: list[float] = []  # ms of each takeover seen, for the live verdicts
        self._p99_max: float | None = None  # largest per-second setup p99 shown

    def attach(self, loop: asyncio.AbstractEventLoop, actions: RunActions) -> None:
        """Bind the controls to the runner's loop (the page may serve before it exists)."""
        controls = RunControls(loop, stop=actions.stop, fault=actions.fault,
                               server_state=actions.server_state, set_rate=actions.set_rate,
                               network=actions.network)
        self._controls.bound = controls
        names = controls.names
        if self.page is not None:
            self.page.update(lambda board: board.set_controls(names))

    def serve(self) -> None:
        """Serve the page; print its address and token once. Raises OSError. Called before a
        netns run enters its namespaces, so the page is reachable from this host."""
        if self.page is not None:
            return
        host, _port = self._address
        self._page.start()
        self.page = self._page
        try:
            public = not ipaddress.ip_address(host).is_loopback
        except ValueError:
            public = True
        if public:
            print(f"sipha run: the live page on {host} can be read by anyone who reaches it; "
                  "its controls need the token", file=sys.stderr)
        print(f"live page: {self._page.url}  (controls token, shown once: {self._page.token})",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.page is not None:
            self.page.update(lambda board: board.finish())
            self.page.close()

    def event(self, e: Event) -> None:
        if self.page is None:
            return
        source = "control" if "live page" in e.detail else (
            "plan" if e.kind == "fault" else "observed")
        what = e.detail.split()[0] if e.kind in ("fault", "control") and e.detail else e.kind
        detail = e.detail + (f" ({e.ms:.0f} ms)" if e.ms is not None else "")
        if e.kind == "fault" and e.node and "failed" not in e.detail:
            if what == "kill":
                self._faulted[e.node] = "killed"
            elif what == "stop":
                self._faulted[e.node] = "stopped"
            elif what in ("cont", "start", "restart"):
                self._faulted.pop(e.node, None)
        if e.kind == "takeover" and e.ms is not None:
            self._takeovers.append(e.ms)
        ev = BoardEvent(max(0.0, e.t), what, e.node, source, detail)
        self.page.update(lambda board: board.add_event(ev))

    def snapshot(self, snap: Snapshot, calls: Sequence[CallsSecond],
                 active: dict[str, int], roles: dict[str, str],
                 usage: dict[str, tuple[float, float]] | None = None,
                 health: dict[str, str] | None = None) -> None:
        """Once a second: new whole seconds of calls, node states (``health``: each server's
        state at the active dispatcher), live criteria."""
        if self.page is None:
            return
        per_second: dict[int, dict[str, object]] = {}
        for c in calls:
            second = int(c.t // 1)
            if second <= self._seconds_shown:
                continue
            row = per_second.setdefault(second, {"attempted": 0, "successful": 0, "failed": 0,
                                                 "retransmissions": 0, "failed_by_reason": {}})
            row["attempted"] = int(row["attempted"]) + c.attempted  # type: ignore[call-overload]
            row["successful"] = int(row["successful"]) + c.successful  # type: ignore[call-overload]
            row["failed"] = int(row["failed"]) + c.failed  # type: ignore[call-overload]
            row["retransmissions"] = (int(row["retransmissions"])  # type: ignore[call-overload]
                                      + c.retransmissions)
            reasons = row["failed_by_reason"]
            assert isinstance(reasons, dict)
            for k, v in c.failed_by_reason.items():
                reasons[k] = reasons.get(k, 0) + v
            for key in ("p50", "p90", "p99"):
                if key in c.setup_ms:
                    row[f"{key}_ms"] = max(float(row.get(f"{key}_ms", 0.0)),  # type: ignore[arg-type]
                                           c.setup_ms[key])
        # The newest second may still be filling (testers report when it closes): show only
        # seconds before the last one seen.
        complete = sorted(per_second)[:-1]
        rows = [(s, per_second[s]) for s in complete]
        if complete:
            self._seconds_shown = complete[-1]
        for _second, row in rows:
            p99 = row.get("p99_ms")
            if isinstance(p99, float) and (self._p99_max is None or p99 > self._p99_max):
                self._p99_max = p99
        so_far = SoFar(
            attempted=snap.attempted, successful=snap.successful, failed=snap.failed,
            takeovers_ms=tuple(self._takeovers),
            longest_gap_ms=longest_answer_gap_ms(c for c in calls
                                                 if int(c.t // 1) <= self._seconds_shown),
            setup_p99_ms_max=self._p99_max, finished=snap.stage == "stop")
        health = health or {}
        servers = {n: a for n, a in active.items() if a >= 0}
        nodes = [(name, self._faulted.get(name, state) if state in ("exited", "stopped")
                  else state, detail) for name, state, detail in snap.nodes]

        usage = usage or {}
        levels = {d: _ROLE_LEVEL.get(r, 0.0) for d, r in roles.items()}

        def edit(board: Board) -> None:
            for second, row in rows:
                board.add_row(second + 1, {**row, "active_per_server": servers,
                                           "roles": levels})
            for name, state, _detail in nodes:
                kind = "dispatcher" if name in roles else (
                    "server" if name in active else "node")
                shown = _NODE_STATE.get(state, state)
                if name in roles and shown == "up" and roles[name] in ("active", "standby"):
                    shown = roles[name]
                elif shown == "up" and health.get(name) in _HEALTH_SHOWN:
                    shown = health[name]
                if shown not in NODE_STATES:
                    shown = "up"
                cpu, rss = usage.get(name, (None, None))
                board.set_node(name, state=shown, role=roles.get(name, ""), kind=kind,
                               cpu=cpu, rss_mb=rss)
            if self._criteria is not None:
                board.set_criteria(live_criteria(self._criteria, so_far))

        self.page.update(edit)

