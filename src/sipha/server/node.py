"""The SIP server node: the transaction user that dispatches every request by method and dialog.

Theory of operation
-------------------
:class:`ServerNode` sits on a :class:`~sipha.transport.transactions.TransactionLayer`.

* A request with a To tag belongs to a dialog: after removing our own Route values (§16.4) it
  is forwarded along the remaining Route set; with none left, a To tag of ours
  (:data:`~sipha.server.answering.ANSWER_TAG_PREFIX`) makes it a request of a call we answered
  (here or on a dead sibling: the shared store decides); otherwise it goes to its Request-URI,
  or, when that names us (a UA that ignored Record-Route), to the callee's registered contact.
* A request without a To tag: REGISTER goes to the registrar; OPTIONS for the server is
  answered 200 (the dispatcher's health probe); an INVITE whose Request-URI user matches the
  dialplan is answered by the answering service; every other request goes to the proxy, which
  finds the user's contacts. A pre-loaded Route not naming us is followed.
* CANCEL is answered 200 when it matches a live INVITE (§9.2) and cancels that INVITE.

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
from sipha.server.config import ServerConfig
from sipha.server.dialplan import Dialplan
from sipha.server.local import Local, destination
from sipha.server.proxy import Branch, Proxy
from sipha.server.registrar import AuthVerdict, Registrar, aor_of, contact_uri_of
from sipha.server.status import NodeStats
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
from sipha.store import Store, StoreUnavailable
from sipha.transport import Peer, SipEndpoint
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["ServerNode"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE"
Spawn = Callable[[Coroutine[Any, Any, Any]], object]


class ServerNode:
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
        self.registrar = Registrar(store, verifier, cfg.registrar, cfg.domain)
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
        self.local = Local(endpoint.bound, self.cfg.domain, self.cfg.advertise)
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
        )

    # -- plumbing -----------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> object:
        """Run ``coro`` as a task whose exceptions are logged, never propagated."""
        self._inflight += 1  # counted from now: the task may not start before a drain check
        guarded = self._guard(coro)
        if self._spawn_task is not None:
            return self._spawn_task(guarded)
        task = asyncio.get_running_loop().create_task(guarded)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("request handling task failed")
        finally:
            self._inflight -= 1
            self._check_idle()

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
        to_tag = request.to_tag
        if to_tag is not None:
            self._in_dialog(request, to_tag, txn, peer)
            return
        if request.has("route"):
            self.proxy.strip_own_routes(request)
            if request.has("route"):  # a pre-loaded route to somebody else (§16.4)
                self._forward(request, txn, peer)
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
            if self.cfg.auth_invite:
                self.spawn(self._authorize_invite(request, txn, peer))
                return
            self._route_invite(request, txn, peer)
            return
        if action is not None:
            self.respond(txn, build_response(request, 405, headers=[("Allow", ALLOW)]))
            return
        self._to_user(request, txn, peer)

    def on_ack(self, request: Request, peer: Peer) -> None:
        self.stats.request("ACK")
        self.proxy.strip_own_routes(request)
        if request.has("route"):
            hop = self.proxy.next_hop(request, peer.transport)
            if hop is not None:
                self.proxy.forward_ack(request, hop)
            return
        to_tag = request.to_tag
        if to_tag is not None and to_tag.startswith(ANSWER_TAG_PREFIX):
            self.answering.on_ack(request)
            return
        hop = self.proxy.next_hop(request, peer.transport)
        if hop is not None:
            self.proxy.forward_ack(request, hop)
        else:
            self.spawn(self._ack_to_user(request, peer))

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
    def _in_dialog(self, request: Request, to_tag: str, txn: ServerTransaction, peer: Peer) -> None:
        self.proxy.strip_own_routes(request)
        if request.has("route"):
            self._forward(request, txn, peer)
        elif to_tag.startswith(ANSWER_TAG_PREFIX):
            self.answering.in_dialog(request, txn)
        elif self.local.is_me(request.uri):
            self._to_user(request, txn, peer)  # the UA ignored our Record-Route
        else:
            self._forward(request, txn, peer)

    def _forward(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        status = self.proxy.check(request)
        if status is not None:
            self.respond(txn, build_response(request, status, to_tag=self.local.unique()))
            return
        hop = self.proxy.next_hop(request, peer.transport)
        if hop is None:
            self._to_user(request, txn, peer)
            return
        self.proxy.to_next_hop(request, txn, peer, hop)

    def _to_user(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        status = self.proxy.check(request)
        if status is not None:
            self.respond(txn, build_response(request, status, to_tag=self.local.unique()))
            return
        self.proxy.to_user(request, txn, peer)

    def _route_invite(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        action = self.dialplan.match(getattr(request.uri, "user", None))
        if action is not None:
            assert isinstance(txn, ServerInviteTransaction)
            self.answering.invite(request, txn, peer, action)
        else:
            self._to_user(request, txn, peer)

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
    async def _register(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        try:
            response = await self.registrar.handle(
                request, time.time(), os.urandom(8), received=str(peer)
            )
        except SipParseError as err:
            response = build_response(request, 400, f"Bad Request ({err.reason[:60]})")
        except StoreUnavailable as err:
            # Not stored durably (no master, or no replica confirmed it): never a 200; the UA
            # retries after the store's estimate (RFC 3261 §21.5.4).
            self.stats.store_errors += 1
            log.warning("REGISTER refused, store unavailable: %s", err.reason)
            retry = [("Retry-After", str(err.retry_after))]
            response = build_response(request, 503, to_tag=self.local.unique(), headers=retry)
        except Exception:
            self.stats.store_errors += 1
            log.exception("REGISTER failed")
            response = build_response(request, 500)
        status = response.status
        if status == 200 and request.has("contact"):
            if request.expires == 0 or response.get("contact") is None:
                self.stats.unregistrations += 1
            else:
                self.stats.registrations += 1
        elif status == 403:
            self.stats.auth_failures += 1
        self.respond(txn, response)

    async def _authorize_invite(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        """RFC 3261 §22.3: a proxy challenges with 407 / Proxy-Authorization."""
        now = time.time()
        creds = self.registrar.credentials(request, "proxy-authorization")
        salt = os.urandom(8)
        if creds is None:
            self.respond(txn, self.registrar.challenge(request, now, salt, proxy=True))
            return
        try:
            aor = aor_of(request.from_.uri, self.cfg.domain)
        except SipParseError:
            self.respond(txn, build_response(request, 403, to_tag=self.local.unique()))
            return
        user = await self.store.get_user(aor)
        verdict = self.registrar.judge(request, creds, user, now)
        if verdict is AuthVerdict.OK:
            self._route_invite(request, txn, peer)
            return
        if verdict in (AuthVerdict.CHALLENGE, AuthVerdict.STALE):
            stale = verdict is AuthVerdict.STALE
            self.respond(txn, self.registrar.challenge(request, now, salt, stale=stale, proxy=True))
            return
        self.stats.auth_failures += 1
        self.respond(txn, build_response(request, 403, to_tag=self.local.unique()))

    async def _ack_to_user(self, ack: Request, peer: Peer) -> None:
        user = getattr(ack.uri, "user", None)
        if not user:
            return
        bindings = await self.store.get_bindings(f"{user}@{self.cfg.domain}", time.time())
        for b in bindings[:1]:
            contact = contact_uri_of(b.raw)
            hop = destination(parse_uri(contact), peer.transport)
            if hop is not None:
                ack.set_uri(contact)
                self.proxy.forward_ack(ack, hop)

    # -- lifecycle ------------------------------------------------------------------------------
    def start_draining(self) -> None:
        """Refuse new calls and registrations (503); :attr:`idle` is set once every request
        received has had its final response."""
        self.draining = True
        self._check_idle()

    def _check_idle(self) -> None:
        # Transactions that only wait out Timer J/K/L absorb retransmissions; what must finish
        # is every request still without a final answer: proxied ones, ringing calls, and
        # requests waiting on the store.
        if (
            self.draining
            and not self.proxy.pending
            and not self.answering.unanswered
            and not self._inflight
        ):
            self.idle.set()

    async def wait_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self.layer.close()
        self.answering.close()
        self.proxy.close()
