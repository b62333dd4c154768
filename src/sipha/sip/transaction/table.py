"""A pure registry of live transactions with one timer heap (aioquic style).

Theory of operation
-------------------
The I/O layer owns one :class:`TransactionTable` and one real timer. It matches every incoming
message with :meth:`find_server` / :meth:`find_client`, feeds events through :meth:`handle`
(never straight into a transaction it has added, or the table would not see the timers the
transaction arms), sleeps until :meth:`next_deadline` and then calls :meth:`handle_timers`.
The table drops transactions as they terminate.

Timers live in a heap of ``(deadline, seq, timer, transaction)`` entries. Cancelling does not
touch the heap: an entry is valid only while its transaction is still registered and still has
that timer armed for that very deadline, so cancelled and re-armed timers are skipped when they
surface (lazy deletion). Each ``StartTimer`` pushes one entry and each entry is popped once, so
the heap stays proportional to the timers started in the last 64*T1.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from sipha.sip.message import Request, Response
from sipha.sip.transaction.client import ClientInviteTransaction, ClientNonInviteTransaction
from sipha.sip.transaction.events import (
    Action,
    Event,
    StartTimer,
    TimerFired,
    TransactionUsageError,
)
from sipha.sip.transaction.key import (
    TransactionKey,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from sipha.sip.transaction.server import ServerInviteTransaction, ServerNonInviteTransaction
from sipha.sip.transaction.timers import TimerName

__all__ = [
    "AnyTransaction",
    "ClientTransaction",
    "ServerTransaction",
    "TransactionTable",
]

ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
AnyTransaction = ClientTransaction | ServerTransaction

_CLIENT_TYPES = (ClientInviteTransaction, ClientNonInviteTransaction)
_SERVER_TYPES = (ServerInviteTransaction, ServerNonInviteTransaction)
_HeapEntry = tuple[float, int, TimerName, AnyTransaction]


class TransactionTable:
    """Live client and server transactions, keyed per RFC 3261 §17.1.3 and §17.2.3."""

    __slots__ = ("_client", "_heap", "_seq", "_server")

    def __init__(self) -> None:
        # Client and server keys live in separate spaces (§17.1.3 and §17.2.3 match
        # differently), so a looped request cannot collide with our own. Two dicts rather than
        # one keyed by (is_client, key): that tuple cost 56 bytes per lingering transaction.
        self._server: dict[TransactionKey, AnyTransaction] = {}
        self._client: dict[TransactionKey, AnyTransaction] = {}
        self._heap: list[_HeapEntry] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._server) + len(self._client)

    def __iter__(self) -> Iterator[AnyTransaction]:
        return iter([*self._server.values(), *self._client.values()])

    # -- registration -------------------------------------------------------------------------
    def add(self, txn: AnyTransaction, now: float) -> list[Action]:
        """Register ``txn`` and start it unless already started; return the start actions.

        Raises :class:`TransactionUsageError` if a live transaction has the same key or
        ``txn`` is already terminated.
        """
        if txn.terminated:
            raise TransactionUsageError(f"{txn!r} is terminated")
        space = self._space(txn)
        if txn.key in space:
            raise TransactionUsageError(f"a transaction with key {txn.key} exists")
        space[txn.key] = txn
        if txn.started:
            for timer, deadline in txn.armed_timers.items():
                self._push(deadline, timer, txn)
            return []
        actions = txn.start(now)
        self._track(txn, actions, now)
        return actions

    def remove(self, txn: AnyTransaction) -> None:
        """Forget ``txn`` (a TU abandoning it); unknown transactions are ignored."""
        space = self._space(txn)
        if space.get(txn.key) is txn:
            del space[txn.key]

    # -- matching -----------------------------------------------------------------------------
    def find_server(self, request: Request) -> ServerTransaction | None:
        """The server transaction ``request`` belongs to (an ACK finds its INVITE's);
        raises ``SipParseError`` for a request without a readable Via or CSeq."""
        txn = self._server.get(server_key(request))
        return txn if isinstance(txn, _SERVER_TYPES) else None

    def find_client(self, response: Response) -> ClientTransaction | None:
        """The client transaction ``response`` answers (§17.1.3); raises ``SipParseError``
        for a response without a readable Via or CSeq."""
        txn = self._client.get(client_key(response))
        return txn if isinstance(txn, _CLIENT_TYPES) else None

    def find_cancelled(self, cancel: Request) -> ServerInviteTransaction | None:
        """The INVITE server transaction a CANCEL targets (§9.2), if it is still live."""
        txn = self._server.get(invite_key_for_cancel(cancel))
        return txn if isinstance(txn, ServerInviteTransaction) else None

    # -- driving ------------------------------------------------------------------------------
    def handle(self, txn: AnyTransaction, event: Event, now: float) -> list[Action]:
        """Feed ``event`` to a registered ``txn``; track its timers, drop it if it ends.

        Raises what ``txn.handle`` raises (:class:`TransactionUsageError` for TU misuse).
        """
        actions = txn.handle(event, now)
        self._track(txn, actions, now)
        return actions

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` next has work, or None with no timer armed."""
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timers(self, now: float) -> list[tuple[AnyTransaction, Action]]:
        """Fire every timer due at ``now``; return each resulting action with its transaction.

        Timers fire in deadline order; terminated transactions are removed.
        """
        out: list[tuple[AnyTransaction, Action]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._valid(entry):
                continue
            txn = entry[3]
            out.extend((txn, action) for action in self.handle(txn, TimerFired(entry[2]), now))
        return out

    # -- internals ----------------------------------------------------------------------------
    def _push(self, deadline: float, timer: TimerName, txn: AnyTransaction) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), timer, txn))

    def _track(self, txn: AnyTransaction, actions: list[Action], now: float) -> None:
        if txn.terminated:
            self.remove(txn)
            return
        for action in actions:
            if isinstance(action, StartTimer):
                deadline = txn.deadline_of(action.timer)
                if deadline is not None:
                    self._push(deadline, action.timer, txn)

    def _valid(self, entry: _HeapEntry) -> bool:
        deadline, _, timer, txn = entry
        if txn.deadline_of(timer) != deadline or txn.terminated:
            return False
        return self._space(txn).get(txn.key) is txn

    def _space(self, txn: AnyTransaction) -> dict[TransactionKey, AnyTransaction]:
        return self._client if isinstance(txn, _CLIENT_TYPES) else self._server

