"""The proxy's calls on virtual time, in memory: parallel forking (RFC 3261 §16.6), the best
final (§16.7), CANCEL (§16.10), Timer C (§16.6 step 11), 6xx and late 2xx."""

from __future__ import annotations

import pytest

from sipha.server.proxy_core import ForwardUpstream, Respond, SendBranch
from sipha.server.proxy_rules import CallPhase
from sipha.sip import Request
from sipha.sip.transaction import TerminationReason
from sipha.store import Binding
from tests.server.proxy_harness import TIMER_C, UAC, ProxyHarness


def test_an_invite_forks_to_every_contact_each_in_a_branch_of_its_own() -> None:
    h = ProxyHarness()
    assert h.start(0.0) == {"100>uac", "lookup"}
    assert h.locate(3, 0.0) == {"INVITE>b0", "INVITE>b1", "INVITE>b2"}
    requests = [b.request for b in h.branches]
    assert [str(r.uri) for r in requests] == [f"sip:bob@127.0.0.1:{6000 + i}" for i in range(3)]
    assert len({r.via.branch for r in requests}) == 3
    for r in requests:
        assert r.max_forwards == 69
        assert (r.get("record-route") or "").startswith("<sip:127.0.0.1:5060;lr;ftag=fa")
        assert [v.host for v in r.vias] == ["127.0.0.1", "127.0.0.9"]
    assert h.stats.calls_proxied == 1
    assert h.core.next_deadline() == TIMER_C


def test_the_first_2xx_wins_and_the_other_branches_are_cancelled_once_they_ring() -> None:
    h = ProxyHarness()
    h.fork(3)
    assert h.answer(0, 180) == {"180>uac"}
    assert h.answer(1, 100) == set()  # §16.7 step 5: a 100 is not forwarded
    assert h.answer(2, 200, tag="callee2") == {"200>uac", "CANCEL>b0", "CANCEL>b1"}
    assert h.call.phase is CallPhase.ACCEPTED
    assert h.txn not in h.core.pending
    assert h.core.next_deadline() is None  # Timer C stopped with the final
    # The losers' 487s are absorbed; the winner's retransmitted 2xx goes up again (RFC 6026).
    assert h.answer(0, 487) == set()
    assert h.answer(1, 487) == set()
    assert h.answer(2, 200, tag="callee2") == {"200>uac"}
    ok = [a for a in h.sent if isinstance(a, ForwardUpstream)][-1].response
    assert [v.host for v in ok.vias] == ["127.0.0.9"]  # our Via popped (§16.7 step 3)
    assert h.upstream() == [100, 180, 200, 200]


def test_a_2xx_while_others_are_silent_cancels_them_on_their_first_1xx() -> None:
    h = ProxyHarness()
    h.fork(2)
    assert h.answer(0, 200) == {"200>uac"}  # b1 silent: no CANCEL before a provisional (§9.1)
    assert h.answer(1, 180) == {"CANCEL>b1"}  # and not forwarded: the caller has its 200


def test_caller_cancel_reaches_every_branch_and_the_caller_gets_487() -> None:
    h = ProxyHarness()
    h.fork(3)
    h.answer(0, 180)
    h.answer(1, 183)
    assert h.cancel(2.0) == {"CANCEL>b0", "CANCEL>b1"}
    assert h.answer(2, 180, 2.1) == {"CANCEL>b2", "180>uac"}
    assert h.answer(0, 487, 2.2) == set()
    assert h.answer(1, 487, 2.3) == set()
    assert h.answer(2, 487, 2.4) == {"487>uac"}
    assert h.call.phase is CallPhase.COMPLETED
    cancels = [a for a in h.sent if type(a).__name__ == "SendCancel"]
    assert len(cancels) == 3  # each branch once
    for cancel, branch in zip(cancels, h.branches, strict=True):
        assert cancel.cancel.via.branch == branch.request.via.branch  # matches its INVITE


def test_cancel_during_the_lookup_answers_487_at_once_and_forks_nothing() -> None:
    h = ProxyHarness()
    h.start(0.0)
    assert h.cancel(0.5) == {"487>uac"}
    assert h.locate(2, 1.0) == set()  # the lookup's late answer is dropped
    assert h.branches == []


def test_timer_c_cancels_the_ringing_branches_and_answers_408() -> None:
    h = ProxyHarness()
    h.fork(2, 0.0)
    h.answer(0, 180, 10.0)  # restarts Timer C at 10 s
    assert h.core.next_deadline() == 10.0 + TIMER_C
    assert h.timer(TIMER_C) == set()  # the first deadline is stale
    assert h.timer(10.0 + TIMER_C) == {"CANCEL>b0", "408>uac"}
    assert h.core.next_deadline() is None
    # b1 never rang: it counts as 408, and gets its CANCEL if it rings after all.
    assert h.answer(1, 180, 200.0) == {"CANCEL>b1"}
    assert h.answer(0, 487, 200.1) == set()


def test_late_2xx_from_a_branch_cancelled_by_timer_c_still_reaches_the_caller() -> None:
    h = ProxyHarness()
    h.fork(1, 0.0)
    h.answer(0, 180, 1.0)
    h.timer(1.0 + TIMER_C)
    assert h.upstream() == [100, 180, 408]
    # The callee answered before our CANCEL reached it: the 2xx goes up (statelessly, by the
    # service, since the server transaction has its final), so the caller can ACK and BYE it.
    assert h.answer(0, 200, 1.0 + TIMER_C) == {"200>uac"}


def test_late_2xx_after_the_callers_cancel_goes_up_after_the_487() -> None:
    h = ProxyHarness()
    h.fork(2)
    h.answer(0, 180)
    h.answer(1, 180)
    h.cancel()
    h.answer(0, 487)
    assert h.answer(1, 487) == {"487>uac"}
    assert h.answer(1, 200) == {"200>uac"}  # a 2xx raced our CANCEL on another path


def test_a_6xx_cancels_the_other_branches_and_wins_over_their_487() -> None:
    h = ProxyHarness()
    h.fork(3)
    h.answer(0, 180)
    h.answer(1, 180)
    assert h.answer(2, 603) == {"CANCEL>b0", "CANCEL>b1"}  # not forwarded yet (§16.7 step 5)
    assert h.answer(0, 487) == set()
    assert h.answer(1, 487) == {"603>uac"}


def test_a_6xx_wins_even_after_the_callers_cancel() -> None:
    h = ProxyHarness()
    h.fork(2)
    h.answer(0, 180)
    h.cancel()
    h.answer(1, 603)
    assert h.answer(0, 487) == {"603>uac"}


@pytest.mark.parametrize(
    ("finals", "best"),
    [
        ((486, 404, 480), 404),  # the lowest class, then the lowest status
        ((486, 302, 500), 302),
        ((503, 503, 503), 500),  # §16.7 step 6: 503 is not passed on
        ((486, 408, 600), 600),
    ],
)
def test_best_final_when_every_branch_failed(finals: tuple[int, ...], best: int) -> None:
    h = ProxyHarness()
    h.fork(len(finals))
    for i, status in enumerate(finals):
        h.answer(i, status)
    assert h.upstream() == [100, best]


def test_a_branch_that_times_out_counts_as_408_and_a_dead_one_as_503() -> None:
    h = ProxyHarness()
    h.fork(2)
    assert h.end(0, TerminationReason.TIMEOUT) == set()
    assert h.end(1, TerminationReason.TRANSPORT_ERROR) == {"408>uac"}  # 408 beats 503
    final = [a for a in h.sent if isinstance(a, Respond)][-1].response
    assert final.to_tag  # made by us, with a tag of ours
    h2 = ProxyHarness()
    h2.fork(1)
    assert h2.end(0, TerminationReason.TRANSPORT_ERROR) == {"500>uac"}


@pytest.mark.parametrize(("exists", "status"), [(True, 480), (False, 404)])
def test_no_binding_is_480_for_a_subscriber_and_404_for_nobody(exists: bool, status: int) -> None:
    h = ProxyHarness()
    h.start()
    out = h.run(h.core.on_bindings(h.call, [], user_exists=exists, now=0.1))
    assert out == {f"{status}>uac"}
    assert h.txn not in h.core.pending


def test_a_contact_on_our_own_socket_is_refused_as_a_loop() -> None:
    h = ProxyHarness()
    h.start()
    ours = Binding(aor="bob@sipha.local", contact="sip:bob@127.0.0.1:5060", expires_at=1e12,
                   call_id="x", cseq=1, raw="<sip:bob@127.0.0.1:5060>")
    out = h.run(h.core.on_bindings(h.call, [ours], user_exists=True, now=0.1))
    assert out == {"482>uac"}
    assert h.stats.security == {"loop": 1}


def test_a_non_invite_is_forked_without_100_timer_c_or_cancel() -> None:
    h = ProxyHarness("MESSAGE")
    assert h.start() == {"lookup"}
    assert h.locate(2) == {"MESSAGE>b0", "MESSAGE>b1"}
    assert h.core.next_deadline() is None
    assert h.cancel() == set()  # §9.1: not cancellable
    assert h.answer(1, 200) == {"200>uac"}
    assert h.answer(0, 180) == set()
    assert h.stats.calls_proxied == 0


def test_next_hop_by_route_is_forwarded_without_a_lookup() -> None:
    h = ProxyHarness()
    spec = ("127.0.0.7", 5070, None)
    out = h.run(h.core.to_next_hop(h.request, h.txn, UAC, spec, 0.0))
    assert out == {"100>uac", "INVITE>b0"}
    sent = next(a for a in h.sent if isinstance(a, SendBranch)).branch.request
    assert isinstance(sent, Request)
    assert str(sent.uri) == "sip:bob@sipha.local"  # the Request-URI is left alone
    assert h.branches[0].peer.port == 5070
