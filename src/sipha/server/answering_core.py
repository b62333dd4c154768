"""The answering service's calls, sans-IO: INVITEs, ACKs, CANCELs, BYEs and ``now`` in, actions out.

Theory of operation
-------------------
:class:`AnsweringCore` holds the calls the dialplan answers (:class:`AnsweredCall`, by Call-ID)
and applies :data:`~sipha.server.answering_rules.ANSWER_TABLE` to them. It reads no clock and
touches no socket or store: each method takes ``now`` (the loop's monotonic time) and returns
the actions for :mod:`sipha.server.answering` to carry out:

* :class:`Respond` a response through a server transaction;
* :class:`Retransmit` the 2xx outside any transaction (RFC 3261 §13.3.1.4, the UAS core's
  job; the transport's budget may skip it for a host that never answered);
* :class:`SendBye` a BYE in a client transaction (``owner``: the call);
* :class:`StoreDialog` (answered with :meth:`AnsweringCore.on_stored`) and
  :class:`DeleteDialog` on the shared store; :class:`VerifyPeer` tells the transport's
  retransmission budget that a host answered one of our random tags.

Each call has up to three timers (ring, 2xx retransmission, hold: `answering_rules.Timer`); all
live in one heap with lazy deletion (an entry counts while its call still has that deadline for
that timer), exposed by :meth:`~AnsweringCore.next_deadline`; the service arms one loop timer.
Per call this costs one dict entry and a few heap entries; no loop handle.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from sipha.server.answering_rules import (
    ANSWER_TABLE,
    AnswerInput,
    AnswerPhase,
    Do,
    Timer,
    classify_timer,
)
from sipha.server.dialplan import Action as DialplanAction
from sipha.server.dialplan import ActionKind
from sipha.server.local import Local, destination
from sipha.server.status import NodeStats
from sipha.sip.address import parse_name_addr
from sipha.sip.dialog import Dialog
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction import ServerInviteTransaction, ServerTransaction, TimerConfig
from sipha.transport import Peer

__all__ = ["ALLOW", "ANSWER_TAG_PREFIX", "Action", "AnsweredCall", "AnsweringCore",
           "DeleteDialog", "Respond", "Retransmit", "SendBye", "StoreDialog", "VerifyPeer", "sdp"]

ANSWER_TAG_PREFIX = "sphA"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"


def sdp(host: str, session: int) -> bytes:
    """Our answer: one PCMU audio stream (nobody sends media to it; the call is signalling)."""
    return (
        f"v=0\r\no=sipha {session} {session} IN IP4 {host}\r\ns=sipha\r\nc=IN IP4 {host}\r\n"
        "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


class AnsweredCall:
    """One call this server answers (or rings, or is about to answer)."""

    __slots__ = ("action", "deadlines", "invite", "local_tag", "ok", "peer", "phase",
                 "retransmit_interval", "retransmit_until", "started", "txn")

    def __init__(self, invite: Request, txn: ServerInviteTransaction, peer: Peer, tag: str,
                 action: DialplanAction, started: float) -> None:
        self.invite = invite
        self.txn = txn
        self.peer = peer
        self.local_tag = tag
        self.action = action
        self.started = started  # unix time: the dialog record and the SDP's session id
        self.phase = AnswerPhase.RINGING if action.kind is ActionKind.RING else AnswerPhase.ALERTING
        self.ok: Response | None = None
        self.deadlines: dict[Timer, float] = {}
        self.retransmit_interval = 0.0
        self.retransmit_until = 0.0

    @property
    def answered(self) -> bool:
        return self.ok is not None


@dataclass(frozen=True, slots=True)
class Respond:
    txn: ServerTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class Retransmit:
    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class SendBye:
    bye: Request
    peer: Peer
    call: AnsweredCall


@dataclass(frozen=True, slots=True)
class StoreDialog:
    call: AnsweredCall


@dataclass(frozen=True, slots=True)
class DeleteDialog:
    call_id: str


@dataclass(frozen=True, slots=True)
class VerifyPeer:
    host: str


Action = Respond | Retransmit | SendBye | StoreDialog | DeleteDialog | VerifyPeer
_LIVE = (AnswerPhase.RINGING, AnswerPhase.ALERTING, AnswerPhase.STORING)  # no final yet


class AnsweringCore:
    """The calls of the answering service (see the module docstring)."""

    def __init__(self, *, local: Local, stats: NodeStats, timers: TimerConfig) -> None:
        self.local = local
        self.stats = stats
        self.timers = timers
        self.calls: dict[str, AnsweredCall] = {}
        self.unanswered = 0  # calls in `calls` still ringing (no final response yet)
        self._by_txn: dict[ServerInviteTransaction, AnsweredCall] = {}
        self._heap: list[tuple[float, int, Timer, AnsweredCall]] = []
        self._seq = itertools.count()

    # -- inputs -----------------------------------------------------------------------------
    def invite(self, request: Request, txn: ServerInviteTransaction, peer: Peer,
               action: DialplanAction, now: float, wall: float) -> list[Action]:
        """A new INVITE for a dialplan ``action``; ``wall`` is the unix time."""
        tag = f"{ANSWER_TAG_PREFIX}{self.local.unique()}"
        if action.kind is ActionKind.REJECT:
            self.stats.calls_rejected += 1
            return [Respond(txn, build_response(request, action.status, to_tag=tag))]
        call_id = request.call_id
        if call_id in self.calls:
            # A new INVITE (new branch) for a Call-ID we hold: a glare/loop; refuse it.
            return [Respond(txn, build_response(request, 482, to_tag=tag))]
        call = AnsweredCall(request, txn, peer, tag, action, wall)
        self.calls[call_id] = call
        self.unanswered += 1
        self._by_txn[txn] = call
        contact = self.local.contact(getattr(request.uri, "user", None), peer.transport)
        out: list[Action] = [Respond(txn, build_response(
            request, 180, to_tag=tag, headers=[("Contact", contact)], copy_record_route=True
        ))]
        if action.kind is ActionKind.RING:
            self._arm(call, Timer.RING, now + action.ring_timeout)
        elif action.ring_time > 0:
            self._arm(call, Timer.RING, now + action.ring_time)
        else:
            self._input(call, AnswerInput.ANSWER_TIME, now, out)
        return out

    def on_stored(self, call: AnsweredCall, now: float) -> list[Action]:
        """The dialog record of ``call`` is written (or the write failed)."""
        return self._input(call, AnswerInput.STORED, now, [])

    def on_cancel(self, txn: ServerInviteTransaction, now: float) -> list[Action] | None:
        """The caller CANCELled ``txn``; None when it is not a call we ring (unknown, or
        already answered: the CANCEL is then too late)."""
        call = self._by_txn.get(txn)
        if call is None or call.phase not in _LIVE:
            return None
        return self._input(call, AnswerInput.CANCEL, now, [])

    def on_ack(self, ack: Request, now: float) -> list[Action]:
        call = self.calls.get(ack.call_id)
        if call is None:
            return []
        out: list[Action] = []
        self._input(call, AnswerInput.ACK, now, out)
        if out and ack.to_tag != call.local_tag:
            out.clear()  # only our random tag coming back proves the source is not spoofed
        return out

    def on_bye(self, bye: Request, txn: ServerTransaction, now: float) -> list[Action] | None:
        """A BYE for one of our calls; None when it is not ours (ask the shared store)."""
        call = self.calls.get(bye.call_id)
        if call is None or call.local_tag != bye.to_tag:
            return None
        return self._input(call, AnswerInput.BYE, now, [], bye=(bye, txn))

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` next has work, or None."""
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def on_timer(self, now: float) -> list[Action]:
        """Fire every timer due at ``now``."""
        out: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._valid(entry):
                continue
            _, _, timer, call = entry
            del call.deadlines[timer]
            i = classify_timer(timer, call.phase, ack_overdue=now >= call.retransmit_until)
            self._input(call, i, now, out)
        return out

    # -- the table --------------------------------------------------------------------------
    def _input(self, call: AnsweredCall, i: AnswerInput, now: float, out: list[Action], *,
               bye: tuple[Request, ServerTransaction] | None = None) -> list[Action]:
        rule = ANSWER_TABLE[(call.phase, i)]
        call.phase = rule.next_phase
        for do in rule.actions:
            if do is Do.FORGET:
                self._forget(call)
            elif do is Do.REJECT_480 or do is Do.REJECT_487:
                status = 480 if do is Do.REJECT_480 else 487
                out.append(Respond(call.txn, build_response(call.invite, status,
                                                            to_tag=call.local_tag)))
            elif do is Do.OK_BYE:
                if bye is not None:
                    out.append(Respond(bye[1], build_response(bye[0], 200)))
            elif do is Do.STORE_DIALOG:
                out.append(StoreDialog(call))
            elif do is Do.SEND_2XX:
                self._send_2xx(call, now, out)
            elif do is Do.RETRANSMIT_2XX:
                if call.ok is not None:
                    out.append(Retransmit(call.ok, call.peer))
                call.retransmit_interval = min(2 * call.retransmit_interval, self.timers.t2)
                self._arm(call, Timer.RETRANSMIT, now + call.retransmit_interval)
            elif do is Do.CONFIRM:
                call.deadlines.pop(Timer.RETRANSMIT, None)
                out.append(VerifyPeer(call.peer.host))
            elif do is Do.COUNT_HOLD:
                self.stats.calls_ended_by_hold += 1
            elif do is Do.SEND_BYE:
                self._send_bye(call, out)
            elif do is Do.DELETE_DIALOG:
                out.append(DeleteDialog(call.invite.call_id))
        return out

    def _send_2xx(self, call: AnsweredCall, now: float, out: list[Action]) -> None:
        invite = call.invite
        transport = call.peer.transport
        ok = build_response(
            invite,
            200,
            to_tag=call.local_tag,
            headers=[
                ("Contact", self.local.contact(getattr(invite.uri, "user", None), transport)),
                ("Allow", ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            body=sdp(self.local.address(transport)[0], int(call.started)),
            copy_record_route=True,
        )
        call.ok = ok
        self.unanswered -= 1
        self.stats.calls_answered += 1
        out.append(Respond(call.txn, ok))
        if transport == "udp":
            # RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx until the ACK.
            call.retransmit_interval = self.timers.t1
            call.retransmit_until = now + self.timers.timeout
            self._arm(call, Timer.RETRANSMIT, now + self.timers.t1)
        self._arm(call, Timer.HOLD, now + call.action.max_hold)

    def _send_bye(self, call: AnsweredCall, out: list[Action]) -> None:
        try:
            dialog = Dialog.from_uas_request(call.invite, call.local_tag)
        except SipParseError:
            return  # a Contact or Record-Route we cannot route a BYE by: only forget the call
        peer = call.peer
        if dialog.route_set:
            first = destination(parse_name_addr(dialog.route_set[0]).uri, peer.transport)
            if first is not None:
                peer = first
        branch = f"z9hG4bK{self.local.unique()}"
        out.append(SendBye(dialog.create_bye(via=self.local.via(peer.transport, branch)),
                           peer, call))

    def _forget(self, call: AnsweredCall) -> None:
        call.deadlines.clear()
        if self.calls.get(call.invite.call_id) is call:
            del self.calls[call.invite.call_id]
            if call.ok is None:
                self.unanswered -= 1
        self._by_txn.pop(call.txn, None)

    def _arm(self, call: AnsweredCall, timer: Timer, deadline: float) -> None:
        call.deadlines[timer] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), timer, call))

    @staticmethod
    def _valid(entry: tuple[float, int, Timer, AnsweredCall]) -> bool:
        return entry[3].deadlines.get(entry[2]) == entry[0]

    def close(self) -> None:
        for call in self.calls.values():
            call.deadlines.clear()
        self._heap.clear()
