"""The forwarding table, pair by pair: every (phase, input) is driven through a real `Router`
and what goes on the wire is checked against the answer written down here.

The written answers are the documentation of `sipha.dispatcher.forwarding` in test form, kept
apart from the table on purpose: a wrong cell in the table, or an action performed wrongly,
fails here. Every transaction has two attempts (a0 abandoned and ringing, a1 current) and a
third server (a2) left to fail over to; a label is ``<method or status>><who>``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.forwarding import INVITE_TABLE, NON_INVITE_TABLE, Input, Phase
from sipha.dispatcher.health import HealthState
from sipha.dispatcher.router import Router, RouterSettings, Send
from sipha.dispatcher.servers import parse_server
from sipha.dispatcher.state import DialogPhase
from sipha.dispatcher.transactions import Pending
from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import Peer

UAC = Peer("udp", "127.0.0.9", 5099)
_P = Phase
_I = Input


# --- the documented answers ------------------------------------------------------------------
# (phase, input) -> (labels sent, next phase). In CALLING and PROCEEDING a0 rings (it answered
# 180 before it was abandoned); in CANCELLED and COMPLETED it was CANCELled on the way there.
def _waiting(phase: Phase) -> dict[Input, tuple[set[str], Phase]]:
    return {
        _I.CURRENT_100: ({"100>uac"}, _P.PROCEEDING),
        _I.CURRENT_1XX: ({"180>uac"}, _P.PROCEEDING),
        _I.CURRENT_2XX: ({"CANCEL>a0", "200>uac"}, _P.COMPLETED),
        _I.CURRENT_FAILOVER: ({"ACK>a1", "INVITE>a2"}, _P.CALLING),
        _I.CURRENT_FINAL: ({"CANCEL>a0", "486>uac"}, _P.COMPLETED),
        _I.ABANDONED_100: ({"100>uac"}, phase),
        _I.ABANDONED_1XX: ({"180>uac"}, phase),
        _I.ABANDONED_2XX: ({"200>uac"}, _P.COMPLETED),
        _I.ABANDONED_FINAL: ({"ACK>a0"}, phase),
        _I.RETRANSMISSION: ({"INVITE>a1"}, phase),
        _I.CANCEL: ({"CANCEL>a0", "CANCEL>a1"}, _P.CANCELLED),
        _I.ACK: ({"ACK>a1"}, phase),
        _I.NO_ANSWER: (({"INVITE>a2"}, _P.CALLING) if phase is _P.CALLING else (set(), phase)),
        _I.SERVER_DOWN: ({"INVITE>a2"}, _P.CALLING),
        _I.EXPIRED: (set(), _P.TERMINATED),
    }


ANSWERS: dict[tuple[Phase, Input], tuple[set[str], Phase]] = {}
for _phase in (_P.CALLING, _P.PROCEEDING):
    ANSWERS.update({(_phase, i): a for i, a in _waiting(_phase).items()})
# a1 rings in PROCEEDING: when a0's 2xx wins, a1 is CANCELled.
ANSWERS[(_P.PROCEEDING, _I.ABANDONED_2XX)] = ({"CANCEL>a1", "200>uac"}, _P.COMPLETED)
ANSWERS.update({(_P.CANCELLED, i): a for i, a in {
    _I.CURRENT_100: ({"100>uac"}, _P.CANCELLED),
    _I.CURRENT_1XX: ({"180>uac"}, _P.CANCELLED),
    _I.CURRENT_2XX: ({"200>uac"}, _P.COMPLETED),
    _I.CURRENT_FAILOVER: ({"503>uac"}, _P.COMPLETED),  # never fail over a cancelled call
    _I.CURRENT_FINAL: ({"486>uac"}, _P.COMPLETED),
    _I.ABANDONED_100: (set(), _P.CANCELLED),
    _I.ABANDONED_1XX: (set(), _P.CANCELLED),  # already CANCELled once
    _I.ABANDONED_2XX: ({"200>uac"}, _P.COMPLETED),
    _I.ABANDONED_FINAL: ({"ACK>a0"}, _P.CANCELLED),
    _I.RETRANSMISSION: ({"INVITE>a1"}, _P.CANCELLED),
    _I.CANCEL: ({"CANCEL>a1"}, _P.CANCELLED),
    _I.ACK: ({"ACK>a1"}, _P.CANCELLED),
    _I.NO_ANSWER: (set(), _P.CANCELLED),
    _I.SERVER_DOWN: (set(), _P.CANCELLED),
    _I.EXPIRED: (set(), _P.TERMINATED),
}.items()})
ANSWERS.update({(_P.COMPLETED, i): a for i, a in {
    _I.CURRENT_100: (set(), _P.COMPLETED),
    _I.CURRENT_1XX: (set(), _P.COMPLETED),
    _I.CURRENT_2XX: ({"200>uac"}, _P.COMPLETED),
    _I.CURRENT_FAILOVER: ({"503>uac"}, _P.COMPLETED),
    _I.CURRENT_FINAL: ({"486>uac"}, _P.COMPLETED),
    _I.ABANDONED_100: (set(), _P.COMPLETED),
    _I.ABANDONED_1XX: (set(), _P.COMPLETED),  # already CANCELled when the final went up
    _I.ABANDONED_2XX: ({"ACK>a0", "BYE>a0"}, _P.COMPLETED),  # a ghost call
    _I.ABANDONED_FINAL: ({"ACK>a0"}, _P.COMPLETED),
    _I.RETRANSMISSION: ({"INVITE>a1"}, _P.COMPLETED),
    _I.CANCEL: ({"CANCEL>a1"}, _P.COMPLETED),
    _I.ACK: ({"ACK>a1"}, _P.COMPLETED),
    _I.NO_ANSWER: (set(), _P.COMPLETED),
    _I.SERVER_DOWN: (set(), _P.COMPLETED),
    _I.EXPIRED: (set(), _P.TERMINATED),
}.items()})

LIVE_PHASES = (_P.CALLING, _P.PROCEEDING, _P.CANCELLED, _P.COMPLETED)
_INVITE_ONLY_METHODS = ("CANCEL>", "ACK>", "BYE>")


def non_invite_answer(phase: Phase, event: Input) -> tuple[set[str], Phase]:
    """The documented rule: the INVITE answer without CANCEL/ACK/BYE of ours, and a CANCEL
    that is only passed on (RFC 3261 §9.1)."""
    if event is _I.CANCEL:
        return {"CANCEL>a1"}, phase
    labels, nxt = ANSWERS[(phase, event)]
    if event is _I.ACK:
        return labels, nxt  # the caller's own ACK, passed on
    labels = {lb.replace("INVITE", "OPTIONS") for lb in labels}
    return {lb for lb in labels if not lb.startswith(_INVITE_ONLY_METHODS)}, nxt


# --- driving a real router -------------------------------------------------------------------
def request(method: str, cseq_method: str | None = None, to_tag: str = "") -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    data = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKpair\r\n"
        f"From: <sip:sipp@127.0.0.9:5099>;tag=f1\r\nTo: <sip:service@127.0.0.1:5060>{tag}\r\n"
        f"Call-ID: pair\r\nCSeq: 1 {cseq_method or method}\r\n"
        "Contact: <sip:sipp@127.0.0.9:5099>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


@dataclass
class Bench:
    router: Router
    method: str
    sent: list[Send]
    """The request as sent to a0 and to a1."""

    @property
    def p(self) -> Pending:
        p = self.router.state.pending.get(_key(self.sent[0]))
        assert p is not None
        return p

    def who(self, peer: Peer) -> str:
        if peer == UAC:
            return "uac"
        names = {s.peer: f"a{i}" for i, s in enumerate(self.sent)}
        return names.get(peer, "a2")

    def labels(self, sends: list[Send]) -> set[str]:
        out = set()
        for s in sends:
            msg = parse_message(s.data)
            what = msg.method if isinstance(msg, Request) else str(msg.status)
            out.add(f"{what}>{self.who(s.peer)}")
        return out

    def answer(self, attempt: int, status: int, now: float) -> list[Send]:
        sent = parse_message(self.sent[attempt].data)
        assert isinstance(sent, Request)
        resp = parse_message(bytes(build_response(
            sent, status, to_tag=f"t{attempt}", headers=[("Contact", f"<sip:s{attempt}@127.0.0.1>")]
        )))
        assert isinstance(resp, Response)
        return self.router.on_response(resp, self.sent[attempt].peer, now)


def _key(send: Send) -> str:
    msg = parse_message(send.data)
    assert isinstance(msg, Request)
    branch = msg.via.branch
    assert branch is not None
    return branch


def bench(phase: Phase, method: str = "INVITE") -> Bench:
    """A transaction in ``phase``, with a0 abandoned (ringing for an INVITE) and a1 current."""
    r = Router(RouterSettings(algorithm="rr", max_attempts=3), advertise=("127.0.0.1", 5060),
               secret=b"k" * 16, rng=random.Random(1))
    for i in range(3):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    r.on_timer(0.0)
    [a0] = r.on_request(request(method), UAC, now=0.0)
    [a1] = [s for s in r.on_timer(0.2) if parse_message(s.data).method == method]  # type: ignore[union-attr]
    b = Bench(r, method, [a0, a1])
    b.answer(0, 180, 0.21)
    if phase is not _P.CALLING:
        b.answer(1, 180, 0.22)
    if phase is _P.CANCELLED:
        r.on_request(request("CANCEL"), UAC, now=0.23)
    if phase is _P.COMPLETED:
        b.answer(1, 486, 0.23)
    assert b.p.phase is phase
    return b


STATUS = {
    _I.CURRENT_100: (1, 100), _I.CURRENT_1XX: (1, 180), _I.CURRENT_2XX: (1, 200),
    _I.CURRENT_FAILOVER: (1, 503), _I.CURRENT_FINAL: (1, 486),
    _I.ABANDONED_100: (0, 100), _I.ABANDONED_1XX: (0, 180), _I.ABANDONED_2XX: (0, 200),
    _I.ABANDONED_FINAL: (0, 486),
}


def feed(b: Bench, event: Input) -> list[Send]:
    r = b.router
    now = 0.3
    if event in STATUS:
        attempt, status = STATUS[event]
        return b.answer(attempt, status, now)
    if event is _I.RETRANSMISSION:
        return r.on_request(request(b.method), UAC, now)
    if event is _I.CANCEL:
        return r.on_request(request("CANCEL"), UAC, now)
    if event is _I.ACK:
        return r.on_request(request("ACK", to_tag="t1"), UAC, now)
    if event is _I.NO_ANSWER:
        return r.on_timer(0.45)  # a1's deadline (0.4) passed
    if event is _I.SERVER_DOWN:
        current = r.find(f"{b.sent[1].peer.host}:{b.sent[1].peer.port}")
        assert current is not None
        r.set_state(current, HealthState.INACTIVE, now, "test")
        return r.on_timer(now)
    return r.on_timer(400.0)


@pytest.mark.parametrize(("phase", "event"), [(p, i) for p in LIVE_PHASES for i in Input])
def test_every_invite_pair_does_what_the_documentation_says(phase: Phase, event: Input) -> None:
    b = bench(phase)
    p = b.p
    labels, nxt = ANSWERS[(phase, event)]
    assert b.labels(feed(b, event)) == labels
    assert p.phase is nxt
    assert INVITE_TABLE[(phase, event)].next_phase is nxt
    if nxt is _P.TERMINATED:
        assert p not in b.router.state.pending.values()
    if nxt is _P.COMPLETED and phase is not _P.COMPLETED:
        won = "CONFIRMED" if event in (_I.CURRENT_2XX, _I.ABANDONED_2XX) else "IDLE"
        assert b.router.dialog_phase("pair") is DialogPhase[won]


@pytest.mark.parametrize(("phase", "event"),
                         [(p, i) for p in LIVE_PHASES if p is not _P.CANCELLED for i in Input])
def test_every_non_invite_pair_does_what_the_documentation_says(
    phase: Phase, event: Input
) -> None:
    b = bench(phase, "OPTIONS")
    p = b.p
    labels, nxt = non_invite_answer(phase, event)
    assert b.labels(feed(b, event)) == labels
    assert p.phase is nxt
    assert NON_INVITE_TABLE[(phase, event)].next_phase is nxt


def test_cancelled_and_terminated_rows_answer_every_input() -> None:
    # CANCELLED is unreachable for a non-INVITE (its CANCEL changes nothing) and TERMINATED for
    # everything (out of the index): their rows still answer, by dropping.
    for event in Input:
        for table in (INVITE_TABLE, NON_INVITE_TABLE):
            assert table[(_P.TERMINATED, event)].actions == ()
            assert table[(_P.TERMINATED, event)].next_phase is _P.TERMINATED


# --- any sequence: no exception, no orphan ---------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list(Input)), max_size=8), st.sampled_from(LIVE_PHASES))
def test_any_sequence_of_inputs_is_answered_and_leaves_no_orphan(
    events: list[Input], phase: Phase
) -> None:
    b = bench(phase)
    for event in events:
        feed(b, event)
    for p in set(b.router.state.pending.values()):
        assert p.attempts
        assert p.phase is not _P.TERMINATED
        assert len(p.attempts) == len(p.branches) == len(p.attempt_phases)
        assert 0 <= p.current < len(p.attempts)
