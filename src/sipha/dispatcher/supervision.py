"""Health and probing: each server's `health` machine fed by probes, passive failures and the
operator, and the scheduler told of every change through its ``on_health_change`` hook.

A server found down (INACTIVE) still has transactions waiting on it; the forwarder's
``server_down`` callback fails them over at once (dialog-aware mode), rather than leaving a
proceeding INVITE to the caller's Timer B. A suspect is probed at once, not at the next
probe interval, so the suspicion is confirmed or cleared within one probe timeout.
"""

from __future__ import annotations

from collections.abc import Callable

from .context import Send, Stamp
from .health import HealthChange, HealthInput, HealthSettings, HealthState
from .probing import Prober, ProbeSettings
from .registry import ServerRegistry
from .state import Server, ServerStateSet

__all__ = ["Supervision"]

_OPERATOR_INPUTS = {
    HealthState.ACTIVE: HealthInput.SET_ACTIVE,
    HealthState.INACTIVE: HealthInput.SET_INACTIVE,
    HealthState.DISABLED: HealthInput.SET_DISABLED,
    HealthState.DRAINING: HealthInput.SET_DRAINING,
}


class Supervision:
    """Health of every server, and the OPTIONS probes that feed it."""

    __slots__ = ("changes", "health", "probe_at", "prober", "registry", "server_down")

    def __init__(
        self,
        registry: ServerRegistry,
        stamp: Stamp,
        *,
        probe: ProbeSettings,
        health: HealthSettings,
        server_down: Callable[[Server, float], None],
    ) -> None:
        self.registry = registry
        self.health = health
        self.server_down = server_down
        """Called when a server turns INACTIVE (the forwarder fails over what waits on it)."""
        self.changes: list[HealthChange] = []
        """Health changes since the service last drained them (it logs each)."""
        self.prober = Prober(
            probe, secret=stamp.secret, via_host=stamp.adv, from_uri=f"sip:dispatcher@{stamp.adv}"
        )
        self.probe_at = 0.0
        """When `tick` has probing or hold work; 0 = at the next timer."""

    def observe(self, server: Server, event: HealthInput, now: float, detail: str) -> None:
        """Feed one health input to ``server``'s machine and act on the change, if any."""
        change = server.health.observe(
            event, server_id=server.id, now=now, detail=detail, probing=server.probing
        )
        if change is None:
            return
        usable = change.new is HealthState.ACTIVE and not server.removed and server.resolved
        server.dest.usable = usable
        self.registry.scheduler.on_health_change(dest=server.dest, usable=usable)
        self.changes.append(change)
        state = self.registry.state
        if state.journal:
            state.deltas.append(ServerStateSet(server.uid, change.new.value))
        if change.new is HealthState.SUSPECT and server.probing:
            # Confirm or clear the suspicion now, not at the next probe interval.
            self.prober.probe_soon(server, now)
            self.probe_at = now
        if change.new is HealthState.INACTIVE:
            self.server_down(server, now)

    def set_state(self, server: Server, state: HealthState, now: float, cause: str) -> None:
        """An operator's command (API, ctl)."""
        self.observe(server, _OPERATOR_INPUTS[state], now, cause)
        self.probe_at = 0.0

    def forget(self, server: Server) -> None:
        self.prober.forget(server)

    def adopt_replicated_health(self, now: float) -> None:
        """After an HA promotion: replicated health arrives as states only, so make the
        scheduler agree with them, probe the suspects at once, and give an unprobed suspect
        the hold that returns it (its holder's clock did not travel)."""
        scheduler = self.registry.scheduler
        for server in self.registry.servers():
            usable = server.state is HealthState.ACTIVE and not server.removed and server.resolved
            if server.dest.usable != usable:
                server.dest.usable = usable
                scheduler.on_health_change(dest=server.dest, usable=usable)
            if server.state is HealthState.SUSPECT:
                if server.probing:
                    self.prober.probe_soon(server, now)
                elif server.health.hold_until is None:
                    server.health.hold_until = now + self.health.suspect_hold
        self.probe_at = now

    def silence_due(self, now: float) -> bool:
        return now >= self.probe_at and self.prober.timeout_due(now)

    def tick(self, now: float, out: list[Send]) -> None:
        """Probe timeouts, probes due, suspect holds ended."""
        if now < self.probe_at:
            return
        servers = self.registry.servers()
        # A server whose name has no address yet is not probed (`destinations`).
        failures, sends = self.prober.tick([s for s in servers if s.resolved], now)
        for result in failures:
            self.observe(result.server, HealthInput.PROBE_FAILED, now, result.detail)
        for server, data in sends:
            out.append(Send(data, server.peer))
        for server in servers:
            hold = server.health.hold_until
            if hold is not None and now >= hold:
                self.observe(server, HealthInput.HOLD_EXPIRED, now, "")
        nxt = self.prober.next_deadline()
        holds = [s.health.hold_until for s in servers if s.health.hold_until is not None]
        self.probe_at = min([nxt, now + 1.0, *holds])

    def on_probe_response(self, branch: str, status: int, now: float) -> None:
        result = self.prober.on_response(branch, status, now)
        if result is None:
            return
        server = result.server
        server.probe_rtt_ms = result.rtt_ms
        if result.rtt_ms is not None:
            old = server.dest.latency_ms
            rtt = result.rtt_ms
            server.dest.latency_ms = rtt if old is None else 0.8 * old + 0.2 * rtt
        event = HealthInput.PROBE_OK if result.ok else HealthInput.PROBE_FAILED
        self.observe(server, event, now, result.detail)
