"""Following the dispatchers' roles: role changes and takeover times, from polled samples.

Pure: observations (node, role, run time) and faults come in, :class:`Event` records go out.
A *takeover* is a node becoming active after another one was; its duration runs from the
moment the old active was lost (the fault that hit it, or the first poll that found it not
active, whichever came first) to the first poll that found the new one active.  Its
resolution is the poll interval (the runner polls every 100 ms).

HA dispatchers measure a takeover themselves, more precisely: the gap between the peer's last
forwarded message and their own first one (``GET /ha`` -> ``takeovers[].takeover_ms``).  With
``wait_reported > 0`` a polled takeover is held back until the new active reports that figure
(:meth:`RoleTracker.reported`), and falls back to the polled duration after ``wait_reported``
seconds (:meth:`RoleTracker.expire`): with no traffic there is no first forward to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sipha.report.model import Event

__all__ = ["LOSING_ACTIONS", "RoleTracker"]

# Fault actions that take the address away from an active dispatcher.
LOSING_ACTIONS = frozenset({"kill", "stop", "restart", "split_pair"})


class RoleTracker:
    __slots__ = ("_fault_at", "_lost_at", "_pending", "_pid", "_seen", "_wait", "active", "roles")

    def __init__(self, nodes: Iterable[str], *, wait_reported: float = 0.0) -> None:
        self.roles: dict[str, str] = {n: "unknown" for n in nodes}
        self.active: str | None = None
        self._lost_at: float | None = None  # first poll that found the active not active
        self._fault_at: float | None = None  # a fault that hit the active (never a blip)
        self._wait = wait_reported
        self._pending: list[Event] = []  # polled takeovers waiting for the node's own figure
        self._pid: dict[str, int] = {}  # the process whose takeover records we have seen
        self._seen: dict[str, int] = {}  # how many of its records

    def role_of(self, node: str) -> str:
        return self.roles.get(node, "unknown")

    def fault(self, node: str, action: str, t: float) -> None:
        """A fault hit ``node`` at ``t``: if it held the address, the clock starts now."""
        if node == self.active and action in LOSING_ACTIONS and self._fault_at is None:
            self._fault_at = t

    def observe(self, node: str, role: str, t: float) -> list[Event]:
        """One poll result; returns the role change and takeover events it reveals."""
        events: list[Event] = []
        previous = self.roles.get(node, "unknown")
        if role != previous:
            self.roles[node] = role
            events.append(Event(t=t, kind="role", node=node, detail=f"{previous} -> {role}"))
        if node == self.active and role != "active" and self._lost_at is None:
            self._lost_at = t
        if role == "active" and node == self.active:
            self._lost_at = None  # a blip (a slow poll), not a loss
        elif role == "active":
            if self.active is not None:
                lost = min(x for x in (self._lost_at, self._fault_at, t) if x is not None)
                takeover = Event(t=t, kind="takeover", node=node,
                                 detail=f"{self.active} -> {node}",
                                 ms=max(0.0, (t - lost) * 1000.0))
                if self._wait > 0:
                    self._pending.append(takeover)
                else:
                    events.append(takeover)
            self.active = node
            self._lost_at = self._fault_at = None
        return events

    def reported(
        self, node: str, pid: int, takeover_ms: Sequence[float | None], t: float
    ) -> list[Event]:
        """The takeover records ``node`` (process ``pid``) reports; a new one with a figure
        releases that node's held takeover with the node's own measurement."""
        if self._pid.get(node) != pid:
            self._pid[node], self._seen[node] = pid, 0  # restarted: its records start over
        new = [ms for ms in takeover_ms[self._seen[node]:] if ms is not None]
        self._seen[node] = len(takeover_ms)
        events: list[Event] = []
        for e in list(self._pending):
            if e.node == node and new:
                self._pending.remove(e)
                polled, e.ms = e.ms, max(0.0, float(new.pop(0)))
                e.detail += f" (reported; polled {polled:.0f} ms)"
                events.append(e)
        return events

    def expire(self, t: float, *, all_: bool = False) -> list[Event]:
        """Held takeovers no report came for within ``wait_reported`` (or all, at the end):
        released with the polled duration."""
        due = [e for e in self._pending if all_ or t - e.t >= self._wait]
        for e in due:
            self._pending.remove(e)
            e.detail += " (polled)"
        return due
