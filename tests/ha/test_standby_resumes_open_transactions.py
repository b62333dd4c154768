"""A standby that applied the active's snapshot resumes its open transactions exactly where the
active stopped: an unanswered INVITE fails over to the next server on the new active's timer,
and a CANCELled INVITE stays cancelled (a late 503 is not failed over to ring another phone).

Both routers get every input in the same order; the new active must send the same bytes as
the old active would have.
"""

from __future__ import annotations

import random

import pytest

from sipha.dispatcher.health import HealthState
from sipha.dispatcher.router import Router, RouterSettings, Send
from sipha.dispatcher.servers import parse_server
from sipha.ha.replication import FrameDecoder, ReplDeltas, ReplSnapshot, encode_frame
from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import Peer

UAC = Peer("udp", "127.0.0.9", 5099)


def make_router() -> Router:
    # A hashing scheduler: both nodes pick the same next server for the same call.
    r = Router(RouterSettings(algorithm="hash-callid"), advertise=("127.0.0.1", 5060),
               secret=b"k" * 16, rng=random.Random(1))
    for i in range(3):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    return r


def request(method: str = "INVITE", branch: str = "z9hG4bKc1", call: str = "c1") -> Request:
    data = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch={branch}\r\n"
        "From: <sip:sipp@127.0.0.9:5099>;tag=f1\r\nTo: <sip:service@127.0.0.1:5060>\r\n"
        f"Call-ID: {call}\r\nCSeq: 1 {method}\r\nContact: <sip:sipp@127.0.0.9:5099>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def answer(send: Send, status: int) -> Response:
    sent = parse_message(send.data)
    assert isinstance(sent, Request)
    resp = parse_message(bytes(build_response(sent, status, to_tag="s1")))
    assert isinstance(resp, Response)
    return resp


class Pair:
    """An active and its standby, the standby fed over the replication wire either by one
    snapshot taken when asked (``snapshot``) or by the journal streamed since the start
    (``deltas``)."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.active = make_router()
        self.standby = make_router()
        if how == "deltas":
            self.active.state.journal = True
            self._ship(ReplSnapshot(0, self.active.state.snapshot(0.0)), 0.0)

    def _ship(self, msg: ReplSnapshot | ReplDeltas, now: float) -> None:
        [got] = FrameDecoder().feed(encode_frame(msg))
        if isinstance(got, ReplSnapshot):
            self.standby.state.apply(got.state, now)
        else:
            assert isinstance(got, ReplDeltas)
            for delta in got.deltas:
                self.standby.state.apply_delta(delta, now)

    def replicate(self, now: float) -> Router:
        if self.how == "snapshot":
            self._ship(ReplSnapshot(1, self.active.state.snapshot(now)), now)
        else:
            self._ship(ReplDeltas(1, self.active.state.drain_deltas()), now)
        return self.standby


MODES = pytest.mark.parametrize("how", ["snapshot", "deltas"])


@MODES
def test_the_new_active_fails_over_an_invite_the_old_one_forwarded(how: str) -> None:
    pair = Pair(how)
    active = pair.active
    [first] = active.on_request(request(), UAC, now=0.0)
    standby = pair.replicate(now=0.1)
    assert standby.next_deadline() <= 0.2
    expected = active.on_timer(0.35)
    got = standby.on_timer(0.35)
    retries = [s for s in got if parse_message(s.data).method == "INVITE"]  # type: ignore[union-attr]
    assert len(retries) == 1
    assert retries[0].peer != first.peer
    assert got == expected
    assert standby.stats.failovers == 1


@MODES
def test_a_cancelled_invite_stays_cancelled_on_the_new_active(how: str) -> None:
    pair = Pair(how)
    active = pair.active
    [first] = active.on_request(request(), UAC, now=0.0)
    active.on_response(answer(first, 180), first.peer, now=0.05)
    active.on_request(request("CANCEL"), UAC, now=0.1)
    standby = pair.replicate(now=0.15)
    expected = active.on_response(answer(first, 503), first.peer, now=0.2)
    got = standby.on_response(answer(first, 503), first.peer, now=0.2)
    assert [s.peer for s in got] == [UAC]  # the caller gets the answer, no server a new INVITE
    assert got == expected
    assert standby.stats.failovers == 0


@MODES
def test_a_finished_transaction_leaves_the_standby_too(how: str) -> None:
    pair = Pair(how)
    active = pair.active
    [first] = active.on_request(request(), UAC, now=0.0)
    active.on_response(answer(first, 200), first.peer, now=0.05)
    standby = pair.replicate(now=0.1)
    assert standby.state.pending == {}
    assert standby.on_timer(0.3) == []
    assert standby.dialog_phase("c1") is active.dialog_phase("c1")


def test_silence_from_before_the_promotion_fails_over_without_blaming_the_server() -> None:
    # The server's answer may have gone to the old active while the address moved: the new
    # active retries the INVITE elsewhere, but does not mark the first server failed.
    pair = Pair("deltas")
    [first] = pair.active.on_request(request(), UAC, now=0.0)
    standby = pair.replicate(now=0.1)
    standby.adopt_replicated_health(0.5)
    retries = [s for s in standby.on_timer(0.5)
               if parse_message(s.data).method == "INVITE"]  # type: ignore[union-attr]
    assert len(retries) == 1
    assert retries[0].peer != first.peer
    assert all(s.state is HealthState.ACTIVE for s in standby.servers())
    # A silence it could hear is held against the server as before.
    later = [s for s in standby.on_timer(0.75) if s.peer == retries[0].peer]
    assert later == [] or all(parse_message(s.data).method == "OPTIONS" for s in later)  # type: ignore[union-attr]
    assert standby.find(f"{retries[0].peer.host}:{retries[0].peer.port}").state is (  # type: ignore[union-attr]
        HealthState.SUSPECT
    )


def test_a_standby_following_for_long_holds_no_more_than_the_active() -> None:
    # The standby's timer does not run: its upkeep rides on the deltas it applies, so what
    # its tables hold stays bounded by Timer C as on the active (here 400 s, 800 calls).
    pair = Pair("deltas")
    active, now = pair.active, 0.0
    for n in range(800):
        now = n * 0.5
        [inv] = active.on_request(request(branch=f"z9hG4bKl{n}", call=f"l{n}"), UAC, now=now)
        active.on_response(answer(inv, 200), inv.peer, now=now + 0.01)
        active.on_timer(now + 0.02)
        if n % 10 == 9:
            pair.replicate(now=now + 0.03)
    standby = pair.replicate(now=now + 0.05)
    assert len(standby.state.transactions) == len(active.state.transactions) == 0
    held = standby.state.transactions.held()
    assert held <= active.state.transactions.held() + 2 * 20, held
    assert held < 2 * 380, held  # Timer C's worth of calls, one entry each on wheel and FIFO
