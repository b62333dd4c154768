"""Answering services: the server as the UAS of calls its dialplan answers (like Asterisk).

Theory of operation
-------------------
``answer``: 180 at once, then (after ``ring_time``) a 200 with an SDP. Before the 200 leaves,
the dialog is written to the shared store (one ``put_dialog``), so that if this server dies any
other server receiving the BYE ends the call with 200 instead of 481: it atomically takes the
record (``delete_dialog``) and answers. On UDP the 200 is retransmitted until the ACK
(RFC 3261 §13.3.1.4: T1 doubling up to T2, giving up after 64*T1). At ``max_hold`` the server
sends the BYE itself (RFC 3261 §15.1.1) along the dialog's route.

``reject CODE`` / ``busy``: the final error at once (the INVITE server transaction absorbs the
ACK). ``ring-no-answer``: 180 until the caller's CANCEL (200 to it, 487 to the INVITE,
RFC 3261 §9.2), or 480 at ``ring_timeout``.

The rules are a table (:mod:`sipha.server.answering_rules`) run by a sans-IO core
(:mod:`sipha.server.answering_core`) on the loop's time; :class:`AnsweringService` carries out
its actions (responses, 2xx retransmissions, BYEs, store writes, whose completion it feeds
back) and arms one loop timer at the core's next deadline.

Answered dialogs are recognised by their To tag: it starts with :data:`ANSWER_TAG_PREFIX`, so
any server of the cluster knows an in-dialog request is for an answered call, even when the
Request-URI names a dead sibling: there the shared store decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipha.server.answering_core import (
    ALLOW,
    ANSWER_TAG_PREFIX,
    Action,
    AnsweredCall,
    AnsweringCore,
    DeleteDialog,
    Respond,
    Retransmit,
    SendBye,
    StoreDialog,
    VerifyPeer,
    sdp,
)
from sipha.server.dialplan import Action as DialplanAction
from sipha.server.local import Local
from sipha.server.status import NodeStats
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import ServerInviteTransaction, ServerTransaction, TimerConfig
from sipha.store import DialogRecord, Store
from sipha.transport import Peer
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["ANSWER_TAG_PREFIX", "AnsweredCall", "AnsweringService"]

Spawn = Callable[[Coroutine[Any, Any, Any]], object]


class AnsweringService:
    """The UAS side of dialplan actions. ``spawn`` runs a coroutine as a task of the node."""

    def __init__(
        self,
        *,
        layer: TransactionLayer,
        store: Store,
        local: Local,
        stats: NodeStats,
        spawn: Spawn,
        server_id: str,
        timers: TimerConfig,
        dialog_ttl: float,
        respond: Callable[[ServerTransaction, Response], None],
    ) -> None:
        self.layer = layer
        self.store = store
        self.local = local
        self.stats = stats
        self.spawn = spawn
        self.server_id = server_id
        self.dialog_ttl = dialog_ttl
        self.respond = respond
        self.core = AnsweringCore(local=local, stats=stats, timers=timers)
        self.calls = self.core.calls
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    @property
    def unanswered(self) -> int:
        """Calls still ringing (no final response yet)."""
        return self.core.unanswered

    @property
    def active(self) -> int:
        """Calls answered and not yet ended (the "active calls" the test bed graphs)."""
        return len(self.calls) - self.core.unanswered

    @property
    def ringing(self) -> int:
        return self.core.unanswered

    # -- inputs from the node ---------------------------------------------------------------
    def invite(
        self, request: Request, txn: ServerInviteTransaction, peer: Peer, action: DialplanAction
    ) -> None:
        self._run(self.core.invite(request, txn, peer, action, self.layer.now(), time.time()))

    def cancel(self, invite_txn: ServerInviteTransaction) -> bool:
        """CANCEL of a call we ring: 487 to the INVITE (the caller answers 200 to the CANCEL).
        Returns False when the INVITE is not ours or already answered."""
        actions = self.core.on_cancel(invite_txn, self.layer.now())
        if actions is None:
            return False
        self._run(actions)
        return True

    def on_ack(self, ack: Request) -> None:
        self._run(self.core.on_ack(ack, self.layer.now()))

    def in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        """A request (not ACK) inside an answered dialog, on this or a dead sibling server."""
        if request.method == "BYE":
            actions = self.core.on_bye(request, txn, self.layer.now())
            if actions is None:
                self.spawn(self._bye_from_store(request, txn))
            else:
                self._run(actions)
            return
        if request.call_id in self.calls or request.method == "OPTIONS":
            self._answer_in_dialog(request, txn)
            return
        self.spawn(self._in_dialog_from_store(request, txn))

    # -- carrying out the core's actions ------------------------------------------------------
    def _run(self, actions: list[Action]) -> None:
        for a in actions:
            t = type(a)
            if t is Respond:
                self.respond(a.txn, a.response)  # type: ignore[union-attr]
            elif t is Retransmit:
                self.layer.send_stateless(a.response, a.peer,  # type: ignore[union-attr]
                                          retransmission=True)
            elif t is SendBye:
                self.layer.send_request(a.bye, a.peer, owner=a.call)  # type: ignore[union-attr]
            elif t is StoreDialog:
                self._store(a.call)  # type: ignore[union-attr]
            elif t is DeleteDialog:
                self.spawn(self._delete(a.call_id))  # type: ignore[union-attr]
            elif t is VerifyPeer:
                self.layer.budget.verify(a.host)  # type: ignore[union-attr]
        self._rearm()

    def _store(self, call: AnsweredCall) -> None:
        if self.dialog_ttl > 0:
            self.spawn(self._put_dialog(call))
        else:
            # 0: answered calls are not written to the store (the paper's servers did not
            # share call state); a BYE reaching another server then gets 481.
            self._run(self.core.on_stored(call, self.layer.now()))

    async def _put_dialog(self, call: AnsweredCall) -> None:
        invite = call.invite
        record = DialogRecord(
            call_id=invite.call_id,
            local_tag=call.local_tag,
            remote_tag=invite.from_tag or "",
            owner=self.server_id,
            created_at=call.started,
            expires_at=call.started + call.action.max_hold,
        )
        try:
            await self.store.put_dialog(invite.call_id, record, self.dialog_ttl)
        except Exception:
            # Availability first: the call still works, only its failover is lost.
            self.stats.store_errors += 1
            log.exception("put_dialog failed for %s", invite.call_id)
        self._run(self.core.on_stored(call, self.layer.now()))

    async def _delete(self, call_id: str) -> bool:
        try:
            return await self.store.delete_dialog(call_id)
        except Exception:
            self.stats.store_errors += 1
            log.exception("delete_dialog failed for %s", call_id)
            return False

    # -- the one timer ---------------------------------------------------------------------
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
            self._run(self.core.on_timer(self.layer.now()))
        except Exception:  # a bug must not stop the timers of every call
            log.exception("answering timers failed")
            self._rearm()

    # -- in-dialog requests answered without call state -----------------------------------
    def _answer_in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        if request.method == "INVITE":  # a re-INVITE: same session, same answer
            host = self.local.address("udp")[0]
            self.respond(
                txn,
                build_response(
                    request,
                    200,
                    headers=[
                        ("Contact", self.local.contact(None, "udp")),
                        ("Content-Type", "application/sdp"),
                    ],
                    body=sdp(host, int(time.time())),
                ),
            )
            return
        self.respond(txn, build_response(request, 200, headers=[("Allow", ALLOW)]))

    async def _bye_from_store(self, request: Request, txn: ServerTransaction) -> None:
        # Failover: the answering server may be dead; the shared record decides, and only one
        # server can take it (an atomic delete), so a BYE retransmitted to two servers is
        # answered 200 once and 481 otherwise.
        if await self._delete(request.call_id):
            self.stats.byes_for_other_servers += 1
            self.respond(txn, build_response(request, 200))
        else:
            self.respond(txn, build_response(request, 481))

    async def _in_dialog_from_store(self, request: Request, txn: ServerTransaction) -> None:
        try:
            record = await self.store.get_dialog(request.call_id)
        except Exception:
            self.stats.store_errors += 1
            record = None
        if record is None or record.local_tag != request.to_tag:
            self.respond(txn, build_response(request, 481))
            return
        self._answer_in_dialog(request, txn)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.core.close()
