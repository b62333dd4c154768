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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sipha.common.expect import Criteria
from sipha.report.live.board import Board
from sipha.report.live.board import Event as BoardEvent
from sipha.report.live.bridge import LateControls, LivePage, RunControls
from sipha.report.model import CallsSecond, Event
from sipha.testbed.progress import Snapshot

__all__ = ["RunActions", "RunPage"]

_NODE_STATE = {"running": "up", "stopped": "stopped", "exited": "exited", "pending": "starting"}


@dataclass(frozen=True)
class RunActions:
    """What the runner lets the page do; each coroutine runs on the runner's loop and returns
    a line for the events (or raises ValueError with the reason it cannot)."""

    stop: Callable[[], Awaitable[str]]
    fault: Callable[[str, str], Awaitable[str]]
    server_state: Callable[[str, str], Awaitable[str]]


class RunPage:
    """The page of one run: started before the cluster, closed after the report."""

    def __init__(self, address: tuple[str, int], title: str, *,
                 criteria: Criteria | None = None) -> None:
        self.board = Board(title, kind="run")
        self._address = address
        self._controls = LateControls()
        host, port = address
        # The runner records each control as an event of the run: the page must not add its own.
        self._page = LivePage(self.board, self._controls, host=host, port=port,
                              record_controls=False)
        self.page: LivePage | None = None  # set once serving
        self._seconds_shown = -1
        self._criteria = criteria
        self._faulted: dict[str, str] = {}  # node -> "killed" / "stopped" by a fault

    def attach(self, loop: asyncio.AbstractEventLoop, actions: RunActions) -> None:
        """Bind the controls to the runner's loop (the page may serve before it exists)."""
        controls = RunControls(loop, stop=actions.stop, fault=actions.fault,
                               server_state=actions.server_state)
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
        what = e.kind if e.kind not in ("fault", "takeover") else (
            e.detail.split()[0] if e.kind == "fault" and e.detail else e.kind)
        detail = e.detail + (f" ({e.ms:.0f} ms)" if e.ms is not None else "")
        if e.kind == "fault" and e.node and "failed" not in e.detail:
            if what == "kill":
                self._faulted[e.node] = "killed"
            elif what == "stop":
                self._faulted[e.node] = "stopped"
            elif what in ("cont", "start", "restart"):
                self._faulted.pop(e.node, None)
        ev = BoardEvent(max(0.0, e.t), what, e.node, source, detail)
        self.page.update(lambda board: board.add_event(ev))

    def snapshot(self, snap: Snapshot, calls: Sequence[CallsSecond],
                 active: dict[str, int], roles: dict[str, str]) -> None:
        """Once a second: new whole seconds of calls, node states, live criteria."""
        if self.page is None:
            return
        per_second: dict[int, dict[str, object]] = {}
        for c in calls:
            second = int(c.t // 1)
            if second <= self._seconds_shown:
                continue
            row = per_second.setdefault(second, {"attempted": 0, "successful": 0, "failed": 0,
                                                 "failed_by_reason": {}})
            row["attempted"] = int(row["attempted"]) + c.attempted  # type: ignore[call-overload]
            row["successful"] = int(row["successful"]) + c.successful  # type: ignore[call-overload]
            row["failed"] = int(row["failed"]) + c.failed  # type: ignore[call-overload]
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
        servers = {n: a for n, a in active.items() if a >= 0}
        nodes = [(name, self._faulted.get(name, state) if state in ("exited", "stopped")
                  else state, detail) for name, state, detail in snap.nodes]

        def edit(board: Board) -> None:
            for second, row in rows:
                board.add_row(second + 1, {**row, "active_per_server": servers})
            for name, state, _detail in nodes:
                kind = "dispatcher" if name in roles else (
                    "server" if name in active else "node")
                shown = _NODE_STATE.get(state, state)
                if name in roles and shown == "up" and roles[name] in ("active", "standby"):
                    shown = roles[name]
                if shown not in ("starting", "up", "killed", "stopped", "exited", "active",
                                 "standby"):
                    shown = "up"
                board.set_node(name, state=shown, role=roles.get(name, ""), kind=kind)
            if self._criteria is not None:
                board.set_criteria(_live_criteria(self._criteria, snap))

        self.page.update(edit)


def _live_criteria(criteria: Criteria, snap: Snapshot) -> list[dict[str, object]]:
    """The criteria the page can judge while the run goes (the rest wait for the report)."""
    out: list[dict[str, object]] = []
    for name in ("max_failed_calls", "min_success_ratio"):
        bound = getattr(criteria, name, None)
        if bound is None:
            continue
        if name == "max_failed_calls":
            out.append({"name": name, "bound": bound, "measured": snap.failed,
                        "met": snap.failed <= bound})
        elif snap.attempted:
            ratio = snap.successful / snap.attempted
            out.append({"name": name, "bound": bound, "measured": round(ratio, 4),
                        "met": None})  # the ratio is judged at the end: calls still in flight
    return out
