"""Who may have a request served: the server's authorization (:mod:`sipha.server.policy`) and
digest authentication (RFC 3261 §22), and the registrar's store calls.

Mixed into :class:`sipha.server.node.ServerNode`, whose attributes these are: the node
dispatches, this decides whether a request is let through (at once, after a 407 challenge
answered with credentials the store confirms, or never: 403), and answers REGISTERs. Store
failures are never "let through": 503 with Retry-After when the store says it is briefly
unavailable (a Sentinel election), else 500.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipha.server.config import ServerConfig
from sipha.server.local import Local
from sipha.server.policy import (
    Decision,
    Source,
    Target,
    TrustedPeers,
    Verdict,
    decide,
    originating_addresses,
)
from sipha.server.registrar import AuthVerdict, Registrar, accept_once, aor_of, verdict_of
from sipha.server.status import NodeStats
from sipha.sip.auth import Algorithm, DigestVerifier
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import ServerTransaction
from sipha.store import Store, StoreUnavailable
from sipha.transport import Peer

log = logging.getLogger("sipha.server.node")  # one logger for the node's decisions

__all__ = ["USERS_CHECK_PERIOD", "Gatekeeper"]

USERS_CHECK_PERIOD = 5.0  # auth = "auto": how stale "the store has users" may be


class Gatekeeper:
    """Authorization, digest and REGISTER handling of a server node (mixed in)."""

    cfg: ServerConfig
    store: Store
    stats: NodeStats
    local: Local
    trusted: TrustedPeers
    auth_methods: frozenset[str]
    users_exist: bool
    _users_known: bool
    _users_checked: float
    registrar: Registrar
    verifier: DigestVerifier
    spawn: Callable[[Coroutine[Any, Any, Any]], object]
    respond: Callable[[ServerTransaction, Response], None]

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

    # -- REGISTER ------------------------------------------------------------------------------
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
