"""Stateful forwarding of initial requests: `forwarding`'s table, performed.

An initial request (no To tag) that matches no open transaction opens one: the scheduler picks a
server (or the Call-ID's affinity entry names one, so the retry after a 401 lands on the server
that issued the nonce); we stamp ``received``/``rport`` on the caller's Via, decrement
Max-Forwards (483 before anything is remembered), add a Record-Route
``<sip:ds<uid>-<flow>@us;lr>`` for dialog-creating methods (a Path for a REGISTER, `edge`)
and push our Via, whose branch ``make_branch(<uid>, key#attempt)``
is signed: a forged response cannot steer us, and a retransmission gets the same branch.

Everything after that is one lookup in `forwarding.INVITE_TABLE` (or the non-INVITE table) and
the actions it names, in order; this module only knows how to perform each action. A failover
rebuilds the request from the bytes it arrived as and sends it to the next server the
scheduler picks with the tried ones excluded (``max_attempts`` in all); the abandoned server
is then marked failed (passive health).
"""

from __future__ import annotations

from collections.abc import Callable

from sipha.sip import Request, Response, parse_message
from sipha.sip.branch import make_branch
from sipha.transport import Peer

from . import messages
from .context import DIALOG_CREATING, RouterSettings, RouterStats, Send, Stamp, prepare, reply
from .forwarding import INVITE_TABLE, NON_INVITE_TABLE, AttemptPhase, Do, Input, Phase, Rule
from .forwarding import response_input as classify_response
from .registry import ServerRegistry
from .routing import DialogRouting
from .state import DialogPhase, Server
from .transactions import Pending, TransactionRemoved, TransactionSet, export

__all__ = ["Forwarder"]

_REQUEST_INPUTS = {"CANCEL": Input.CANCEL, "ACK": Input.ACK}


class Forwarder:
    """Opens transactions and drives each one by the forwarding table."""

    __slots__ = (
        "edge", "failed", "listening_since", "registry", "routing", "settings", "stamp",
        "state", "stats", "table",
    )

    def __init__(
        self,
        registry: ServerRegistry,
        routing: DialogRouting,
        stamp: Stamp,
        settings: RouterSettings,
        stats: RouterStats,
        *,
        failed: Callable[[Server, float, str], None],
    ) -> None:
        self.registry = registry
        self.routing = routing
        self.edge = routing.edge
        self.stamp = stamp
        self.settings = settings
        self.stats = stats
        self.state = registry.state
        self.table = registry.state.transactions
        self.failed = failed
        """Report a passive failure of a server (health), with its cause."""
        self.listening_since = 0.0
        """Since when we hear the servers (an HA standby: since its promotion). Silence that
        began before is no evidence against a server: its answer may have gone to the old
        active. Such a transaction still fails over, but the server is not marked failed."""

    # -- inputs -----------------------------------------------------------------------------
    def new_transaction(self, key: bytes, msg: Request, source: Peer, now: float) -> list[Send]:
        """Open a transaction for an initial request. Raises SipParseError (483) when
        Max-Forwards is exhausted: nothing is remembered then."""
        method = msg.method
        if method == "OPTIONS" and "@" not in msg.ruri and self.stamp.adv in msg.ruri:
            return [reply(msg, 200, source, self.stats)]  # a keepalive addressed to us
        call_id = msg.call_id
        d = self.state.dialogs.get(call_id)
        if d is not None and d.phase is DialogPhase.CONFIRMED:
            # An INVITE retransmitted after its transaction ended: same server, same branch.
            return self.routing.in_dialog(msg, source, now)
        if d is not None and d.server.dest.usable:
            server: Server | None = d.server
        else:
            server = self.registry.pick(msg, source, now)
        if server is None:
            self.stats.no_server += 1
            return [reply(msg, 503, source, self.stats)]
        ttl = self.settings.invite_timeout if method == "INVITE" else (
            self.settings.transaction_timeout
        )
        p = Pending(key, bytes(msg), source, call_id, method, now + ttl)
        prepare(msg, source)
        send = self._attempt(p, msg, server, now)
        self.table.open(p)
        if self.state.journal:
            self.state.deltas.append(TransactionSet(export(p, now, p.raw)))
        return [send]

    def on_request(self, p: Pending, msg: Request, source: Peer, now: float) -> list[Send]:
        """A retransmission, the CANCEL, or the ACK of a non-2xx of an open transaction.
        Raises SipParseError (483) before any change when Max-Forwards is exhausted."""
        event = _REQUEST_INPUTS.get(msg.method, Input.RETRANSMISSION)
        prepare(msg, source)
        return self._step(p, event, now, request=msg)

    def on_response(self, p: Pending, msg: Response, branch: str, now: float) -> list[Send]:
        """A response to one of the transaction's attempts (our Via already popped)."""
        idx = p.branches.index(branch)
        status = msg.status
        phases = p.attempt_phases
        if status >= 200:
            phases[idx] = AttemptPhase.COMPLETED
        elif phases[idx] is AttemptPhase.CALLING:
            phases[idx] = AttemptPhase.PROCEEDING
        event = classify_response(
            status, current=idx == p.current, failover=status in self.settings.failover_codes
        )
        return self._step(p, event, now, idx=idx, response=msg, cause=f"answered {status}")

    def on_timer(self, now: float, out: list[Send]) -> None:
        """Transactions that expired, then failover deadlines that passed (an expired
        transaction is not failed over)."""
        for p in self.table.sweep(now):
            out += self._step(p, Input.EXPIRED, now)
        timeout = self.settings.failover_timeout
        for p in self.table.due(now):
            heard = p.deadline >= self.listening_since + timeout  # sent since promotion
            out += self._step(p, Input.NO_ANSWER, now, blame=heard,
                              cause=f"no response within {timeout * 1000:g} ms")

    def server_down(self, server: Server, now: float, out: list[Send]) -> None:
        """Fail over the transactions still waiting on a server that just went down."""
        if not self.settings.dialog_aware:
            return
        for p in self.table.waiting_on(server):
            out += self._step(p, Input.SERVER_DOWN, now, cause=f"{server.id} went down")

    # -- the machine ------------------------------------------------------------------------
    def _step(
        self,
        p: Pending,
        event: Input,
        now: float,
        *,
        idx: int = -1,
        request: Request | None = None,
        response: Response | None = None,
        cause: str = "",
        blame: bool = True,
    ) -> list[Send]:
        rule: Rule = (INVITE_TABLE if p.is_invite else NON_INVITE_TABLE)[(p.phase, event)]
        key = p.key
        retry: tuple[Server, Request] | None = None
        failing = p.attempts[p.current]
        fails_over = rule.otherwise is not None
        if fails_over:
            retry = self._next_server(p, now)
            if retry is None and rule.otherwise is not None:
                rule = rule.otherwise
        out: list[Send] = []
        for do in rule.actions:
            if do is Do.FORWARD_UPSTREAM:
                assert response is not None
                out.append(self.routing.upstream(response))
            elif do is Do.WIN:
                p.current = idx
            elif do is Do.FORWARD_TO_CURRENT:
                assert request is not None
                out.append(self._to_current(p, request))
            elif do is Do.CANCEL_OTHERS:
                for i in range(len(p.attempts)):
                    if i != p.current and p.attempt_phases[i] is AttemptPhase.PROCEEDING:
                        out.append(self._cancel(p, i))
            elif do is Do.CANCEL_THIS:
                if p.attempt_phases[idx] is AttemptPhase.PROCEEDING:
                    out.append(self._cancel(p, idx))
            elif do is Do.ACK_THIS:
                assert response is not None
                out.append(self._ack(p, response, idx))
            elif do is Do.END_GHOST:
                assert response is not None
                out += self.routing.end_ghost(response, p.attempts[idx])
            elif do is Do.FAIL_OVER:
                assert retry is not None
                server, msg = retry
                prepare(msg, p.source)
                self.stats.failovers += 1
                out.append(self._attempt(p, msg, server, now))
            elif do is Do.CONFIRM_DIALOG:
                self.state.dialog_confirmed(
                    p.call_id, p.attempts[p.current], now, self.settings.dialog_timeout
                )
            elif do is Do.END_DIALOG:
                self.state.dialog_idle(p.call_id, now, self.settings.linger)
        self._enter(p, rule.next_phase, now)
        state = self.state
        if state.journal:  # the standby follows every step (HA replication)
            state.deltas.append(
                TransactionRemoved(key) if p.phase is Phase.TERMINATED
                else TransactionSet(export(p, now, b""))
            )
        if fails_over and blame and self.settings.dialog_aware:
            # Passive health, after the retry (found or not): a server going down fails over
            # what still waits on it, and this transaction has already moved on.
            self.failed(failing, now, cause)
        return out

    def _enter(self, p: Pending, phase: Phase, now: float) -> None:
        old = p.phase
        p.phase = phase
        if phase is not Phase.CALLING:
            p.deadline = 0.0
        if phase is Phase.TERMINATED:
            self.table.drop(p)
        elif phase is Phase.COMPLETED and old is not Phase.COMPLETED:
            if len(p.attempts) == 1:
                self.table.drop(p)  # no abandoned attempt can answer late
            else:
                self.table.keep_until(p, now + self.settings.linger)

    # -- actions ----------------------------------------------------------------------------
    def _attempt(self, p: Pending, msg: Request, server: Server, now: float) -> Send:
        attempt = len(p.attempts)
        branch = make_branch(server.token, p.key + b"#%d" % attempt, self.stamp.secret)
        self._edge_headers(msg, server, p.source)
        msg.push_via(self.stamp.via(server.peer.transport, branch))
        p.attempts.append(server)
        p.branches.append(branch)
        p.attempt_phases.append(AttemptPhase.CALLING)
        p.current = attempt
        table = self.table
        table.add_branch(p, branch)
        table.arm(p, now + self.settings.failover_timeout)
        if p.is_invite:
            self.state.dialog_early(p.call_id, server, now, self.settings.invite_timeout)
        else:
            self.state.dialog_touch(p.call_id, server, now, self.settings.linger)
        self.stats.forwarded_requests += 1
        return Send(bytes(msg), server.peer)

    def _edge_headers(self, msg: Request, server: Server, source: Peer) -> None:
        """Our Record-Route on a dialog-forming request, our Path on a REGISTER (edge.py):
        both carry the caller's flow."""
        method = msg.method
        if method in DIALOG_CREATING:
            self.stamp.record_route(msg, server.token, server.peer.transport, source,
                                    self.edge.flow_of(source))
        elif method == "REGISTER":
            self.edge.add_path(msg, source, server.peer.transport)

    def _next_server(self, p: Pending, now: float) -> tuple[Server, Request] | None:
        """The server to fail over to and the request rebuilt for it, or None."""
        if not self.settings.dialog_aware or len(p.attempts) >= self.settings.max_attempts:
            return None
        msg = parse_message(p.raw)
        assert isinstance(msg, Request)
        exclude = frozenset(s.id for s in p.attempts)
        server = self.registry.pick(msg, p.source, now, exclude)
        return None if server is None else (server, msg)

    def _to_current(self, p: Pending, msg: Request) -> Send:
        idx = p.current
        server = p.attempts[idx]
        method = msg.method
        if method == "CANCEL":
            if p.attempt_phases[idx] is not AttemptPhase.COMPLETED:
                p.attempt_phases[idx] = AttemptPhase.CANCELLED  # by the caller's CANCEL
        elif method != "ACK":
            self._edge_headers(msg, server, p.source)
        msg.push_via(self.stamp.via(server.peer.transport, p.branches[idx]))
        self.stats.forwarded_requests += 1
        return Send(bytes(msg), server.peer)

    def _cancel(self, p: Pending, idx: int) -> Send:
        request = parse_message(p.raw)
        assert isinstance(request, Request)
        server = p.attempts[idx]
        p.attempt_phases[idx] = AttemptPhase.CANCELLED
        self.stats.cancels_sent += 1
        via = self.stamp.via(server.peer.transport, p.branches[idx])
        return Send(messages.cancel_for(request, via), server.peer)

    def _ack(self, p: Pending, response: Response, idx: int) -> Send:
        request = parse_message(p.raw)
        assert isinstance(request, Request)
        server = p.attempts[idx]
        via = self.stamp.via(server.peer.transport, p.branches[idx])
        return Send(messages.ack_for_non2xx(request, response, via), server.peer)

