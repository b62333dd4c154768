"""The dispatcher's decisions: where each message goes. Pure: messages, sources and ``now`` in,
`Send` actions out; no sockets, no clock.

Theory of operation
-------------------
`Router` is the one entry point the service feeds; each job lives in its own module:

* `registry`: the servers, the lookups by address, destination and token, the scheduler;
* `supervision`: health (`health`) fed by probes (`probing`), passive failures and operators;
* `routing`: in-dialog requests (by our Record-Route, else Call-ID affinity) and responses
  back along their Via;
* `forwarder`: initial requests as transactions with failover, driven by the table in
  `forwarding` (phase x input -> actions, next phase), with deadlines owned by
  `transactions.TransactionTable`.

*Requests* are classified here: an initial request (no To tag), a CANCEL or an ACK looks up an
open transaction by the caller's key (`branch_digest_input`); a match goes to the forwarder
as a retransmission, CANCEL or ACK; an unmatched CANCEL gets 481 (RFC 3261 §16.10); an
unmatched initial request opens a transaction; everything else routes in-dialog.

*Responses* carry our signed Via on top: probes' (token ``p``) go to supervision, answers to
our own ACK/BYE/CANCEL (token ``g``) are absorbed, a phone's answers to what a server sent it
(token ``o``) go back statelessly, the rest find their transaction by branch, or route back
statelessly.

`edge` makes the dispatcher the phones' edge proxy: a phone's own Route naming us is spent
here, a REGISTER gets our Path, and requests a server sends through that Path go to the
phone's flow (`flows`).

What goes back to a UDP caller that never proved it receives what we relay (a spoofable
source) passes the amplification budget (`amplification`): repeats of a final response or of a
server's request are bounded per caller host.

Load accounting (pending INVITEs + confirmed dialogs per server) lives in `DispatcherState`.
"""

from __future__ import annotations

import random

from sipha.sip import Request, Response
from sipha.sip.branch import branch_digest_input, read_branch_token
from sipha.transport import Peer

from .amplification import AmplificationGuard, request_key, response_key
from .context import RouterSettings, RouterStats, Send, Stamp, reply
from .edge import ALWAYS_ALIVE, Edge
from .flows import FlowView
from .forwarder import Forwarder
from .health import HealthChange, HealthInput, HealthState
from .probing import Prober
from .protection import RateLimiter, counted
from .registry import ServerRegistry
from .routing import DialogRouting
from .schedulers import Scheduler
from .servers import ServerSpec
from .state import DialogPhase, DispatcherState, Server
from .supervision import Supervision

__all__ = ["Router", "RouterSettings", "RouterStats", "Send"]


class Router:
    """Routing decisions for one dispatcher (see the module docstring)."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        advertise: tuple[str, int],
        secret: bytes,
        rng: random.Random | None = None,
        state: DispatcherState | None = None,
        flows: FlowView = ALWAYS_ALIVE,
    ) -> None:
        self.settings = settings
        self.state = state or DispatcherState()
        self.secret = secret
        self.stats = RouterStats()
        stamp = self._stamp = Stamp(advertise, secret)
        self.registry = ServerRegistry(
            self.state, stamp, algorithm=settings.algorithm, options=settings.algorithm_options,
            health=settings.health, rng=rng or random.Random(),
        )
        self._outbox: list[Send] = []  # sends decided outside a request, timer or response
        self.edge = Edge(stamp, settings, self.stats, flows)
        self.routing = DialogRouting(self.registry, stamp, settings, self.stats, self.edge)
        self.forwarder = Forwarder(
            self.registry, self.routing, stamp, settings, self.stats, failed=self._failed
        )
        self.supervision = Supervision(
            self.registry, stamp, probe=settings.probe, health=settings.health,
            server_down=self._server_down,
        )
        self._limiter = (
            RateLimiter(settings.rate_limit, settings.rate_window) if settings.rate_limit else None
        )
        self.guard = (
            AmplificationGuard(settings.reflection_rate, settings.reflection_burst)
            if settings.reflection_rate > 0 else None
        )

    @property
    def listen_ports(self) -> dict[str, int]:
        """Our port per transport where it is not the advertised one (set by the service
        before servers are added): Record-Routes for TLS and TCP name those listeners."""
        return self._stamp.listen_ports

    @listen_ports.setter
    def listen_ports(self, ports: dict[str, int]) -> None:
        self._stamp.listen_ports = dict(ports)

    def _failed(self, server: Server, now: float, cause: str) -> None:
        self.supervision.observe(server, HealthInput.PASSIVE_FAILURE, now, cause)

    def _server_down(self, server: Server, now: float) -> None:
        self.forwarder.server_down(server, now, self._outbox)

    # -- servers (the API and the service call these) ----------------------------------------
    @property
    def scheduler(self) -> Scheduler:
        return self.registry.scheduler

    @property
    def prober(self) -> Prober:
        return self.supervision.prober

    @property
    def changes(self) -> list[HealthChange]:
        """Health changes since the service last drained them (it logs each)."""
        return self.supervision.changes

    def servers(self) -> list[Server]:
        return self.registry.servers()

    def find(self, key: str) -> Server | None:
        """A server by uid (decimal), id, or HOST:PORT."""
        return self.registry.find(key)

    def add_server(self, spec: ServerSpec) -> Server:
        """Raises ValueError for a duplicate id."""
        server = self.registry.add(spec)
        self.supervision.probe_at = 0.0
        return server

    def remove_server(self, server: Server) -> None:
        """Stop using a server. Its dialogs keep routing to it until they end."""
        self.supervision.forget(server)
        self.registry.remove(server)

    def set_weight(self, server: Server, weight: int) -> None:
        """Raises ValueError for a negative weight."""
        self.registry.set_weight(server, weight)

    def set_state(self, server: Server, state: HealthState, now: float, cause: str) -> None:
        self.supervision.set_state(server, state, now, cause)

    def adopt_replicated_health(self, now: float) -> None:
        """After an HA promotion: health as replicated (see `Supervision`), and replicated
        transactions resume their failovers from now on (see `Forwarder.listening_since`)."""
        self.supervision.adopt_replicated_health(now)
        self.forwarder.listening_since = now

    def open_transactions(self) -> int:
        return len(self.state.transactions)

    def affinity_entries(self) -> int:
        """Call-IDs in the affinity table (dialogs and their linger)."""
        return len(self.state.dialogs)

    def dialog_phase(self, call_id: str) -> DialogPhase | None:
        d = self.state.dialogs.get(call_id)
        return None if d is None else d.phase

    # -- timers -----------------------------------------------------------------------------
    def next_deadline(self) -> float:
        """The earliest time `on_timer` has work to do."""
        if self._outbox:
            return 0.0
        soonest = self.state.transactions.next_deadline()
        probe = self.supervision.probe_at
        return probe if probe < soonest else soonest

    def silence_due(self, now: float) -> bool:
        """True when `on_timer(now)` would judge a server by its silence: a failover deadline
        or a probe timeout has come. The service reads what already arrived first."""
        return self.state.transactions.next_deadline() <= now or self.supervision.silence_due(now)

    def on_timer(self, now: float) -> list[Send]:
        out: list[Send] = self._outbox
        self._outbox = []
        self.forwarder.on_timer(now, out)
        self.supervision.tick(now, out)
        self.state.sweep(now)
        out += self._outbox
        self._outbox = []
        return out

    # -- requests ---------------------------------------------------------------------------
    def on_request(self, msg: Request, source: Peer, now: float) -> list[Send]:
        """Route one request. Raises SipParseError for a malformed one (the transport answers
        400, or 483 when Max-Forwards is exhausted)."""
        self.stats.requests += 1
        method = msg.method
        to = msg.get("to")
        initial = to is None or "tag" not in to or msg.to_tag is None
        limiter = self._limiter
        from_server = (source.host, source.port) in self.registry.by_addr
        if (
            limiter is not None
            and counted(method, in_dialog=not initial)
            and not from_server
            and not limiter.allow(source.host, now)
        ):
            self.stats.rate_limited += 1
            if self.settings.rate_limit_reply:
                return [reply(msg, 503, source, self.stats)]
            return []
        guard = self.guard
        if (
            guard is not None and not from_server and source.transport == "udp"
            and not guard.verified(source.host)
        ):
            if method == "ACK":
                guard.acked(msg.call_id, msg.to_tag, source.host, now)  # a 2xx's tag: verified
            else:
                guard.asked(msg.via.branch, now)  # an answer is owed to each copy it sends
        route = msg.get("route")
        if route is not None:
            if from_server:
                if route.startswith("<sip:ds"):
                    # A server sends through our Path or Record-Route towards a phone: the
                    # CANCEL and the INVITE included, statelessly (edge.py).
                    return self.routing.in_dialog(msg, source, now)
            else:
                self.edge.strip_own_routes(msg)
        if initial or method == "ACK" or method == "CANCEL":
            key = branch_digest_input(msg)
            p = self.state.transactions.get(key)
            if p is not None:
                return self.forwarder.on_request(p, msg, source, now)
            if method == "CANCEL":
                # RFC 3261 §16.10: no matching transaction -> 481 (statelessly).
                return [reply(msg, 481, source, self.stats)]
            if initial and method != "ACK":
                return self.forwarder.new_transaction(key, msg, source, now)
        if from_server and guard is not None:
            # Towards a caller: a server's retransmitted BYE is budgeted like a response.
            branch = msg.via.branch
            cseq = msg.get("cseq") or ""
            out = self.routing.in_dialog(msg, source, now)
            if not self._unproven(out):
                return out
            return self._guarded(out, request_key(branch, method, cseq), now, None)
        return self.routing.in_dialog(msg, source, now)

    # -- responses --------------------------------------------------------------------------
    def _stale(self, msg: Response) -> bool:
        """An INVITE response with no open transaction that its caller must not see: a
        provisional once the call was answered or ended, a failure once it was answered."""
        phase = self.dialog_phase(msg.call_id)
        if msg.status < 200:
            return phase is DialogPhase.CONFIRMED or phase is DialogPhase.IDLE
        return msg.status >= 300 and phase is DialogPhase.CONFIRMED

    def on_response(self, msg: Response, source: Peer, now: float) -> list[Send]:
        """Route one response. Raises SipParseError for a malformed one (then dropped)."""
        self.stats.responses += 1
        branch = msg.via.branch
        token = read_branch_token(branch, self.secret)
        if token is None or branch is None:
            self.stats.foreign_responses += 1
            return []
        kind = token[0]
        if kind == "p":
            self.supervision.on_probe_response(branch, msg.status, now)
            return []
        if kind == "g":
            return []  # the answer to an ACK/BYE/CANCEL we wrote ourselves
        guard = self.guard
        if guard is not None and (source.host, source.port) not in self.registry.by_addr:
            guard.verify(source.host)  # a caller answered what we relayed: it exists
        msg.pop_via()
        if "via" not in msg:
            return []
        if kind == "o":
            return [self.routing.upstream(msg)]  # a phone answers a server's request
        if msg.cseq.method == "REGISTER" and 200 <= msg.status < 300:
            self.edge.flow_timer(msg)
            out = self._route_response(msg, branch, token, now)
            for send in out:
                if (send.peer.host, send.peer.port) not in self.registry.by_addr:
                    self.edge.learn_flow(msg, send.peer)  # the phone's flow (edge.py)
            return out
        return self._route_response(msg, branch, token, now)

    def _route_response(self, msg: Response, branch: str, token: str, now: float) -> list[Send]:
        guard = self.guard
        p = self.state.transactions.get(branch)
        if p is not None and msg.cseq.method == p.method:
            out = self.forwarder.on_response(p, msg, branch, now)
        else:
            if msg.method == "INVITE" and self._stale(msg):
                # A provisional overtaken by the final answer (reordered on the way, or late),
                # or the 487 of an attempt cancelled because another server answered: the
                # caller's transaction is over (RFC 6026's Accepted state; Kamailio's tm drops
                # them too). Forwarded, it reaches a caller already past it (SIPp aborts the
                # call on an unexpected 180 or 487).
                self.stats.stale_responses_dropped += 1
                return []
            if msg.method == "INVITE" and msg.status < 300:
                ghost = self.routing.learn_dialog(msg, token, now)
                if ghost:
                    return ghost
            if msg.status == 481 and msg.method == "BYE" and self.routing.bye_forked(msg.call_id):
                # The rescuer of a BYE sent to two servers: the call was ended by the other.
                self.stats.stale_responses_dropped += 1
                return []
            out = [self.routing.upstream(msg)]
        if guard is None or msg.status < 200:
            return out
        unproven = self._unproven(out)
        if not unproven:
            return out  # the usual case: callers that completed a call are verified
        if msg.status < 300 and msg.cseq.method == "INVITE":
            for host in unproven:
                guard.issued(msg.call_id, msg.to_tag, host, now)
        top = msg.via.branch  # the caller's branch, now on top
        return self._guarded(out, response_key(top, msg.status, msg.get("cseq") or ""), now, top)

    def _unproven(self, out: list[Send]) -> list[str]:
        """The hosts among ``out``'s destinations that the amplification budget applies to:
        UDP callers (not servers) that never proved they receive what we relay."""
        guard = self.guard
        assert guard is not None
        by_addr = self.registry.by_addr
        return [
            s.peer.host for s in out
            if s.peer.transport == "udp" and (s.peer.host, s.peer.port) not in by_addr
            and not guard.verified(s.peer.host)
        ]

    def _guarded(
        self, out: list[Send], identity: str, now: float, branch: str | None
    ) -> list[Send]:
        """``out`` without the repeats the amplification budget refuses (to callers only)."""
        guard = self.guard
        assert guard is not None
        by_addr = self.registry.by_addr
        kept = [
            s for s in out
            if (s.peer.host, s.peer.port) in by_addr or guard.allow(identity, s.peer, now, branch)
        ]
        if len(kept) != len(out):
            self.stats.amplification_suppressed += len(out) - len(kept)
        return kept
