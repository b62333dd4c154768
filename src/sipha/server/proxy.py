"""The stateful proxy's asyncio service (RFC 3261 §16): the core's actions on the wire.

Theory of operation
-------------------
The decisions are elsewhere: :mod:`sipha.server.routing` (checks, Route processing, the next
hop), :mod:`sipha.server.proxy_core` (the calls, their branches, Timer C) and
:mod:`sipha.server.proxy_rules` (the tables). :class:`Proxy` feeds the core the node's inputs
with the loop's time, carries out the actions it returns (respond, start client transactions,
look bindings up in the store, resolve names) and feeds their results back; it arms one loop
timer at the core's :meth:`~sipha.server.proxy_core.ProxyCore.next_deadline`, as the
transaction layer does.

Location lookups are answered on the caller's thread when the store can (SQLite's
``get_bindings_now``): no task for the common case of a callee with bindings; an empty or
failed answer takes the asynchronous path, which tells 404 from 480. Next hops named by host
names are resolved by the asynchronous, bounded :class:`~sipha.transport.resolver.Resolver`:
a name that does not resolve is answered 503 (408 when the DNS does not answer in time).

Stateless parts: the ACK of a 2xx is forwarded with a branch derived from its own (§16.11); a
response no transaction matches is forwarded by its next Via only when its top Via carries a
branch we signed (§16.7 step 3 / §18.2.2); and a 2xx for a caller whose server transaction has
its final already (a late 2xx from a cancelled branch) goes the same way (§16.7 step 5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipha.server.local import HopSpec, Local
from sipha.server.proxy_core import (
    Action,
    Branch,
    ForwardUpstream,
    LookUp,
    ProxyCore,
    Resolve,
    Respond,
    SendBranch,
    SendCancel,
    Target,
)
from sipha.server.routing import Routing, loop_hash
from sipha.server.status import NodeStats
from sipha.sip.branch import branch_digest_input, make_branch, read_branch_token
from sipha.sip.message import Request, Response
from sipha.sip.transaction import (
    ServerInviteState,
    ServerInviteTransaction,
    ServerTransaction,
    TerminationReason,
)
from sipha.store import Store
from sipha.transport import Peer, response_destination
from sipha.transport.resolver import ResolveError, Resolver
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["Branch", "Proxy", "loop_hash"]

Spawn = Callable[[Coroutine[Any, Any, Any]], object]
_FINAL_SENT = (ServerInviteState.COMPLETED, ServerInviteState.CONFIRMED)


class Proxy(Routing):
    """Stateful forwarding over a :class:`TransactionLayer`."""

    def __init__(
        self,
        *,
        layer: TransactionLayer,
        store: Store,
        local: Local,
        stats: NodeStats,
        spawn: Spawn,
        respond: Callable[[ServerTransaction, Response], None],
        domain: str,
        record_route: bool,
        timer_c: float,
        secret: bytes,
        resolver: Resolver,
    ) -> None:
        super().__init__(local, secret)
        self.layer = layer
        self.store = store
        self.stats = stats
        self.spawn = spawn
        self.respond = respond
        self.resolver = resolver
        self.core = ProxyCore(local=local, stats=stats, domain=domain,
                              record_route=record_route, timer_c=timer_c, secret=secret,
                              cached_hop=self.cached_hop)
        self.pending = self.core.pending
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._clock: Callable[[], float] | None = None

    def _now(self) -> float:
        """The loop's time, which the transaction layer runs on too."""
        clock = self._clock
        if clock is None:
            clock = self._clock = self.layer.loop.time
        return clock()

    # -- next hops ------------------------------------------------------------------------------
    async def resolve(self, spec: HopSpec, transport: str) -> Peer:
        """The next hop for ``spec``; raises ResolveError (with the status to answer)."""
        host, port, param = spec
        peers = await self.resolver.resolve(host, port, param, transport)
        if not peers:
            raise ResolveError(f"no address for {host[:60]}")
        return peers[0]

    def cached_hop(self, spec: HopSpec, transport: str) -> Peer | None:
        """The next hop at once when no DNS is needed (IP literals), else None."""
        host, port, param = spec
        return self.resolver.cached(host, port, param or transport)

    # -- inputs from the node -------------------------------------------------------------------
    def to_user(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        """Proxy a request to the subscriber its Request-URI names (location service)."""
        self._run(self.core.to_user(request, txn, peer, self._now()))

    def to_next_hop(
        self, request: Request, txn: ServerTransaction, peer: Peer, spec: HopSpec
    ) -> None:
        """Forward by Route / Request-URI (in-dialog requests, pre-loaded routes)."""
        self._run(self.core.to_next_hop(request, txn, peer, spec, self._now()))

    def on_response(self, response: Response, branch: Branch) -> None:
        self._run(self.core.on_response(branch, response, self._now()))

    def on_terminated(self, branch: Branch, reason: TerminationReason) -> None:
        self._run(self.core.on_branch_ended(branch, reason, self._now()))

    def cancel(self, invite_txn: ServerInviteTransaction) -> bool:
        """Cancel the call in ``invite_txn`` (§16.10); False if it is not ours."""
        actions = self.core.on_cancel(invite_txn, self._now())
        if actions is None:
            return False
        self._run(actions)
        return True

    # -- carrying out the core's actions ----------------------------------------------------------
    def _run(self, actions: list[Action]) -> None:
        for a in actions:
            t = type(a)
            if t is SendBranch:
                b = a.branch  # type: ignore[union-attr]
                self.layer.send_request(b.request, b.peer, owner=b)
            elif t is ForwardUpstream:
                self._forward_up(a.txn, a.response)  # type: ignore[union-attr]
            elif t is Respond:
                self.respond(a.txn, a.response)  # type: ignore[union-attr]
            elif t is SendCancel:
                self.layer.send_request(a.cancel, a.peer, owner=None)  # type: ignore[union-attr]
            elif t is LookUp:
                self._look_up(a)  # type: ignore[arg-type]
            elif t is Resolve:
                self.spawn(self._resolve(a))  # type: ignore[arg-type]
        if self._handle is None:
            # An armed timer is never late: every Timer C armed since is later (the same
            # duration from a later now), and restarts only move deadlines later.
            self._rearm()

    def _forward_up(self, txn: ServerTransaction, response: Response) -> None:
        if (
            isinstance(txn, ServerInviteTransaction)
            and txn.state in _FINAL_SENT
            and 200 <= response.status < 300
        ):
            # §16.7 step 5: the server transaction cannot take it any more; forwarded
            # statelessly, so the caller can ACK and BYE a call it no longer wants.
            self.stats.response(response.status)
            self.layer.send_stateless(response, response_destination(response))
            return
        self.respond(txn, response)

    def _look_up(self, a: LookUp) -> None:
        try:
            bindings = self.store.get_bindings_now(a.aor, time.time())
        except Exception:
            bindings = None  # the async path reports it (and answers 500)
        if bindings:
            self._run(self.core.on_bindings(a.call, bindings, user_exists=True,
                                            now=self._now()))
        else:
            self.spawn(self._locate(a))

    async def _locate(self, a: LookUp) -> None:
        try:
            bindings = await self.store.get_bindings(a.aor, time.time())
            exists = bool(bindings) or await self.store.get_user(a.aor) is not None
        except Exception:
            self.stats.store_errors += 1
            log.exception("location lookup failed for %s", a.aor)
            self._run(self.core.on_not_located(a.call, 500, self._now()))
            return
        self._run(self.core.on_bindings(a.call, bindings, user_exists=exists,
                                        now=self._now()))

    async def _resolve(self, a: Resolve) -> None:
        targets: list[Target] = list(a.targets)
        status = 480
        transport = a.call.peer.transport
        for ruri, spec, path in a.unresolved:
            try:
                targets.append((ruri, await self.resolve(spec, transport), path))
            except ResolveError as exc:
                self.stats.refused("dns_failure")
                log.info("next hop %s not resolved: %s", spec[0][:80], exc.reason)
                if ruri is None:
                    status = exc.status  # a Route or Request-URI: the DNS's own status
        now = self._now()
        if targets:
            self._run(self.core.on_resolved(a.call, targets, now))
        else:
            self._run(self.core.on_not_located(a.call, status, now))

    # -- the one timer (Timer C of every call) ----------------------------------------------------
    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline is None:
            return
        armed = self._armed_at
        if armed is not None and armed <= deadline:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = deadline
        self._handle = self.layer.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        try:
            self._run(self.core.on_timer(self._now()))
        except Exception:  # a bug must not stop Timer C of every call
            log.exception("proxy timers failed")
            self._rearm()

    # -- stateless parts --------------------------------------------------------------------------
    def forward_ack(self, ack: Request, hop: Peer) -> None:
        """Forward the ACK of a 2xx statelessly (§16.11 branch derived from its own).
        Dropped (and counted) when it has no hop left or would come back to us."""
        mf = ack.max_forwards
        if mf is not None and mf <= 0:
            self.stats.refused("max_forwards")
            return
        if self.local.is_own_socket(hop) or self.looped(ack):
            self.stats.refused("loop")
            return
        # Deterministic (§16.11: the same for a retransmission), signed with the loop mark.
        branch = make_branch(loop_hash(ack), branch_digest_input(ack), self.secret)
        ack.decrement_max_forwards()
        ack.push_via(self.local.via(hop.transport, branch))
        self.layer.send_stateless(ack, hop)

    async def forward_ack_to(self, ack: Request, spec: HopSpec, transport: str) -> None:
        """:meth:`forward_ack` once the next hop's name is resolved (an ACK has no response:
        a name that does not resolve drops it)."""
        try:
            hop = await self.resolve(spec, transport)
        except ResolveError:
            self.stats.refused("dns_failure")
            return
        self.forward_ack(ack, hop)

    def forward_stray(self, response: Response) -> None:
        """A response no transaction matched (a late 2xx retransmission): if the top Via is
        ours, with a branch we signed, remove it and forward by the next Via (§16.7 step 3 /
        §18.2.2). Anything else is dropped and counted: a forged Via of ours would make us
        reflect the response to whoever the next Via names."""
        via = response.via
        if not self.local.sent_by_is_me(*via.sent_by):
            self.stats.refused("stray_response")
            return
        if read_branch_token(via.branch, self.secret) is None:
            self.stats.refused("forged_response")
            return
        response.pop_via()
        if not response.has("via"):
            return
        self.layer.send_stateless(response, response_destination(response))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.core.close()
