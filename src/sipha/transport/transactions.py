"""asyncio glue for the sans-IO transaction table: one timer, sends, and a TU callback.

Theory of operation
-------------------
:class:`TransactionLayer` sits between a :class:`~sipha.transport.SipEndpoint` and a
transaction user (TU: a server node, a load generator). Every message the endpoint receives
goes through :meth:`TransactionLayer.receive`:

* a request matching a server transaction (a retransmission, the ACK of a non-2xx) is fed to
  it and absorbed or answered from its memory (RFC 3261 §17.2.3);
* an ACK matching nothing (the ACK of a 2xx, RFC 3261 §13.2.2.4) goes to ``tu.on_ack``;
* any other request gets a new server transaction and goes to ``tu.on_request``;
* a response matching a client transaction is fed to it; what the machine passes up goes to
  ``tu.on_response``; one matching nothing goes to ``tu.on_stray_response`` (RFC 3261 §18.1.2:
  a proxy forwards those statelessly, a UA drops them).

The TU answers with :meth:`respond` and starts requests with :meth:`send_request`. Actions
returned by the core are executed here: ``Send`` goes to the transaction's peer, ``PassUp`` to
the TU, ``Terminate`` to ``tu.on_terminated`` (a client transaction that timed out without a
final response is how the TU learns to synthesize a 408, RFC 3261 §16.7 step 2 / §8.1.3.1).
Timers are the table's business: after each batch the layer re-arms its single
``loop.call_at`` handle when the table's next deadline moved earlier (aioquic's pattern).

Retransmissions (what the timers send, and the TU's own 2xx retransmissions passed to
:meth:`send_stateless` with ``retransmission=True``) draw on a per-host
:class:`~sipha.transport.reflection.RetransmitBudget`, so a spoofed source that never ACKs
cannot turn the node into a reflector; a host that answered one of our requests is exempt.

The layer creates INVITE server transactions without the automatic "100 Trying": the TU knows
whether it answers at once (an answering service, no 100 needed, RFC 3261 §17.2.1) or not (a
proxy, which sends the 100 itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sipha.sip.message import Request, Response
from sipha.sip.transaction import (
    Action,
    AnyTransaction,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    PassUp,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    Terminate,
    TerminationReason,
    TimerConfig,
    TransactionTable,
    TransportFailed,
    TuResponded,
)
from sipha.sip.transaction.timers import DEFAULT_TIMERS

from .address import Peer
from .reflection import RetransmitBudget

log = logging.getLogger(__name__)

__all__ = ["TransactionLayer", "TransactionUser"]


class TransactionUser(Protocol):
    """What a TU implements to sit on a :class:`TransactionLayer`."""

    def on_request(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        """A new request (not ACK) with its fresh server transaction."""

    def on_ack(self, request: Request, peer: Peer) -> None:
        """An ACK that matched no server transaction in Completed: the ACK of a 2xx."""

    def on_response(self, response: Response, txn: ClientTransaction, owner: Any) -> None:
        """A response a client transaction passed up; ``owner`` as given to send_request."""

    def on_stray_response(self, response: Response, peer: Peer) -> None:
        """A response matching no client transaction."""

    def on_terminated(self, txn: AnyTransaction, reason: TerminationReason, owner: Any) -> None:
        """A transaction ended (client ones: TIMEOUT/TRANSPORT_ERROR mean no final came)."""


SendFunction = Callable[[bytes, Peer], None]


class TransactionLayer:
    """Runs a :class:`TransactionTable` on the running asyncio loop.

    ``send`` is usually ``SipEndpoint.send``; it is bound after construction with
    :meth:`bind` because the endpoint needs :meth:`receive` as its callback first.
    """

    __slots__ = (
        "_armed_at",
        "_handle",
        "_loop",
        "_meta",
        "_send",
        "budget",
        "table",
        "timers",
        "tu",
    )

    def __init__(
        self,
        tu: TransactionUser,
        *,
        timers: TimerConfig = DEFAULT_TIMERS,
        budget: RetransmitBudget | None = None,
    ) -> None:
        self.tu = tu
        self.budget = budget or RetransmitBudget()
        self.timers = timers
        self.table = TransactionTable()
        self._send: SendFunction | None = None
        # Per transaction: the peer its messages go to and the TU's owner object.
        self._meta: dict[AnyTransaction, tuple[Peer, Any]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, send: SendFunction) -> None:
        """Set where messages go (``endpoint.send``)."""
        self._send = send

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def now(self) -> float:
        """The clock every transaction of this layer runs on (the loop's monotonic time)."""
        return self.loop.time()

    def __len__(self) -> int:
        return len(self.table)

    def peer_of(self, txn: AnyTransaction) -> Peer | None:
        meta = self._meta.get(txn)
        return None if meta is None else meta[0]

    # -- input from the endpoint ----------------------------------------------------------------
    def receive(self, msg: Request | Response, peer: Peer) -> None:
        """The endpoint's ``on_message``: match, feed, hand to the TU.

        Raises SipParseError when a header needed for matching is malformed (the endpoint
        turns that into a 400 or a counted drop).
        """
        table = self.table
        if isinstance(msg, Request):
            stxn = table.find_server(msg)
            if stxn is not None:
                self._run(stxn, table.handle(stxn, RequestReceived(msg), self.now()))
                return
            method = msg.method
            if method == "ACK":
                self.tu.on_ack(msg, peer)
                return
            reliable = peer.transport != "udp"
            new: ServerTransaction
            if method == "INVITE":
                new = ServerInviteTransaction(
                    msg, reliable=reliable, timers=self.timers, auto_trying=False
                )
            else:
                new = ServerNonInviteTransaction(msg, reliable=reliable, timers=self.timers)
            self._meta[new] = (peer, None)
            table.add(new, self.now())  # server transactions send nothing on start
            try:
                self.tu.on_request(msg, new, peer)
            except BaseException:
                # The TU could not take the request (a malformed header it read raises
                # SipParseError, which the endpoint answers with 400): forget the
                # transaction, or it would wait in Proceeding for ever.
                table.remove(new)
                self._meta.pop(new, None)
                raise
            return
        ctxn = table.find_client(msg)
        if ctxn is None:
            self.tu.on_stray_response(msg, peer)
            return
        # It answered a branch we made up: not a spoofed address.
        self.budget.verify(peer.host)
        self._run(ctxn, table.handle(ctxn, ResponseReceived(msg), self.now()))

    def transport_failed(self, peer: Peer, data: bytes, exc: Exception) -> None:
        """The endpoint's ``on_send_error``: fail the client transactions bound to ``peer``
        (RFC 3261 §17.1.1.2, §17.1.2.2), so the TU answers at once instead of at Timer B."""
        now = self.now()
        for txn, (txn_peer, _) in list(self._meta.items()):
            if txn_peer == peer and not isinstance(
                txn, ServerInviteTransaction | ServerNonInviteTransaction
            ):
                self._run(txn, self.table.handle(txn, TransportFailed(), now))

    # -- output from the TU ---------------------------------------------------------------------
    def respond(self, txn: ServerTransaction, response: Response) -> None:
        """Send ``response`` through the server transaction ``txn``.

        A response to a transaction that already ended (e.g. a late store answer after Timer
        J) is sent statelessly to the transaction's peer. Raises TransactionUsageError when the
        transaction's state does not allow this response (a second final).
        """
        if txn.terminated:
            meta = self._meta.get(txn)
            if meta is not None:
                self.send_stateless(response, meta[0])
            return
        self._run(txn, self.table.handle(txn, TuResponded(response), self.now()))

    def send_request(self, request: Request, peer: Peer, owner: Any = None) -> ClientTransaction:
        """Start a client transaction sending ``request`` (with its top Via branch set) to
        ``peer``; responses reach ``tu.on_response`` with ``owner``. ACK is not a transaction:
        use :meth:`send_stateless`. Raises TransactionUsageError for ACK or a duplicate branch.
        """
        reliable = peer.transport != "udp"
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(request, reliable=reliable, timers=self.timers)
        else:
            txn = ClientNonInviteTransaction(request, reliable=reliable, timers=self.timers)
        self._meta[txn] = (peer, owner)
        self._run(txn, self.table.add(txn, self.now()))
        return txn

    def send_stateless(
        self, message: Request | Response, peer: Peer, *, retransmission: bool = False
    ) -> None:
        """Send outside any transaction (ACK of a 2xx, a stray 2xx forwarded, the TU's 2xx
        retransmissions: those with ``retransmission``, which the budget may skip)."""
        if retransmission and not self.budget.allow(peer.host, self.now()):
            return
        if self._send is not None:
            self._send(bytes(message), peer)

    # -- executing actions ----------------------------------------------------------------------
    def _run(
        self, txn: AnyTransaction, actions: list[Action], *, retransmission: bool = False
    ) -> None:
        for action in actions:
            if type(action) is Send:
                meta = self._meta.get(txn)
                if meta is not None and self._send is not None:
                    peer = meta[0]
                    if retransmission and not self.budget.allow(peer.host, self.now()):
                        continue  # counted by the budget; the timers run on regardless
                    self._send(bytes(action.message), peer)
            elif type(action) is PassUp:
                msg = action.message
                if isinstance(msg, Response):
                    meta = self._meta.get(txn)
                    owner = None if meta is None else meta[1]
                    self.tu.on_response(msg, txn, owner)  # type: ignore[arg-type]
                else:
                    # RFC 6026 §7.1: an ACK absorbed by an Accepted INVITE server transaction
                    # still belongs to the TU (it stops the 2xx retransmissions).
                    meta = self._meta.get(txn)
                    if meta is not None:
                        self.tu.on_ack(msg, meta[0])
            elif type(action) is Terminate:
                meta = self._meta.pop(txn, None)
                self.tu.on_terminated(txn, action.reason, None if meta is None else meta[1])
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.table.next_deadline()
        if deadline is None:
            return
        armed = self._armed_at
        if armed is not None and armed <= deadline:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = deadline
        self._handle = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = self.now()
        try:
            fired = self.table.handle_timers(now)
        except Exception:  # a TU bug must not stop every timer of the node
            log.exception("transaction timers failed")
            fired = []
        by_txn: dict[AnyTransaction, list[Action]] = {}
        for txn, action in fired:
            by_txn.setdefault(txn, []).append(action)
        for txn, actions in by_txn.items():
            try:
                # Whatever a timer sends is a retransmission (Timers A, E and G).
                self._run(txn, actions, retransmission=True)
            except Exception:
                log.exception("handling timer actions of %r failed", txn)
        self._rearm()

    def close(self) -> None:
        """Stop the timer (shutdown); transactions are abandoned."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._armed_at = None
