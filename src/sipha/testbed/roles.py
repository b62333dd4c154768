"""Following the dispatchers' roles: role changes and takeover times, from polled samples.

Pure: observations (node, role, run time) and faults come in, :class:`Event` records go out.
A *takeover* is a node becoming active after another one was; its duration runs from the
moment the old active was lost (the fault that hit it, or the first poll that found it not
active, whichever came first) to the first poll that found the new one active.  Its
resolution is the poll interval (the runner polls every 100 ms).
"""

from __future__ import annotations

from collections.abc import Iterable

from sipha.report.model import Event

__all__ = ["LOSING_ACTIONS", "RoleTracker"]

# Fault actions that take the address away from an active dispatcher.
LOSING_ACTIONS = frozenset({"kill", "stop", "restart"})


class RoleTracker:
    __slots__ = ("_fault_at", "_lost_at", "active", "roles")

    def __init__(self, nodes: Iterable[str]) -> None:
        self.roles: dict[str, str] = {n: "unknown" for n in nodes}
        self.active: str | None = None
        self._lost_at: float | None = None  # first poll that found the active not active
        self._fault_at: float | None = None  # a fault that hit the active (never a blip)

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
                events.append(Event(t=t, kind="takeover", node=node,
                                    detail=f"{self.active} -> {node}",
                                    ms=max(0.0, (t - lost) * 1000.0)))
            self.active = node
            self._lost_at = self._fault_at = None
        return events
