"""What the live page shows, as plain data: per-second rows, nodes, agents, events, criteria.

The owner of a run (the test bed's runner, the load controller) feeds a `Board`; the web server
(`sipha.report.live.server`) reads it. Pure and bounded: rows and events are kept in deques with
a cap, so a run of hours holds the last hour of rows and the last thousand events, and each
value is checked where it enters (a number is a finite float, a name a short string), because a
row or an event may come from another process.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_EVENTS", "MAX_ROWS", "Board", "Event"]

MAX_ROWS = 3600  # one hour of per-second rows
MAX_EVENTS = 1000
MAX_NAME = 64
ROW_NUMBERS = ("attempted", "successful", "failed", "active", "p50_ms", "p90_ms", "p99_ms",
               "retransmissions", "rate")
ROW_MAPS = ("failed_by_reason", "active_per_server", "roles")
NODE_STATES = frozenset({"starting", "up", "killed", "stopped", "exited", "active", "standby",
                         "suspect", "inactive", "disabled", "draining"})
AGENT_STATES = frozenset({"joined", "running", "missing", "done", "lost"})


def _name(value: object) -> str:
    text = str(value)
    return text[:MAX_NAME]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _counts(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, float] = {}
    for key, raw in list(value.items())[:64]:
        number = _number(raw)
        if number is not None:
            out[_name(key)] = number
    return out


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at second `t`: a fault (scheduled or from a control), a
    takeover, a node's state change. `source` is ``plan``, ``control`` or ``observed``."""

    t: float
    what: str
    target: str = ""
    source: str = "plan"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "what": self.what, "target": self.target, "source": self.source,
                "detail": self.detail}


@dataclass
class Board:
    """The state of one run as the page sees it. Times are seconds since the run started."""

    title: str
    kind: str = "load"  # "load" (sipha load) or "run" (sipha run PLAN)
    controls: tuple[str, ...] = ()  # what the owner accepts: rate, stop, fault, server_state
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    criteria: list[dict[str, Any]] = field(default_factory=list)
    rows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_ROWS))
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    finished: bool = False
    results_index: bool = False  # the server also serves the results index at /runs/
    version: int = 0  # bumped on every change: the server pushes only when it moved
    # Totals since the start: a capped deque forgets its oldest entries, not their count.
    rows_added: int = 0
    events_added: int = 0

    def add_row(self, t: float, values: dict[str, object]) -> None:
        """One second of the run: counts, percentiles and per-reason/per-server maps."""
        row: dict[str, Any] = {"t": float(t)}
        for key in ROW_NUMBERS:
            number = _number(values.get(key))
            if number is not None:
                row[key] = number
        for key in ROW_MAPS:
            row[key] = _counts(values.get(key))
        self.rows.append(row)
        self.rows_added += 1
        self.version += 1

    def set_node(self, name: str, *, state: str, role: str = "", cpu: float | None = None,
                 rss_mb: float | None = None, kind: str = "") -> None:
        if state not in NODE_STATES:
            raise ValueError(f"node state {state!r}: expected one of {sorted(NODE_STATES)}")
        self.nodes[_name(name)] = {"name": _name(name), "kind": _name(kind), "state": state,
                                   "role": _name(role), "cpu": _number(cpu),
                                   "rss_mb": _number(rss_mb)}
        self.version += 1

    def set_agent(self, name: str, *, state: str, rate: float | None = None,
                  calls: float | None = None) -> None:
        if state not in AGENT_STATES:
            raise ValueError(f"agent state {state!r}: expected one of {sorted(AGENT_STATES)}")
        self.agents[_name(name)] = {"name": _name(name), "state": state, "rate": _number(rate),
                                    "calls": _number(calls)}
        self.version += 1

    def add_event(self, event: Event) -> None:
        self.events.append(Event(event.t, _name(event.what), _name(event.target),
                                 _name(event.source), event.detail[:200]))
        self.events_added += 1
        self.version += 1

    def set_criteria(self, criteria: list[dict[str, Any]]) -> None:
        """Each: name, bound, measured (or None while unknown), met (bool or None)."""
        self.criteria = [
            {"name": _name(c.get("name")), "bound": _number(c.get("bound")),
             "measured": _number(c.get("measured")),
             "met": c.get("met") if isinstance(c.get("met"), bool) else None}
            for c in criteria[:32]
        ]
        self.version += 1

    def set_controls(self, controls: tuple[str, ...]) -> None:
        self.controls = controls
        self.version += 1

    def finish(self) -> None:
        self.finished = True
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a page that just connected."""
        return {"type": "hello", "title": self.title, "kind": self.kind, "rows": list(self.rows),
                "results_index": self.results_index,
                **self._state(), "events": [e.as_dict() for e in self.events]}

    def update_since(self, rows_seen: int, events_seen: int) -> dict[str, Any]:
        """What changed for a page that has seen `rows_seen` rows and `events_seen` events
        (counted since the start, so the caps never confuse a page that fell behind)."""
        rows = list(self.rows)[max(0, len(self.rows) - (self.rows_added - rows_seen)):]
        events = list(self.events)[max(0, len(self.events) - (self.events_added - events_seen)):]
        return {"type": "update", "rows": rows, **self._state(),
                "events": [e.as_dict() for e in events]}

    def _state(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes.values()), "agents": list(self.agents.values()),
                "criteria": self.criteria, "finished": self.finished,
                "controls": list(self.controls),
                "rows_added": self.rows_added, "events_added": self.events_added}
