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

Answered dialogs are recognised by their To tag: it starts with :data:`ANSWER_TAG_PREFIX`, so
any server of the cluster knows an in-dialog request is for an answered call, even when the
Request-URI names a dead sibling. Per call this costs one dict entry, two loop timers (2xx
retransmission on UDP, hold) and two store writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sipha.server.dialplan import Action, ActionKind
from sipha.server.local import Local, destination
from sipha.server.status import NodeStats
from sipha.sip.address import parse_name_addr
from sipha.sip.dialog import Dialog
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import ServerInviteTransaction, ServerTransaction, TimerConfig
from sipha.store import DialogRecord, Store
from sipha.transport import Peer
from sipha.transport.transactions import TransactionLayer

log = logging.getLogger(__name__)

__all__ = ["ANSWER_TAG_PREFIX", "AnsweredCall", "AnsweringService"]

ANSWER_TAG_PREFIX = "sphA"
Spawn = Callable[[Coroutine[Any, Any, Any]], object]

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"


def _sdp(host: str, session: int) -> bytes:
    return (
        f"v=0\r\no=sipha {session} {session} IN IP4 {host}\r\ns=sipha\r\nc=IN IP4 {host}\r\n"
        "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


class AnsweredCall:
    """One call this server answers (or rings, or is about to answer)."""

    __slots__ = (
        "action",
        "answered",
        "hold_handle",
        "invite",
        "local_tag",
        "ok",
        "peer",
        "retransmit_handle",
        "retransmit_interval",
        "retransmit_until",
        "ring_handle",
        "txn",
    )

    def __init__(
        self, invite: Request, txn: ServerInviteTransaction, peer: Peer, tag: str, action: Action
    ) -> None:
        self.invite = invite
        self.txn = txn
        self.peer = peer
        self.local_tag = tag
        self.action = action
        self.answered = False
        self.ok: Response | None = None
        self.retransmit_handle: asyncio.TimerHandle | None = None
        self.retransmit_interval = 0.0
        self.retransmit_until = 0.0
        self.hold_handle: asyncio.TimerHandle | None = None
        self.ring_handle: asyncio.TimerHandle | None = None

    def stop_timers(self) -> None:
        for handle in (self.retransmit_handle, self.hold_handle, self.ring_handle):
            if handle is not None:
                handle.cancel()
        self.retransmit_handle = self.hold_handle = self.ring_handle = None


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
        self.timers = timers
        self.dialog_ttl = dialog_ttl
        self.respond = respond
        self.calls: dict[str, AnsweredCall] = {}
        self.unanswered = 0  # calls in `calls` still ringing (no final response yet)
        self._by_txn: dict[ServerInviteTransaction, AnsweredCall] = {}

    @property
    def active(self) -> int:
        """Calls answered and not yet ended (the "active calls" the test bed graphs)."""
        return len(self.calls) - self.unanswered

    @property
    def ringing(self) -> int:
        return self.unanswered

    # -- new INVITE -------------------------------------------------------------------------
    def invite(
        self, request: Request, txn: ServerInviteTransaction, peer: Peer, action: Action
    ) -> None:
        tag = f"{ANSWER_TAG_PREFIX}{self.local.unique()}"
        if action.kind is ActionKind.REJECT:
            self.stats.calls_rejected += 1
            self.respond(txn, build_response(request, action.status, to_tag=tag))
            return
        call_id = request.call_id
        if call_id in self.calls:
            # A new INVITE (new branch) for a Call-ID we hold: a glare/loop; refuse it.
            self.respond(txn, build_response(request, 482, to_tag=tag))
            return
        call = AnsweredCall(request, txn, peer, tag, action)
        self.calls[call_id] = call
        self.unanswered += 1
        self._by_txn[txn] = call
        contact = self.local.contact(
            request.uri.user if hasattr(request.uri, "user") else None, peer.transport
        )
        self.respond(
            txn,
            build_response(
                request, 180, to_tag=tag, headers=[("Contact", contact)], copy_record_route=True
            ),
        )
        loop = self.layer.loop
        if action.kind is ActionKind.RING:
            call.ring_handle = loop.call_later(action.ring_timeout, self._ring_timeout, call)
        elif action.ring_time > 0:
            call.ring_handle = loop.call_later(action.ring_time, self._start_answer, call)
        else:
            self._start_answer(call)

    def _ring_timeout(self, call: AnsweredCall) -> None:
        call.ring_handle = None
        self._forget(call)
        self.respond(call.txn, build_response(call.invite, 480, to_tag=call.local_tag))

    def _start_answer(self, call: AnsweredCall) -> None:
        call.ring_handle = None
        self.spawn(self._answer(call))

    async def _answer(self, call: AnsweredCall) -> None:
        invite = call.invite
        now = time.time()
        record = DialogRecord(
            call_id=invite.call_id,
            local_tag=call.local_tag,
            remote_tag=invite.from_tag or "",
            owner=self.server_id,
            created_at=now,
            expires_at=now + call.action.max_hold,
        )
        try:
            if self.dialog_ttl > 0:
                await self.store.put_dialog(invite.call_id, record, self.dialog_ttl)
        except Exception:
            # Availability first: the call still works, only its failover is lost.
            self.stats.store_errors += 1
            log.exception("put_dialog failed for %s", invite.call_id)
        if self.calls.get(invite.call_id) is not call:
            # CANCELled while we were writing: the caller got 487; drop the record again.
            await self._delete(invite.call_id)
            return
        transport = call.peer.transport
        user = getattr(invite.uri, "user", None)
        ok = build_response(
            invite,
            200,
            to_tag=call.local_tag,
            headers=[
                ("Contact", self.local.contact(user, transport)),
                ("Allow", _ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            body=_sdp(self.local.address(transport)[0], int(now)),
            copy_record_route=True,
        )
        call.ok = ok
        call.answered = True
        self.unanswered -= 1
        self.stats.calls_answered += 1
        self.respond(call.txn, ok)
        loop = self.layer.loop
        if transport == "udp":
            # RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx until the ACK.
            call.retransmit_interval = self.timers.t1
            call.retransmit_until = loop.time() + self.timers.timeout
            call.retransmit_handle = loop.call_later(self.timers.t1, self._retransmit, call)
        call.hold_handle = loop.call_later(call.action.max_hold, self._hold_expired, call)

    def _retransmit(self, call: AnsweredCall) -> None:
        call.retransmit_handle = None
        loop = self.layer.loop
        if call.ok is None or self.calls.get(call.invite.call_id) is not call:
            return
        if loop.time() >= call.retransmit_until:
            # §13.3.1.4: no ACK within 64*T1: end the dialog with a BYE.
            self._send_bye(call)
            return
        self.layer.send_stateless(call.ok, call.peer, retransmission=True)
        call.retransmit_interval = min(2 * call.retransmit_interval, self.timers.t2)
        call.retransmit_handle = loop.call_later(call.retransmit_interval, self._retransmit, call)

    def _hold_expired(self, call: AnsweredCall) -> None:
        call.hold_handle = None
        self.stats.calls_ended_by_hold += 1
        self._send_bye(call)

    def _send_bye(self, call: AnsweredCall) -> None:
        self._forget(call)
        invite = call.invite
        try:
            dialog = Dialog.from_uas_request(invite, call.local_tag)
        except SipParseError:
            # A Contact or Record-Route we cannot route a BYE by: only forget the call.
            self.spawn(self._delete(invite.call_id))
            return
        peer = call.peer
        if dialog.route_set:
            first = destination(_uri_of(dialog.route_set[0]), peer.transport)
            if first is not None:
                peer = first
        branch = f"z9hG4bK{self.local.unique()}"
        bye = dialog.create_bye(via=self.local.via(peer.transport, branch))
        self.layer.send_request(bye, peer, owner=call)
        self.spawn(self._delete(invite.call_id))

    async def _delete(self, call_id: str) -> bool:
        try:
            return await self.store.delete_dialog(call_id)
        except Exception:
            self.stats.store_errors += 1
            log.exception("delete_dialog failed for %s", call_id)
            return False

    def _forget(self, call: AnsweredCall) -> None:
        call.stop_timers()
        if self.calls.get(call.invite.call_id) is call:
            del self.calls[call.invite.call_id]
            if not call.answered:
                self.unanswered -= 1
        self._by_txn.pop(call.txn, None)

    # -- CANCEL, ACK and in-dialog requests -------------------------------------------------
    def cancel(self, invite_txn: ServerInviteTransaction) -> bool:
        """CANCEL of a call we ring: 487 to the INVITE (the caller answers 200 to the CANCEL).
        Returns False when the INVITE is not ours or already answered."""
        call = self._by_txn.get(invite_txn)
        if call is None or call.answered:
            return False
        self._forget(call)
        self.respond(invite_txn, build_response(call.invite, 487, to_tag=call.local_tag))
        return True

    def on_ack(self, ack: Request) -> None:
        call = self.calls.get(ack.call_id)
        if call is not None and call.retransmit_handle is not None:
            call.retransmit_handle.cancel()
            call.retransmit_handle = None
        if call is not None:
            call.ok = None  # the 2xx is confirmed; nothing to retransmit any more
            if ack.to_tag == call.local_tag:
                # Our random tag came back: the peer gets what we send (not a spoofed source).
                self.layer.budget.verify(call.peer.host)

    def in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        """A request (not ACK) inside an answered dialog, on this or a dead sibling server."""
        call = self.calls.get(request.call_id)
        method = request.method
        if method == "BYE":
            if call is not None and call.local_tag == request.to_tag:
                self._forget(call)
                if not call.answered:  # BYE in the early dialog (§15): end the INVITE too
                    self.respond(call.txn, build_response(call.invite, 487, to_tag=call.local_tag))
                self.respond(txn, build_response(request, 200))
                self.spawn(self._delete(request.call_id))
                return
            self.spawn(self._bye_from_store(request, txn))
            return
        if call is not None or method == "OPTIONS":
            self._answer_in_dialog(request, txn)
            return
        self.spawn(self._in_dialog_from_store(request, txn))

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
                    body=_sdp(host, int(time.time())),
                ),
            )
            return
        self.respond(txn, build_response(request, 200, headers=[("Allow", _ALLOW)]))

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
        for call in list(self.calls.values()):
            call.stop_timers()


def _uri_of(route: str) -> object:
    return parse_name_addr(route).uri
