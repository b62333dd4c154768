"""The stateful proxy (RFC 3261 §16): location lookup, forking, Record-Route, CANCEL, Timer C.

Theory of operation
-------------------
A request for a subscriber (its Request-URI names us and no dialplan rule matched) is checked
(§16.3: Max-Forwards 483, loop 482), answered 100 Trying if it is an INVITE (§16.2), then the
location service (the shared store's bindings) gives the targets: none and no such user is
404, a user without bindings 480. Each target gets a copy of the request with its Request-URI,
Max-Forwards decremented, our Record-Route (INVITE, §16.6 step 4) and our Via (step 8), sent in
a client transaction of its own (a *branch*).

Responses (§16.7): 100 is absorbed; other provisionals and every 2xx go upstream at once
(2xx retransmissions too, RFC 6026); non-2xx finals wait until every branch has one, then
the best is sent (6xx first, else the lowest class; 503 becomes 500). A branch whose client
transaction ends without a final (Timer B/F) counts as 408, one that failed in the transport
as 503. Timer C (§16.6 step 11) bounds how long an INVITE may ring: at expiry the ringing
branches are CANCELled and count as 408, so the caller gets 408 when nobody answers.

CANCEL (§16.10): 200 to it, then a CANCEL on every branch that has a provisional; the others
are cancelled when their first provisional arrives; the caller then gets 487 from downstream.

Requests inside a dialog carry our Record-Route as Route: we remove the Route values naming us
(§16.4) and forward to the next Route or, with none left, to the Request-URI (§16.6 step 7).
Nothing per dialog is remembered, so any server of the cluster can route them: our
Record-Route carries a dialog token signed with the cluster key (:mod:`sipha.server.policy`),
which is what lets the node forward them without asking for credentials. A Request-URI that a
strict router filled with our Record-Route is replaced by the last Route (§16.4). The ACK of a
2xx is forwarded statelessly with a branch derived from its own (§16.11).

A registered contact with a Path (RFC 3327) is reached through it: the path becomes the
forwarded request's Route set and its first entry the next hop.

Loop detection (§16.3 step 4, §16.6 step 8), on every forwarded request, routed ones too: our
branches are signed (:func:`~sipha.sip.branch.make_branch`) and carry a hash of the request as
received (Request-URI, remaining Route set, From tag, To tag, Call-ID, CSeq number); a request
arriving with a Via of ours carrying the same hash has looped (a spiral changes the Request-URI
or the Route set, hence the hash). No request is sent to an address we listen on. The signature
also tells our branches from forged ones: a response no transaction matches is forwarded
statelessly only when its top Via carries a branch we signed (§16.7 step 3 / §18.2.2).

Next hops named by host names are resolved by the asynchronous, bounded
:class:`~sipha.transport.resolver.Resolver`: a name that does not resolve is answered 503 (408
when the DNS does not answer in time), never a blocked loop or an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from sipha.server.local import HopSpec, Local, hop_spec
from sipha.server.policy import FTAG_PARAM, TOKEN_PARAM, dialog_token, dialog_token_valid
from sipha.server.registrar import contact_uri_of
from sipha.server.status import NodeStats
from sipha.sip.address import parse_name_addr
from sipha.sip.branch import branch_digest_input, make_branch, read_branch_token
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import (
    ClientTransaction,
    ServerInviteTransaction,
    ServerTransaction,
    TerminationReason,
    build_cancel,
)
from sipha.sip.uri import SipUri, parse_uri
from sipha.store import Binding, Store
from sipha.transport import Peer, response_destination
from sipha.transport.resolver import ResolveError, Resolver
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["Branch", "Proxy", "ProxyCall", "loop_hash"]

Spawn = Callable[[Coroutine[Any, Any, Any]], object]


def loop_hash(request: Request) -> str:
    """The loop-detection part of our branch (RFC 3261 §16.6 step 8): 10 hex characters.

    Over the request as received once our own Route values are gone: a request that comes
    back unchanged has looped; one with another Request-URI or Route set is a spiral."""
    routes = "\x00".join(request.get_all("route"))
    text = (
        f"{request.ruri}\x00{request.from_tag or ''}\x00{request.to_tag or ''}\x00"
        f"{request.call_id}\x00{request.cseq.seq}\x00{routes}"
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=5).hexdigest()


def _rank(status: int) -> tuple[int, int]:
    # §16.7 step 6: any 6xx wins, else the lowest class.
    return (0 if status >= 600 else 1, status)


class Branch:
    __slots__ = ("call", "cancel_sent", "final", "peer", "provisional", "request", "txn")

    def __init__(self, call: ProxyCall, request: Request, peer: Peer) -> None:
        self.call = call
        self.request = request
        self.peer = peer
        self.txn: ClientTransaction | None = None
        self.provisional = False
        self.final: int | None = None
        self.cancel_sent = False


class ProxyCall:
    """One request being proxied statefully: its server transaction and branches."""

    __slots__ = (
        "best",
        "best_synthetic",
        "branches",
        "cancelled",
        "done",
        "peer",
        "request",
        "server_txn",
        "timer_c_deadline",
        "timer_c_handle",
    )

    def __init__(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        self.request = request
        self.server_txn = txn
        self.peer = peer
        self.branches: list[Branch] = []
        self.best: Response | None = None
        self.best_synthetic = False
        self.cancelled = False
        self.done = False  # a final response went upstream (or the call is abandoned)
        self.timer_c_deadline = 0.0
        self.timer_c_handle: asyncio.TimerHandle | None = None


class Proxy:
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
        self.layer = layer
        self.store = store
        self.local = local
        self.stats = stats
        self.spawn = spawn
        self.respond = respond
        self.domain = domain
        self.record_route = record_route
        self.timer_c = timer_c
        self.secret = secret
        self.resolver = resolver
        self.pending: dict[ServerTransaction, ProxyCall] = {}
        self._markers = tuple(f"{h}:{p}" for h, p in local.by_transport.values())

    # -- checks (§16.3) -----------------------------------------------------------------------
    def check(self, request: Request) -> int | None:
        """483 or 482 when the request must not be forwarded, else None."""
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            return 483
        if self._looped(request):
            return 482
        return None

    def _looped(self, request: Request) -> bool:
        vias = request.get_all("via")
        if not any(m in v for v in vias for m in self._markers):
            return False  # the common case: none of our Vias, nothing to hash
        mark = loop_hash(request)
        for via in request.vias:
            if (
                self.local.sent_by_is_me(*via.sent_by)
                and read_branch_token(via.branch, self.secret) == mark
            ):
                return True
        return False

    # -- routing ------------------------------------------------------------------------------
    def strip_own_routes(self, request: Request) -> bool:
        """Remove the Route values naming us from the top (§16.4), after undoing a strict
        router's Request-URI; True when one of them carried a valid dialog token.

        Raises SipParseError for a malformed Route or Request-URI.
        """
        verified = False
        uri = request.uri
        if isinstance(uri, SipUri) and uri.lr and self.local.is_me(uri) and request.has("route"):
            # §16.4: the Request-URI holds our Record-Route (a strict router before us): the
            # real target is the last Route value.
            verified = dialog_token_valid(self.secret, request, uri)
            routes = request.get_all("route")
            request.remove_header("route")
            for value in routes[:-1]:
                request.add_header("Route", value)
            request.set_uri(str(parse_name_addr(routes[-1]).uri))
        while request.has("route"):
            top = request.routes[0].uri
            if not self.local.is_own_route(top):
                break
            if isinstance(top, SipUri) and dialog_token_valid(self.secret, request, top):
                verified = True
            request.pop_route()
        return verified

    def next_hop_spec(self, request: Request) -> HopSpec | None:
        """What to resolve for the next hop: the first Route if any, else the Request-URI
        (§16.6 step 7); None when that is us (deliver to the user) or not a SIP URI."""
        if request.has("route"):
            return hop_spec(request.routes[0].uri)
        uri = request.uri
        if self.local.is_me(uri):
            return None
        return hop_spec(uri)

    def is_for_me(self, request: Request) -> bool:
        """No Route left and a Request-URI naming us: the request is for a local user."""
        return not request.has("route") and self.local.is_me(request.uri)

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

    # -- new requests ---------------------------------------------------------------------------
    def to_user(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        """Proxy a request to the subscriber its Request-URI names (location service)."""
        call = self._new_call(request, txn, peer)
        user = getattr(request.uri, "user", None)
        # An escaped octet that is not UTF-8 decodes to a surrogate (sip.uri), which is not
        # printable: no subscriber has such a name, and the store could not even encode it.
        if not user or not user.isprintable():
            self._finish(call, 404)
            return
        aor = f"{user}@{self.domain}"
        try:
            bindings = self.store.get_bindings_now(aor, time.time())
        except Exception:
            bindings = None  # the async path reports it (and answers 500)
        if bindings:
            # Answered on this thread (SQLite): no task for the common case of a callee with
            # bindings; an empty answer takes the async path, which tells 404 from 480.
            self._route_to(call, bindings)
        else:
            self.spawn(self._locate(call, aor))

    def to_next_hop(
        self, request: Request, txn: ServerTransaction, peer: Peer, spec: HopSpec
    ) -> None:
        """Forward by Route / Request-URI (in-dialog requests, pre-loaded routes), resolving
        the next hop's name first when it is one."""
        call = self._new_call(request, txn, peer)
        hop = self.cached_hop(spec, peer.transport)
        if hop is not None:
            self._fork_checked(call, [(None, hop, ())])
        else:
            self.spawn(self._resolve_then_fork(call, spec))

    async def _resolve_then_fork(self, call: ProxyCall, spec: HopSpec) -> None:
        try:
            hop = await self.resolve(spec, call.peer.transport)
        except ResolveError as exc:
            self.stats.refused("dns_failure")
            log.info("next hop not resolved: %s", exc.reason)
            if not call.done:
                self._finish(call, exc.status)
            return
        if call.done:
            return
        if call.cancelled:
            self._finish(call, 487)
            return
        self._fork_checked(call, [(None, hop, ())])

    def _fork_checked(
        self, call: ProxyCall, targets: list[tuple[str | None, Peer, tuple[str, ...]]]
    ) -> None:
        # No node forwards to itself: an address we listen on reached by another name (a
        # DNS alias, an unlisted interface) would bounce the request until Max-Forwards.
        targets = [t for t in targets if not self.local.is_own_socket(t[1])]
        if not targets:
            self.stats.refused("loop")
            self._finish(call, 482)
            return
        self._fork(call, targets)

    def _new_call(self, request: Request, txn: ServerTransaction, peer: Peer) -> ProxyCall:
        call = ProxyCall(request, txn, peer)
        self.pending[txn] = call
        if isinstance(txn, ServerInviteTransaction):
            # §16.2: a stateful proxy sends 100 for an INVITE it will not answer at once.
            self.respond(txn, build_response(request, 100))
            loop = self.layer.loop
            call.timer_c_deadline = loop.time() + self.timer_c
            call.timer_c_handle = loop.call_at(call.timer_c_deadline, self._timer_c, call)
        return call

    async def _locate(self, call: ProxyCall, aor: str) -> None:
        try:
            bindings = await self.store.get_bindings(aor, time.time())
            user = None if bindings else await self.store.get_user(aor)
        except Exception:
            self.stats.store_errors += 1
            log.exception("location lookup failed for %s", aor)
            self._finish(call, 500)
            return
        if call.done:
            return
        if call.cancelled:
            self._finish(call, 487)
            return
        if not bindings:
            # 404: no such subscriber; 480: a subscriber with no registered contact.
            self._finish(call, 404 if user is None else 480)
            return
        self._route_to(call, bindings)

    def _route_to(self, call: ProxyCall, bindings: Sequence[Binding]) -> None:
        targets: list[tuple[str | None, Peer, tuple[str, ...]]] = []
        unresolved: list[tuple[str, HopSpec, tuple[str, ...]]] = []
        for b in bindings:
            contact = contact_uri_of(b.raw)
            try:
                # RFC 3327: a binding with a Path is reached through it, its first entry first.
                first = parse_name_addr(b.path[0]).uri if b.path else parse_uri(contact)
            except SipParseError:
                continue
            spec = hop_spec(first)
            if spec is None:
                continue
            hop = self.cached_hop(spec, call.peer.transport)
            if hop is not None:
                targets.append((contact, hop, b.path))
            else:
                unresolved.append((contact, spec, b.path))
        if unresolved:
            self.spawn(self._resolve_targets(call, targets, unresolved))
            return
        self._route_resolved(call, targets)

    async def _resolve_targets(
        self,
        call: ProxyCall,
        targets: list[tuple[str | None, Peer, tuple[str, ...]]],
        unresolved: list[tuple[str, HopSpec, tuple[str, ...]]],
    ) -> None:
        for contact, spec, path in unresolved[:8]:  # bounded: contacts come from REGISTERs
            try:
                targets.append((contact, await self.resolve(spec, call.peer.transport), path))
            except ResolveError as exc:
                self.stats.refused("dns_failure")
                log.info("contact %s not resolved: %s", contact[:80], exc.reason)
        if call.done:
            return
        if call.cancelled:
            self._finish(call, 487)
            return
        self._route_resolved(call, targets)

    def _route_resolved(
        self, call: ProxyCall, targets: list[tuple[str | None, Peer, tuple[str, ...]]]
    ) -> None:
        if not targets:
            self._finish(call, 480)
            return
        self.stats.calls_proxied += call.request.method == "INVITE"
        self._fork_checked(call, targets)

    def _fork(
        self, call: ProxyCall, targets: list[tuple[str | None, Peer, tuple[str, ...]]]
    ) -> None:
        request = call.request
        in_transport = call.peer.transport
        mark = loop_hash(request)
        rr = self.record_route and request.method == "INVITE" and request.to_tag is None
        rr_params = ""
        if rr and request.from_tag:
            # The dialog token (policy.py): later requests of this dialog present it in their
            # Route and are forwarded without credentials, by whichever server gets them.
            ftag = request.from_tag
            token = dialog_token(self.secret, request.call_id, ftag)
            rr_params = f";{FTAG_PARAM}={ftag};{TOKEN_PARAM}={token}"
        for ruri, hop, path in targets:
            fwd = request.copy()
            if ruri is not None:
                fwd.set_uri(ruri)
            fwd.decrement_max_forwards()
            for value in reversed(path):
                fwd.insert_header("Route", value)  # RFC 3327 §5: the Path as Route set
            if rr:
                # §16.6 step 4, double Record-Route when the transport changes, so each side
                # reaches us over its own transport.
                if hop.transport != in_transport:
                    fwd.add_record_route(self.local.record_route(in_transport, rr_params))
                fwd.add_record_route(self.local.record_route(hop.transport, rr_params))
            # Signed: the loop mark cannot be forged, and a stray response must show one of
            # our branches to be forwarded (forward_stray).
            branch = make_branch(mark, self.local.unique().encode(), self.secret)
            fwd.push_via(self.local.via(hop.transport, branch))
            b = Branch(call, fwd, hop)
            call.branches.append(b)
            b.txn = self.layer.send_request(fwd, hop, owner=b)

    # -- responses ------------------------------------------------------------------------------
    def on_response(self, response: Response, branch: Branch) -> None:
        status = response.status
        call = branch.call
        if status < 200:
            if status == 100:
                return  # §16.7 step 5: a 100 is not forwarded
            branch.provisional = True
            if call.cancelled and not branch.cancel_sent:
                self._cancel_branch(branch)
            call.timer_c_deadline = self.layer.loop.time() + self.timer_c  # §16.6 step 11
            if not call.done:
                self._forward_up(call, response)
            return
        if 200 <= status < 300:
            branch.final = status
            # §16.7 step 5: every 2xx goes upstream, retransmissions included.
            self._forward_up(call, response)
            if not call.done:
                call.done = True
                self._end(call)
                for other in call.branches:  # §16.7 step 10
                    if other is not branch and other.final is None:
                        self._cancel_branch(other)
            return
        if branch.final is not None:
            return
        branch.final = status
        if call.best is None or _rank(status) < _rank(call.best.status):
            call.best = response
            call.best_synthetic = False
        self._maybe_final(call)

    def on_terminated(self, branch: Branch, reason: TerminationReason) -> None:
        if branch.final is not None:
            return
        branch.final = 503 if reason is TerminationReason.TRANSPORT_ERROR else 408
        self._synthetic(branch.call, branch.final)

    def _synthetic(self, call: ProxyCall, status: int) -> None:
        if call.best is None or _rank(status) < _rank(call.best.status):
            # Made by us: answered with _finish, not forwarded (it carries no Via of ours).
            call.best = build_response(call.request, status)
            call.best_synthetic = True
        self._maybe_final(call)

    def _maybe_final(self, call: ProxyCall) -> None:
        if call.done or any(b.final is None for b in call.branches):
            return
        best = call.best
        call.done = True
        self._end(call)
        if best is None:
            self._finish(call, 408)
            return
        if call.cancelled and best.status < 600:
            self._finish(call, 487)
        elif best.status == 503:
            self._finish(call, 500)  # §16.7 step 6: 503 is not passed on
        elif call.best_synthetic:
            self._finish(call, best.status)
        else:
            self._forward_up(call, best)

    def _forward_up(self, call: ProxyCall, response: Response) -> None:
        response.pop_via()  # §16.7 step 3: remove our Via
        if not response.has("via"):
            return
        self.respond(call.server_txn, response)

    def _finish(self, call: ProxyCall, status: int) -> None:
        """Answer the call ourselves with ``status`` and forget it."""
        call.done = True
        self._end(call)
        self.respond(
            call.server_txn, build_response(call.request, status, to_tag=self.local.unique())
        )

    def _end(self, call: ProxyCall) -> None:
        self.pending.pop(call.server_txn, None)
        if call.timer_c_handle is not None:
            call.timer_c_handle.cancel()
            call.timer_c_handle = None

    def _timer_c(self, call: ProxyCall) -> None:
        call.timer_c_handle = None
        if call.done:
            return
        loop = self.layer.loop
        if loop.time() < call.timer_c_deadline:  # reset by a provisional: sleep again
            call.timer_c_handle = loop.call_at(call.timer_c_deadline, self._timer_c, call)
            return
        # §16.6 step 11: CANCEL what rings, and count every unanswered branch as 408.
        for b in call.branches:
            if b.final is None:
                self._cancel_branch(b)
                b.final = 408
        if not call.branches:
            self._finish(call, 408)
            return
        self._synthetic(call, 408)

    # -- CANCEL (§16.10) ------------------------------------------------------------------------
    def cancel(self, invite_txn: ServerInviteTransaction) -> bool:
        """Cancel the branches of the call in ``invite_txn``; False if it is not ours."""
        call = self.pending.get(invite_txn)
        if call is None:
            return False
        call.cancelled = True
        for b in call.branches:
            if b.final is None:
                self._cancel_branch(b)
        return True

    def _cancel_branch(self, branch: Branch) -> None:
        if branch.cancel_sent or branch.request.method != "INVITE":
            return
        if not branch.provisional:
            return  # §9.1: wait for a provisional before cancelling (done in on_response)
        branch.cancel_sent = True
        self.layer.send_request(build_cancel(branch.request), branch.peer, owner=None)

    # -- stateless parts --------------------------------------------------------------------------
    def forward_ack(self, ack: Request, hop: Peer) -> None:
        """Forward the ACK of a 2xx statelessly (§16.11 branch derived from its own).
        Dropped (and counted) when it has no hop left or would come back to us."""
        mf = ack.max_forwards
        if mf is not None and mf <= 0:
            self.stats.refused("max_forwards")
            return
        if self.local.is_own_socket(hop) or self._looped(ack):
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
        for call in list(self.pending.values()):
            self._end(call)

