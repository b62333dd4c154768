"""The SIP server node: the transaction user that dispatches every request by method and dialog.

Theory of operation
-------------------
:class:`ServerNode` sits on a :class:`~sipha.transport.transactions.TransactionLayer`.

* First our own Route values are removed (§16.4; a strict router's Request-URI undone). A
  Route left over (a pre-loaded route, the rest of a dialog's route set) is a *relay* to a
  foreign host, and so is a request with a To tag whose Request-URI is not us.
* A request with a To tag and no Route left: a To tag of ours
  (:data:`~sipha.server.answering.ANSWER_TAG_PREFIX`) makes it a request of a call we answered
  (here or on a dead sibling: the shared store decides); a Request-URI naming us (a UA that
  ignored Record-Route) sends it to the callee's registered contacts.
* A request without a To tag: REGISTER goes to the registrar; OPTIONS for the server is
  answered 200 (the dispatcher's health probe); an INVITE whose Request-URI user matches the
  dialplan is answered by the answering service; every other request goes to the proxy, which
  finds the user's contacts (a *delivery* to a local user).
* CANCEL is answered 200 when it matches a live INVITE (§9.2) and cancels that INVITE.

Every relay and delivery is authorised first (:mod:`sipha.server.gatekeeper` applies
:mod:`sipha.server.policy`): a trusted peer, a
dialog token in a Route of ours, or digest credentials of the local user the From names
(407 / Proxy-Authorization, the nonce-count accepted once in the cluster through the store);
a relay that nobody authorised is refused with 403 and counted. Requests the server answers
itself (REGISTER, OPTIONS, the dialplan, calls it answered) forward nothing.

This is a single-domain server: the Request-URI of a new request names a user of ``domain``
whatever its host part, so a request reaching us through a load balancer (whose address is in
the Request-URI) is served, not relayed back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipha.server.answering import ANSWER_TAG_PREFIX, AnsweredCall, AnsweringService
from sipha.server.config import ServerConfig, parse_alias
from sipha.server.dialplan import Dialplan
from sipha.server.gatekeeper import USERS_CHECK_PERIOD, Gatekeeper
from sipha.server.local import Local, hop_spec
from sipha.server.policy import (
    Source,
    Target,
    TrustedPeers,
    Verdict,
)
from sipha.server.proxy import Branch, Proxy
from sipha.server.registrar import (
    Registrar,
    contact_uri_of,
)
from sipha.server.status import NodeStats
from sipha.server.tasks import Tasks
from sipha.sip.auth import DigestVerifier, NonceAuthority
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import (
    AnyTransaction,
    ClientTransaction,
    ServerInviteTransaction,
    ServerTransaction,
    TerminationReason,
    TransactionUsageError,
)
from sipha.sip.uri import parse_uri
from sipha.store import Store
from sipha.transport import Peer, SipEndpoint
from sipha.transport.resolver import Resolver
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["ServerNode"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE"
Spawn = Callable[[Coroutine[Any, Any, Any]], object]


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class ServerNode(Gatekeeper, Tasks):
    """Dispatch of one server process. Create, :meth:`attach` to a started endpoint."""

    def __init__(
        self, cfg: ServerConfig, store: Store, *, nonce_key: bytes, spawn: Spawn | None = None
    ) -> None:
        """``nonce_key`` signs digest nonces and stateless branches: the same on every server
        of the cluster (see :func:`sipha.server.service.cluster_nonce_key`)."""
        self.cfg = cfg
        self.store = store
        self.nonce_key = nonce_key
        self.stats = NodeStats()
        self.dialplan = Dialplan(cfg.answer)
        self.layer = TransactionLayer(self, timers=cfg.timer_config)
        verifier = DigestVerifier(
            NonceAuthority(nonce_key, cfg.nonce_lifetime), cfg.effective_realm
        )
        self.verifier = verifier
        self.registrar = Registrar(
            store, verifier, cfg.registrar, cfg.domain, auth_int=cfg.auth_int_register
        )
        self.trusted = TrustedPeers(cfg.trusted)
        self.auth_methods = frozenset(cfg.auth_methods)
        # "auto" learns from the store whether it has users; until it knows (the store
        # unreachable at start), authentication is on: fail closed, never open.
        self.users_exist = cfg.auth == "on"
        self._users_known = cfg.auth != "auto"
        self._users_checked = -USERS_CHECK_PERIOD
        self.resolver = Resolver(
            [_host_port(text) for text in cfg.dns_servers], timeout=cfg.dns_timeout
        )
        self.server_id = cfg.server_id or f"server-{os.getpid()}"
        self.draining = False
        self.idle = asyncio.Event()  # set once draining and every request has its answer
        self._inflight = 0  # spawned request-handling tasks not finished
        self._spawn_task = spawn
        self._tasks: set[asyncio.Task[Any]] = set()
        self.endpoint: SipEndpoint | None = None
        self.local: Local
        self.answering: AnsweringService
        self.proxy: Proxy

    def attach(self, endpoint: SipEndpoint) -> None:
        """Bind to a started endpoint (its bound ports name us in Via and Record-Route)."""
        self.endpoint = endpoint
        self.layer.bind(endpoint.send)
        aliases = [parse_alias(text) for text in self.cfg.aliases]
        self.local = Local(endpoint.bound, self.cfg.domain, self.cfg.advertise, aliases=aliases)
        for host, _ in aliases:
            # The dispatchers budget what they relay per caller (dispatcher/amplification.py):
            # budgeting them here would put every caller behind them in one bucket, and a
            # spoofed flood would starve the legitimate calls' retransmissions.
            self.layer.budget.verify(host)
        common = {
            "layer": self.layer,
            "store": self.store,
            "local": self.local,
            "stats": self.stats,
            "spawn": self.spawn,
            "respond": self.respond,
        }
        self.answering = AnsweringService(
            **common,  # type: ignore[arg-type]
            server_id=self.server_id,
            timers=self.cfg.timer_config,
            # 0: answered calls are not written to the store (the paper's servers did not share
            # call state); a BYE reaching another server then gets 481.
            dialog_ttl=self.cfg.dialog_ttl if self.cfg.share_dialogs else 0.0,
        )
        self.proxy = Proxy(
            **common,  # type: ignore[arg-type]
            domain=self.cfg.domain,
            record_route=self.cfg.record_route,
            timer_c=self.cfg.timers.timer_c,
            secret=self.nonce_key,
            resolver=self.resolver,
        )

    # -- plumbing -----------------------------------------------------------------------------
    def respond(self, txn: ServerTransaction, response: Response) -> None:
        self.stats.response(response.status)
        try:
            self.layer.respond(txn, response)
        except TransactionUsageError as exc:
            # A late answer racing a final one (e.g. a CANCEL's 487 after a 200): drop it.
            log.debug("response dropped: %s", exc)
        if self.draining:
            self._check_idle()

    def gauges(self) -> dict[str, int]:
        pending = sum(1 for t in self.proxy.pending if isinstance(t, ServerInviteTransaction))
        active = self.answering.active
        return {
            "active_calls": active + pending,
            "active_dialogs": active,
            "ringing": self.answering.ringing,
            "proxy_pending": len(self.proxy.pending),
            "transactions": len(self.layer),
            "tcp_connections": 0 if self.endpoint is None else self.endpoint.tcp_connections,
            "draining": int(self.draining),
        }

    # -- TransactionUser ----------------------------------------------------------------------
    def on_request(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        method = request.method
        self.stats.request(method)
        # Read now what later steps (some in tasks) rely on: a malformed From/To/URI raises
        # SipParseError here, where the endpoint turns it into a 400.
        request.from_  # noqa: B018
        request.uri  # noqa: B018
        request.max_forwards  # noqa: B018
        if method == "CANCEL":
            self._cancel(request, txn)
            return
        self._refresh_users()
        dialog = self.proxy.strip_own_routes(request)
        to_tag = request.to_tag
        answered = to_tag is not None and to_tag.startswith(ANSWER_TAG_PREFIX)
        if request.has("route") or (
            to_tag is not None and not answered and not self.local.is_me(request.uri)
        ):
            # A pre-loaded route, the rest of a route set, or a Request-URI elsewhere.
            self._authorized(
                request, txn, peer, Target.FOREIGN, dialog, lambda: self._relay(request, txn, peer)
            )
            return
        if answered:
            self.answering.in_dialog(request, txn)
            return
        if to_tag is not None:  # the UA ignored our Record-Route: for a local user's contact
            self._deliver(request, txn, peer, dialog)
            return
        if method == "REGISTER":
            if self.draining:
                self._unavailable(request, txn)
                return
            self.spawn(self._register(request, txn, peer))
            return
        user = getattr(request.uri, "user", None)
        action = self.dialplan.match(user)
        if method == "OPTIONS" and (user is None or action is not None):
            self.respond(
                txn,
                build_response(
                    request, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")]
                ),
            )
            return
        if method == "INVITE":
            if self.draining:
                self._unavailable(request, txn)
                return
            # auth_invite: every INVITE, answered ones too, from anyone but a trusted peer.
            if self.cfg.auth_invite and self._source(request, peer) is Source.OUTSIDE:
                self.spawn(
                    self._digest(
                        request, txn, lambda: self._route_invite(request, txn, peer, authed=True)
                    )
                )
                return
            self._route_invite(request, txn, peer)
            return
        if action is not None:
            self.respond(txn, build_response(request, 405, headers=[("Allow", ALLOW)]))
            return
        self._deliver(request, txn, peer, dialog)

    def on_ack(self, request: Request, peer: Peer) -> None:
        self.stats.request("ACK")
        try:
            dialog = self.proxy.strip_own_routes(request)
            to_tag = request.to_tag
        except SipParseError:
            self.stats.refused("malformed")
            return
        if not request.has("route") and to_tag is not None and to_tag.startswith(ANSWER_TAG_PREFIX):
            self.answering.on_ack(request)
            return
        for_me = self.proxy.is_for_me(request)
        target = Target.LOCAL if for_me else Target.FOREIGN
        # An ACK cannot be challenged (RFC 3261 §22.1): one nobody authorised is dropped.
        if self._decide(request, peer, target, dialog).verdict is not Verdict.ALLOW:
            self.stats.refused("ack_unauthorised")
            return
        if for_me:
            self.spawn(self._ack_to_user(request, peer))
            return
        spec = self.proxy.next_hop_spec(request)
        if spec is None:
            return
        hop = self.proxy.cached_hop(spec, peer.transport)
        if hop is not None:
            self.proxy.forward_ack(request, hop)
        else:
            self.spawn(self.proxy.forward_ack_to(request, spec, peer.transport))

    def on_response(self, response: Response, txn: ClientTransaction, owner: Any) -> None:
        if isinstance(owner, Branch):
            self.proxy.on_response(response, owner)
        # Responses to our own BYEs (AnsweredCall) and CANCELs (None) need no action.

    def on_stray_response(self, response: Response, peer: Peer) -> None:
        self.proxy.forward_stray(response)

    def on_terminated(self, txn: AnyTransaction, reason: TerminationReason, owner: Any) -> None:
        if self.draining:
            self._check_idle()
        if isinstance(owner, Branch):
            self.proxy.on_terminated(owner, reason)
        elif isinstance(owner, AnsweredCall):
            pass
        elif reason is TerminationReason.TRANSPORT_ERROR and txn in self.proxy.pending:
            self.proxy.pending.pop(txn)

    # -- dispatch helpers -----------------------------------------------------------------------
    def _relay(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        status = self.proxy.check(request)
        if status is not None:
            self.stats.refused("loop" if status == 482 else "max_forwards")
            self.respond(txn, build_response(request, status, to_tag=self.local.unique()))
            return
        spec = self.proxy.next_hop_spec(request)
        if spec is None:
            self._to_user(request, txn, peer)
            return
        self.proxy.to_next_hop(request, txn, peer, spec)

    def _deliver(self, request: Request, txn: ServerTransaction, peer: Peer, dialog: bool) -> None:
        self._authorized(
            request, txn, peer, Target.LOCAL, dialog, lambda: self._to_user(request, txn, peer)
        )

    def _to_user(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        status = self.proxy.check(request)
        if status is not None:
            self.stats.refused("loop" if status == 482 else "max_forwards")
            self.respond(txn, build_response(request, status, to_tag=self.local.unique()))
            return
        self.proxy.to_user(request, txn, peer)

    def _route_invite(
        self, request: Request, txn: ServerTransaction, peer: Peer, *, authed: bool = False
    ) -> None:
        action = self.dialplan.match(getattr(request.uri, "user", None))
        if action is not None:
            assert isinstance(txn, ServerInviteTransaction)
            self.answering.invite(request, txn, peer, action)
        elif authed:  # the From user authenticated already (auth_invite)
            self._to_user(request, txn, peer)
        else:
            self._deliver(request, txn, peer, False)

    def _cancel(self, request: Request, txn: ServerTransaction) -> None:
        invite_txn = self.layer.table.find_cancelled(request)
        if invite_txn is None:
            self.respond(txn, build_response(request, 481))
            return
        # §9.2: 200 to the CANCEL; the INVITE then ends with 487 (from us or downstream).
        self.respond(txn, build_response(request, 200))
        if not self.answering.cancel(invite_txn):
            self.proxy.cancel(invite_txn)

    def _unavailable(self, request: Request, txn: ServerTransaction) -> None:
        self.respond(
            txn,
            build_response(
                request, 503, to_tag=self.local.unique(), headers=[("Retry-After", "5")]
            ),
        )

    # -- async paths ----------------------------------------------------------------------------
    async def _ack_to_user(self, ack: Request, peer: Peer) -> None:
        user = getattr(ack.uri, "user", None)
        if not user:
            return
        bindings = await self.store.get_bindings(f"{user}@{self.cfg.domain}", time.time())
        for b in bindings[:1]:
            contact = contact_uri_of(b.raw)
            spec = hop_spec(parse_uri(contact))
            if spec is not None:
                ack.set_uri(contact)
                await self.proxy.forward_ack_to(ack, spec, peer.transport)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self.layer.close()
        self.answering.close()
        self.proxy.close()
