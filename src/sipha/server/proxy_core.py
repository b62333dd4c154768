"""The stateful proxy's calls, sans-IO: requests, responses, lookups and ``now`` in, actions out.

Theory of operation
-------------------
:class:`ProxyCore` holds every request being proxied statefully (a :class:`Call`) and its
branches, and applies :mod:`sipha.server.proxy_rules` to them. It reads no clock, touches no
socket, store or DNS: each method takes ``now`` and returns the actions for the service
(:mod:`sipha.server.proxy`) to carry out, in order:

* :class:`Respond`: answer the caller through its server transaction (our own answers);
* :class:`ForwardUpstream`: a branch's response for the caller, our Via already popped; once
  the server transaction has its final, a 2xx goes statelessly by its next Via (§16.7 step 5);
* :class:`SendBranch`: start a client transaction for a branch (its ``owner``);
* :class:`SendCancel`: a CANCEL for a branch's INVITE, in a client transaction of its own;
* :class:`LookUp`: ask the location service for ``aor``; the answer comes back through
  :meth:`ProxyCore.on_bindings` (or :meth:`ProxyCore.on_not_located` when the store failed);
* :class:`Resolve`: resolve the host names among the targets; the answer comes back through
  :meth:`ProxyCore.on_resolved`.

Timer C (§16.6 step 11) is the only timer: one deadline per INVITE call, kept in a heap with
lazy deletion (an entry counts while its call is open; a restarted Timer C moves its entry
when it surfaces), exposed by
:meth:`~ProxyCore.next_deadline`; the service arms one loop timer and calls
:meth:`~ProxyCore.on_timer`. A call leaves :attr:`~ProxyCore.pending` when its final goes
upstream; its branches keep it (as their client transactions' owner) for late responses.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sipha.server.forking import CachedHop, Target, Unresolved, branch_requests, targets_of
from sipha.server.local import HopSpec, Local
from sipha.server.proxy_rules import (
    BRANCH_TABLE,
    CALL_TABLE,
    BranchInput,
    BranchPhase,
    CallInput,
    CallPhase,
    Do,
    classify,
    rank,
)
from sipha.server.status import NodeStats
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import ServerTransaction, TerminationReason, build_cancel
from sipha.store import Binding
from sipha.transport import Peer

__all__ = ["Action", "Branch", "Call", "ForwardUpstream", "LookUp", "ProxyCore", "Resolve",
           "Respond", "SendBranch", "SendCancel", "Target"]

MAX_RESOLVED_CONTACTS = 8  # contacts come from REGISTERs: bound the DNS work per call
_OPEN = (CallPhase.LOCATING, CallPhase.PROCEEDING, CallPhase.CANCELLED)


class Branch:
    """One target of a call: the request sent there, in its own client transaction."""

    __slots__ = ("call", "final", "peer", "phase", "request")

    def __init__(self, call: Call, request: Request, peer: Peer) -> None:
        self.call = call
        self.request = request
        self.peer = peer
        self.phase = BranchPhase.CALLING
        self.final: int | None = None


class Call:
    """One request proxied statefully: its server transaction and branches."""

    __slots__ = ("best", "best_synthetic", "branches", "invite", "open_branches", "peer",
                 "phase", "request", "server_txn", "timer_c_deadline", "to_user")

    def __init__(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        self.request = request
        self.server_txn = txn
        self.peer = peer
        self.invite = request.method == "INVITE"
        self.phase = CallPhase.LOCATING
        self.branches: list[Branch] = []
        self.open_branches = 0  # branches without a final
        self.best: Response | None = None
        self.best_synthetic = False  # the best final is made by us (a branch's 408/503)
        self.timer_c_deadline: float | None = None
        self.to_user = False  # a delivery to a subscriber (counted in calls_proxied)


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the caller with our own response."""

    txn: ServerTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class ForwardUpstream:
    """Send a branch's response (our Via popped) to the caller."""

    txn: ServerTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class SendBranch:
    """Start a client transaction sending ``branch.request`` to ``branch.peer``."""

    branch: Branch


@dataclass(frozen=True, slots=True)
class SendCancel:
    """Send ``cancel`` to ``peer`` in a client transaction of its own."""

    cancel: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class LookUp:
    """Ask the location service for the bindings of ``aor``; answer with on_bindings."""

    call: Call
    aor: str


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolve ``unresolved`` (at most MAX_RESOLVED_CONTACTS); answer with on_resolved,
    giving ``targets`` plus the resolved ones."""

    call: Call
    targets: tuple[Target, ...]
    unresolved: tuple[Unresolved, ...]


Action = Respond | ForwardUpstream | SendBranch | SendCancel | LookUp | Resolve


class ProxyCore:
    """The calls of one server's proxy (see the module docstring)."""

    def __init__(self, *, local: Local, stats: NodeStats, domain: str, record_route: bool,
                 timer_c: float, secret: bytes, cached_hop: CachedHop) -> None:
        self.local = local
        self.stats = stats
        self.domain = domain
        self.record_route = record_route
        self.timer_c = timer_c
        self.secret = secret
        self.cached_hop = cached_hop
        self.pending: dict[ServerTransaction, Call] = {}  # calls without a final upstream
        self._heap: list[tuple[float, int, Call]] = []
        self._seq = itertools.count()

    # -- new calls ------------------------------------------------------------------------------
    def to_user(self, request: Request, txn: ServerTransaction, peer: Peer, now: float
                ) -> list[Action]:
        """Proxy to the subscriber the Request-URI names: a LookUp of its bindings."""
        call, out = self._new_call(request, txn, peer, now)
        call.to_user = True
        user = getattr(request.uri, "user", None)
        # An escaped octet that is not UTF-8 decodes to a surrogate (sip.uri), which is not
        # printable: no subscriber has such a name, and the store could not even encode it.
        if not user or not user.isprintable():
            return self._input(call, CallInput.NOT_LOCATED, now, out, status=404)
        out.append(LookUp(call, f"{user}@{self.domain}"))
        return out

    def to_next_hop(self, request: Request, txn: ServerTransaction, peer: Peer, spec: HopSpec,
                    now: float) -> list[Action]:
        """Forward by Route / Request-URI to the hop ``spec`` names (resolved first if a name)."""
        call, out = self._new_call(request, txn, peer, now)
        hop = self.cached_hop(spec, peer.transport)
        if hop is None:
            out.append(Resolve(call, (), ((None, spec, ()),)))
            return out
        return self._located(call, [(None, hop, ())], now, out)

    def _new_call(self, request: Request, txn: ServerTransaction, peer: Peer, now: float
                  ) -> tuple[Call, list[Action]]:
        call = Call(request, txn, peer)
        self.pending[txn] = call
        if not call.invite:
            return call, []
        # §16.2: a stateful proxy sends 100 for an INVITE it will not answer at once.
        self._arm_timer_c(call, now)
        return call, [Respond(txn, build_response(request, 100))]

    # -- answers of the location service and the DNS --------------------------------------------
    def on_bindings(self, call: Call, bindings: Sequence[Binding], *, user_exists: bool,
                    now: float) -> list[Action]:
        """The location service's answer; ``user_exists`` matters only without bindings
        (404: no such subscriber; 480: a subscriber with no registered contact)."""
        if not bindings:
            return self._input(call, CallInput.NOT_LOCATED, now, [],
                               status=480 if user_exists else 404)
        targets, unresolved = targets_of(bindings, call.peer.transport, self.cached_hop)
        if unresolved and call.phase is CallPhase.LOCATING:
            return [Resolve(call, tuple(targets), tuple(unresolved[:MAX_RESOLVED_CONTACTS]))]
        return self.on_resolved(call, targets, now)

    def on_resolved(self, call: Call, targets: Sequence[Target], now: float) -> list[Action]:
        """The targets, resolved (names that did not resolve left out)."""
        if not targets:
            return self._input(call, CallInput.NOT_LOCATED, now, [], status=480)
        if call.to_user and call.phase is CallPhase.LOCATING:  # else dropped by the table
            self.stats.calls_proxied += call.invite
        return self._located(call, targets, now, [])

    def _located(self, call: Call, targets: Sequence[Target], now: float, out: list[Action]
                 ) -> list[Action]:
        # No node forwards to itself: an address we listen on reached by another name (a
        # DNS alias, an unlisted interface) would bounce the request until Max-Forwards.
        mine = self.local.is_own_socket
        kept = [t for t in targets if not mine(t[1])]
        if not kept:
            if call.phase is CallPhase.LOCATING:
                self.stats.refused("loop")
            return self._input(call, CallInput.NOT_LOCATED, now, out, status=482)
        return self._input(call, CallInput.LOCATED, now, out, targets=kept)

    def on_not_located(self, call: Call, status: int, now: float) -> list[Action]:
        """The lookup failed (500 for a store error, 503/408 for the DNS)."""
        return self._input(call, CallInput.NOT_LOCATED, now, [], status=status)

    # -- branches --------------------------------------------------------------------------------
    def on_response(self, branch: Branch, response: Response, now: float) -> list[Action]:
        """A response a branch's client transaction passed up."""
        status = response.status
        i = classify(status, branch_has_final=branch.final is not None,
                     others_open=branch.call.open_branches > (branch.final is None))
        return self._input(branch.call, i, now, [], branch=branch, response=response)

    def on_branch_ended(self, branch: Branch, reason: TerminationReason, now: float
                        ) -> list[Action]:
        """A branch's client transaction ended: without a final, it counts as 408, or 503
        after a transport error (§16.7 step 2)."""
        if branch.final is not None:
            return []
        status = 503 if reason is TerminationReason.TRANSPORT_ERROR else 408
        call = branch.call
        i = classify(status, branch_has_final=False, others_open=call.open_branches > 1)
        synthetic = build_response(call.request, status)
        return self._input(call, i, now, [], branch=branch, response=synthetic, synthetic=True)

    # -- the caller's CANCEL and Timer C ---------------------------------------------------------
    def on_cancel(self, txn: ServerTransaction, now: float) -> list[Action] | None:
        """The caller CANCELled the INVITE of ``txn``; None when it is not one of ours."""
        call = self.pending.get(txn)
        if call is None or not call.invite:  # §9.1: only an INVITE is cancelled
            return None
        return self._input(call, CallInput.CANCEL, now, [])

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` next has work (Timer C of some call), or None."""
        heap = self._heap
        while heap:
            deadline, _, call = heap[0]
            current = call.timer_c_deadline
            if current is None or call.phase not in _OPEN:
                heapq.heappop(heap)  # the call has its final: Timer C is stopped
            elif current != deadline:
                # Restarted by a provisional (deadlines only move later): the entry moves
                # when it surfaces, so a restart costs one assignment, not a heap push.
                heapq.heapreplace(heap, (current, next(self._seq), call))
            else:
                return deadline
        return None

    def on_timer(self, now: float) -> list[Action]:
        """Fire every Timer C due at ``now``."""
        out: list[Action] = []
        heap = self._heap
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return out
            call = heapq.heappop(heap)[2]
            call.timer_c_deadline = None
            out.extend(self._input(call, CallInput.TIMER_C, now, []))

    def _arm_timer_c(self, call: Call, now: float) -> None:
        # One heap entry per call, pushed at the start (see next_deadline for restarts).
        if call.timer_c_deadline is None:
            heapq.heappush(self._heap, (now + self.timer_c, next(self._seq), call))
        call.timer_c_deadline = now + self.timer_c

    # -- the table -------------------------------------------------------------------------------
    def _input(self, call: Call, i: CallInput, now: float, out: list[Action], *,
               branch: Branch | None = None, response: Response | None = None,
               synthetic: bool = False, status: int = 0, targets: Sequence[Target] = ()
               ) -> list[Action]:
        rule = CALL_TABLE[(call.phase, i)]
        call.phase = rule.next_phase
        for do in rule.actions:
            # Response actions appear only in the rows of response inputs, which come with
            # their branch and response.
            if do is Do.BRANCH_FINAL:
                if branch is not None and response is not None:
                    self._branch_final(branch, response, synthetic)
            elif do is Do.FORWARD_UPSTREAM:
                if response is not None:
                    response.pop_via()  # §16.7 step 3: remove our Via
                    if response.has("via"):
                        out.append(ForwardUpstream(call.server_txn, response))
            elif do is Do.BRANCH_PROCEEDING:
                if branch is not None:
                    self._branch_step(branch, BranchInput.PROVISIONAL, out)
            elif do is Do.RESET_TIMER_C:
                if call.invite:
                    self._arm_timer_c(call, now)
            elif do is Do.CANCEL_OTHERS or do is Do.CANCEL_ALL:
                for b in call.branches:
                    if b is not branch or do is Do.CANCEL_ALL:
                        self._branch_step(b, BranchInput.CANCEL, out)
            elif do is Do.FAIL_OPEN:
                for b in call.branches:
                    if b.final is None:
                        # Counted as 408, but its client transaction lives on: a CANCEL it
                        # waits for still goes on its first provisional.
                        self._branch_final(b, build_response(call.request, 408), True,
                                           step=False)
            elif do is Do.SEND_BEST or do is Do.SEND_BEST_CANCELLED:
                self._send_best(call, out, cancelled=do is Do.SEND_BEST_CANCELLED)
            elif do is Do.FORK:
                self._fork(call, targets, out)
            elif do is Do.ANSWER:
                self._answer(call, status or 408, out)
            elif do is Do.ANSWER_487:
                self._answer(call, 487, out)
        if call.phase not in _OPEN:
            self.pending.pop(call.server_txn, None)
        return out

    def _branch_step(self, branch: Branch, i: BranchInput, out: list[Action]) -> None:
        rule = BRANCH_TABLE[(branch.phase, i)]
        branch.phase = rule.next_phase
        if rule.send_cancel and branch.call.invite:  # §9.1: a non-INVITE is not CANCELled
            out.append(SendCancel(build_cancel(branch.request), branch.peer))

    def _branch_final(self, branch: Branch, response: Response, synthetic: bool, *,
                      step: bool = True) -> None:
        if step:
            self._branch_step(branch, BranchInput.FINAL, [])
        if branch.final is not None:
            return  # a retransmitted 2xx
        branch.final = response.status
        call = branch.call
        call.open_branches -= 1
        if response.status >= 300 and (call.best is None
                                       or rank(response.status) < rank(call.best.status)):
            call.best = response
            call.best_synthetic = synthetic

    def _send_best(self, call: Call, out: list[Action], *, cancelled: bool) -> None:
        best = call.best
        if best is None:
            self._answer(call, 408, out)
        elif cancelled and best.status < 600:
            self._answer(call, 487, out)
        elif best.status == 503:
            self._answer(call, 500, out)  # §16.7 step 6: 503 is not passed on
        elif call.best_synthetic:
            self._answer(call, best.status, out)  # made by us: it carries no Via of ours
        else:
            best.pop_via()
            if best.has("via"):
                out.append(ForwardUpstream(call.server_txn, best))

    def _answer(self, call: Call, status: int, out: list[Action]) -> None:
        response = build_response(call.request, status, to_tag=self.local.unique())
        out.append(Respond(call.server_txn, response))

    def _fork(self, call: Call, targets: Sequence[Target], out: list[Action]) -> None:
        for fwd, hop in branch_requests(call.request, targets, in_transport=call.peer.transport,
                                        local=self.local, secret=self.secret,
                                        record_route=self.record_route):
            b = Branch(call, fwd, hop)
            call.branches.append(b)
            call.open_branches += 1
            out.append(SendBranch(b))

    def close(self) -> None:
        self.pending.clear()
        self._heap.clear()
