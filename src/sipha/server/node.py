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

Every relay and delivery is authorised first (:mod:`sipha.server.policy`): a trusted peer, a
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
from sipha.server.local import Local, hop_spec
from sipha.server.policy import (
    Decision,
    Source,
    Target,
    TrustedPeers,
    Verdict,
    decide,
    originating_addresses,
)
from sipha.server.proxy import Branch, Proxy
from sipha.server.registrar import (
    AuthVerdict,
    Registrar,
    accept_once,
    aor_of,
    contact_uri_of,
    verdict_of,
)
from sipha.server.status import NodeStats
from sipha.sip.auth import Algorithm, DigestVerifier, NonceAuthority
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
from sipha.transport.resolver import Resolver
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["ServerNode"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE"
USERS_CHECK_PERIOD = 5.0  # auth = "auto": how stale "the store has users" may be
Spawn = Callable[[Coroutine[Any, Any, Any]], object]


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


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

    # -- authorization (policy.py) --------------------------------------------------------------
    def _source(self, request: Request, peer: Peer) -> Source:
        """Who is asking: a trusted peer, the cluster itself, or anybody (module docstring)."""
        if self.local.is_alias_address(peer.host, peer.port) or self.local.is_own_socket(peer):
            # Relayed by the cluster's edge: judge the client it stamped in the next Via.
            addresses = originating_addresses(request)
            if addresses is None:
                return Source.CLUSTER
        else:
            addresses = (peer.host,)
        if all(a in self.trusted for a in addresses):
            return Source.TRUSTED
        return Source.OUTSIDE

    def _auth_enabled(self, method: str) -> bool:
        mode = self.cfg.auth
        if mode == "off" or method not in self.auth_methods:
            return False
        return mode == "on" or self.users_exist or not self._users_known

    def _from_local(self, request: Request) -> bool:
        uri = request.from_.uri
        host = getattr(uri, "host", "")
        return bool(host) and (host.lower() == self.cfg.domain.lower() or self.local.is_me(uri))

    def _decide(self, request: Request, peer: Peer, target: Target, dialog: bool) -> Decision:
        return decide(
            source=self._source(request, peer),
            target=target,
            dialog=dialog,
            auth=self._auth_enabled(request.method),
            from_local=self._from_local(request),
        )

    def _authorized(
        self,
        request: Request,
        txn: ServerTransaction,
        peer: Peer,
        target: Target,
        dialog: bool,
        then: Callable[[], None],
    ) -> None:
        """Run ``then`` once the policy allows the request; else 407 or 403 (counted)."""
        decision = self._decide(request, peer, target, dialog)
        if decision.verdict is Verdict.ALLOW:
            then()
        elif decision.verdict is Verdict.CHALLENGE:
            self.spawn(self._digest(request, txn, then))
        else:
            self.stats.refused(decision.cause.value)
            log.info(
                "%s %s from %s refused: %s",
                request.method,
                request.ruri[:80],
                peer,
                decision.cause.value,
            )
            self.respond(
                txn,
                build_response(
                    request, 403, "Forbidden (relaying denied)", to_tag=self.local.unique()
                ),
            )

    def _refresh_users(self) -> None:
        # auth = "auto": authentication is on once the store has users. Asked every few
        # seconds at most, in a task: a request never waits for it.
        if self.cfg.auth != "auto" or self.users_exist:
            return
        now = time.monotonic()
        if now - self._users_checked < USERS_CHECK_PERIOD:
            return
        self._users_checked = now
        self.spawn(self._check_users())

    async def _check_users(self) -> None:
        try:
            self.users_exist = await self.store.count_users() > 0
            self._users_known = True
        except Exception as exc:
            # A background check, not a request: logged, not counted in store_errors. The
            # answer stays unknown (authentication on) and is asked again later.
            log.warning("cannot tell whether the store has users (auth = auto): %r", exc)

    async def refresh_users(self) -> None:
        """Learn now whether the store has users (``auth = "auto"``); called at start."""
        if self.cfg.auth == "auto":
            self._users_checked = time.monotonic()
            await self._check_users()

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

    async def _digest(
        self, request: Request, txn: ServerTransaction, then: Callable[[], None]
    ) -> None:
        """RFC 3261 §22.3: a proxy challenges with 407 / Proxy-Authorization. The user who
        authenticates must be the one the From names (or may use it: ``identities``), the
        digest uri must be the Request-URI, and the nonce-count is accepted once in the
        cluster; then ``then`` runs."""
        now = time.time()
        salt = os.urandom(8)
        creds = self.registrar.credentials(request, "proxy-authorization")
        if creds is None:
            self.respond(txn, self.registrar.challenge(request, now, salt, proxy=True))
            return
        try:
            claimed = aor_of(request.from_.uri, self.cfg.domain).partition("@")[0]
        except SipParseError:
            claimed = ""
        allowed = {creds.username, *self.cfg.identities.get(creds.username, ())}
        if claimed not in allowed:
            self._auth_failed(request, txn, "from_mismatch")
            return
        try:
            user = await self.store.get_user(f"{creds.username}@{self.cfg.domain}")
        except Exception as exc:
            self._store_failed(request, txn, "user lookup", exc)
            return
        if user is None:
            self._auth_failed(request, txn, "unknown_user")
            return
        algorithm = creds.algorithm
        ha1 = user.ha1_for(algorithm) if isinstance(algorithm, Algorithm) else ""
        verdict = verdict_of(
            self.verifier.authenticate(
                creds,
                method=request.method,
                ha1=ha1,
                now=now,
                body=request.body,
                request_uri=request.ruri,
            )
        )
        if verdict is AuthVerdict.OK:
            try:
                fresh = await accept_once(self.store, self.verifier, creds, now)
            except Exception as exc:
                self._store_failed(request, txn, "nonce-count check", exc)
                return
            if fresh:
                then()
                return
            self.stats.refused("replay")
            verdict = AuthVerdict.CHALLENGE
        if verdict in (AuthVerdict.CHALLENGE, AuthVerdict.STALE):
            stale = verdict is AuthVerdict.STALE
            self.respond(txn, self.registrar.challenge(request, now, salt, stale=stale, proxy=True))
            return
        self._auth_failed(request, txn, "bad_credentials")

    def _store_failed(
        self, request: Request, txn: ServerTransaction, what: str, exc: Exception
    ) -> None:
        # Unauthenticated is never "let through": 503 with Retry-After when the store says
        # it is briefly unavailable (a Sentinel election), else 500.
        self.stats.store_errors += 1
        if isinstance(exc, StoreUnavailable):
            log.warning("%s failed, store unavailable: %s", what, exc.reason)
            retry = [("Retry-After", str(exc.retry_after))]
            response = build_response(request, 503, to_tag=self.local.unique(), headers=retry)
        else:
            log.error("%s failed: %r", what, exc)
            response = build_response(request, 500, to_tag=self.local.unique())
        self.respond(txn, response)

    def _auth_failed(self, request: Request, txn: ServerTransaction, cause: str) -> None:
        self.stats.auth_failures += 1
        self.stats.refused(cause)
        self.respond(txn, build_response(request, 403, to_tag=self.local.unique()))

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
