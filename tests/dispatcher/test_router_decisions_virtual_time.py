"""The pure router on virtual time: forwarding, affinity, failover, ghost calls, accounting."""

from __future__ import annotations

import random

import pytest

from sipha.dispatcher.flows import write_flow_token
from sipha.dispatcher.health import HealthState
from sipha.dispatcher.router import Router, RouterSettings, Send
from sipha.dispatcher.servers import parse_server
from sipha.dispatcher.state import DialogPhase, DispatcherState
from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import Peer

UAC = Peer("udp", "127.0.0.9", 5099)
SECRET = b"k" * 16


def make_router(n: int = 3, **kw: object) -> Router:
    settings = RouterSettings(algorithm="rr", **kw)  # type: ignore[arg-type]
    r = Router(settings, advertise=("127.0.0.1", 5060), secret=SECRET, rng=random.Random(1))
    for i in range(n):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    return r


def invite(call: str = "c1", branch: str = "z9hG4bKa1", method: str = "INVITE",
           to_tag: str = "", cseq: int = 1) -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    data = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch={branch}\r\n"
        "From: <sip:sipp@127.0.0.9:5099>;tag=f1\r\n"
        f"To: <sip:service@127.0.0.1:5060>{tag}\r\n"
        f"Call-ID: {call}\r\nCSeq: {cseq} {method}\r\n"
        "Contact: <sip:sipp@127.0.0.9:5099>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def forwarded(send: Send) -> Request:
    msg = parse_message(send.data)
    assert isinstance(msg, Request)
    return msg


def answer(req: Request, status: int, tag: str = "s1") -> Response:
    resp = build_response(req, status, to_tag=tag, headers=[("Contact", "<sip:s@127.0.0.1>")])
    return parse_message(bytes(resp))  # type: ignore[return-value]


def test_initial_invite_gets_signed_via_record_route_and_pending_load() -> None:
    r = make_router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    fwd = forwarded(out)
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    assert fwd.via.host == "127.0.0.1"
    assert fwd.max_forwards == 69
    flow = write_flow_token(UAC, SECRET)  # the caller's flow (edge.py)
    assert fwd.get("record-route") == f"<sip:ds{server.token}-{flow}@127.0.0.1:5060;lr>"
    assert server.pending == 1
    assert server.dest.active_calls == 1


def test_retransmission_goes_to_same_server_with_same_branch() -> None:
    r = make_router()
    [a] = r.on_request(invite(), UAC, now=0.0)
    [b] = r.on_request(invite(), UAC, now=0.1)
    assert a.peer == b.peer
    assert forwarded(a).via.branch == forwarded(b).via.branch


def test_response_pops_our_via_and_goes_back_by_the_next_via() -> None:
    r = make_router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    [back] = r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    assert back.peer == UAC
    resp = parse_message(back.data)
    assert len(resp.vias) == 1
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    assert (server.pending, server.dialogs) == (0, 1)


def test_bye_without_route_follows_affinity_and_ends_accounting() -> None:
    r = make_router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    for i in range(3):  # other calls move the rr cursor
        r.on_request(invite(call=f"x{i}", branch=f"z9hG4bKx{i}"), UAC, now=0.02)
    [bye] = r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert bye.peer == out.peer
    assert r.dialog_phase("c1") is DialogPhase.IDLE
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    assert server.dialogs == 0


def test_in_dialog_request_with_our_route_goes_to_named_server_without_lookup() -> None:
    r = make_router()
    target = r.servers()[2]
    msg = invite(method="BYE", call="unknown", to_tag="s1", branch="z9hG4bKr")
    msg.insert_header("Route", target.route)
    [out] = r.on_request(msg, UAC, now=0.0)
    assert out.peer == target.peer
    assert not forwarded(out).has("route")


def test_no_answer_within_failover_timeout_retries_next_server_and_marks_first() -> None:
    r = make_router()
    assert r.on_timer(0.0) == []  # first tick: nothing probed (probing off)
    [first] = r.on_request(invite(), UAC, now=0.0)
    assert r.next_deadline() == 0.2
    assert r.on_timer(0.19) == []
    sends = r.on_timer(0.2)
    retry = [s for s in sends if forwarded(s).method == "INVITE"]
    assert len(retry) == 1
    assert retry[0].peer != first.peer
    failed = r.find(f"{first.peer.host}:{first.peer.port}")
    assert failed is not None
    assert failed.state is HealthState.SUSPECT
    assert "no response within 200 ms" in r.changes[-1].cause
    assert failed.pending == 0
    assert r.stats.failovers == 1


def test_503_is_acked_and_failed_over() -> None:
    r = make_router()
    [first] = r.on_request(invite(), UAC, now=0.0)
    sends = r.on_response(answer(forwarded(first), 503), first.peer, now=0.01)
    methods = [(forwarded(s).method, s.peer) for s in sends]
    assert ("ACK", first.peer) in methods
    assert any(m == "INVITE" and p != first.peer for m, p in methods)


def test_late_2xx_from_abandoned_server_after_winner_is_acked_and_byed() -> None:
    r = make_router()
    [first] = r.on_request(invite(), UAC, now=0.0)
    [retry] = [s for s in r.on_timer(0.2) if forwarded(s).method == "INVITE"]
    [up] = r.on_response(answer(forwarded(retry), 200, tag="win"), retry.peer, now=0.25)
    assert up.peer == UAC
    late = r.on_response(answer(forwarded(first), 200, tag="ghost"), first.peer, now=0.3)
    assert sorted(forwarded(s).method for s in late) == ["ACK", "BYE"]
    assert all(s.peer == first.peer for s in late)
    assert r.stats.ghost_calls_ended == 1
    winner = r.find(f"{retry.peer.host}:{retry.peer.port}")
    assert winner is not None
    assert winner.dialogs == 1


def test_first_2xx_wins_even_from_the_abandoned_attempt() -> None:
    r = make_router()
    [first] = r.on_request(invite(), UAC, now=0.0)
    r.on_timer(0.2)
    [up] = r.on_response(answer(forwarded(first), 200), first.peer, now=0.21)
    assert up.peer == UAC
    slow = r.find(f"{first.peer.host}:{first.peer.port}")
    assert slow is not None
    assert slow.dialogs == 1
    assert sum(s.pending for s in r.servers()) == 0


def test_cancel_without_transaction_gets_481_and_forged_response_is_dropped() -> None:
    r = make_router()
    [out] = r.on_request(invite(method="CANCEL", call="nope", branch="z9hG4bKn"), UAC, 0.0)
    assert parse_message(out.data).status == 481  # type: ignore[union-attr]
    forged = answer(invite(), 200)
    assert r.on_response(forged, UAC, now=0.0) == []
    assert r.stats.foreign_responses == 1


def test_no_usable_server_answers_503() -> None:
    r = make_router(n=1)
    r.set_state(r.servers()[0], HealthState.DRAINING, 0.0, "test")
    [out] = r.on_request(invite(), UAC, now=0.0)
    assert parse_message(out.data).status == 503  # type: ignore[union-attr]


def test_rate_limit_drops_excess_requests_per_source_but_not_servers() -> None:
    r = make_router(rate_limit=2)
    results = [r.on_request(invite(call=f"c{i}", branch=f"z9hG4bK{i}"), UAC, 0.0) for i in range(4)]
    assert [len(x) for x in results] == [1, 1, 0, 0]
    assert r.stats.rate_limited == 2
    assert len(r.on_request(invite(call="c9", branch="z9hG4bK9"), UAC, 1.5)) == 1


def test_dialogs_expire_and_snapshot_round_trips() -> None:
    r = make_router(dialog_timeout=10.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    snap = r.state.snapshot(now=1.0)
    other = make_router()
    other.state.apply(snap, now=100.0)
    assert other.state.dialogs["c1"].phase is DialogPhase.CONFIRMED
    assert sum(s.dialogs for s in other.servers()) == 1
    r.on_timer(12.0)
    assert "c1" not in r.state.dialogs
    assert sum(s.dest.active_calls for s in r.servers()) == 0


def test_journal_records_deltas_that_replay_on_a_standby() -> None:
    active = make_router()
    active.state.journal = True
    [out] = active.on_request(invite(), UAC, now=0.0)
    active.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    standby = DispatcherState()
    for s in active.state.servers.values():
        standby.servers[s.uid] = type(s)(s.uid, type(s.dest)(s.id), s.uri, s.peer,
                                         probing=False, settings=s.health.settings)
    for delta in active.state.drain_deltas():
        standby.apply_delta(delta, now=5.0)
    assert standby.dialogs["c1"].phase is DialogPhase.CONFIRMED


def test_new_active_learns_a_dialog_it_never_heard_of_from_the_signed_response() -> None:
    # The old active forwarded the INVITE and died before replicating it: the new active (same
    # secret, same servers) sees only the server's answers. The signed branch names the server,
    # so the caller's ACK and BYE (no Route) go there and the call is counted there.
    old, new = make_router(), make_router()
    for _ in range(2):  # move the old active's rr cursor off the new one's
        old.on_request(invite(call="warm", branch="z9hG4bKw"), UAC, now=0.0)
    [out] = old.on_request(invite(), UAC, now=0.0)
    fwd = forwarded(out)
    [ringing] = new.on_response(answer(fwd, 180), out.peer, now=0.01)
    assert ringing.peer == UAC
    assert new.dialog_phase("c1") is DialogPhase.EARLY
    [ok] = new.on_response(answer(fwd, 200), out.peer, now=0.02)
    assert ok.peer == UAC
    assert new.dialog_phase("c1") is DialogPhase.CONFIRMED
    server = new.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    assert (server.pending, server.dialogs) == (0, 1)
    for i in range(3):  # other calls move the new active's rr cursor
        new.on_request(invite(call=f"x{i}", branch=f"z9hG4bKx{i}"), UAC, now=0.03)
    [ack] = new.on_request(invite(method="ACK", branch="z9hG4bKk", to_tag="s1"), UAC, 0.04)
    [bye] = new.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert ack.peer == bye.peer == out.peer
    assert server.dialogs == 0


def _confirmed_call(r: Router) -> Send:
    [out] = r.on_request(invite(), UAC, now=0.0)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    return out


@pytest.mark.parametrize("state", [HealthState.SUSPECT, HealthState.DRAINING,
                                   HealthState.DISABLED])
def test_a_server_not_known_down_keeps_its_dialogs(state: HealthState) -> None:
    r = make_router()
    out = _confirmed_call(r)
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    server.health.state = state
    server.dest.usable = False
    [ack] = r.on_request(invite(method="ACK", branch="z9hG4bKk", to_tag="s1"), UAC, 0.5)
    [bye] = r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert ack.peer == bye.peer == out.peer
    assert r.stats.dialogs_rescued == 0


def test_a_server_known_down_hands_its_dialogs_to_another() -> None:
    r = make_router()
    out = _confirmed_call(r)
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    r.set_state(server, HealthState.INACTIVE, 0.5, "test")
    [bye] = r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert bye.peer != out.peer
    assert r.stats.dialogs_rescued == 1


def test_a_suspect_is_probed_at_once_and_a_failed_probe_confirms_it() -> None:
    r = make_router(n=3)
    for s in r.servers():
        s.probing = True
    for probe in r.on_timer(0.0):  # the first round of probes, all answered
        r.on_response(answer(forwarded(probe), 200), probe.peer, now=0.01)
    [first] = r.on_request(invite(), UAC, now=0.05)
    # No answer within 200 ms: failover, suspicion, and a probe in the same tick (the next
    # round is due at 0.5).
    sends = r.on_timer(0.25)
    server = r.find(f"{first.peer.host}:{first.peer.port}")
    assert server is not None
    assert server.state is HealthState.SUSPECT
    probes = [s for s in sends if forwarded(s).method == "OPTIONS" and s.peer == first.peer]
    assert len(probes) == 1
    [retry] = [s for s in sends if forwarded(s).method == "INVITE"]
    r.on_response(answer(forwarded(retry), 200), retry.peer, now=0.26)
    r.on_timer(0.25 + r.settings.probe.timeout)  # unanswered: the suspicion is confirmed
    assert server.state is HealthState.INACTIVE
    assert [s.state for s in r.servers() if s is not server] == [HealthState.ACTIVE] * 2


def test_after_a_takeover_a_retransmitted_invite_reaches_the_same_server_same_branch() -> None:
    # The standby learnt only the streamed deltas (the INVITE's early dialog), not the open
    # transaction itself. The branch we send is derived from the client's transaction key and
    # the server, so the new active's retry is a retransmission to the server, not a new call.
    active = make_router()
    active.state.journal = True
    for i in range(2):  # the standby's rr cursor must not happen to agree
        active.on_request(invite(call=f"warm{i}", branch=f"z9hG4bKw{i}"), UAC, now=0.0)
    [first] = active.on_request(invite(), UAC, now=0.0)
    standby = make_router()
    for delta in active.state.drain_deltas():
        standby.state.apply_delta(delta, now=0.3)
    [again] = standby.on_request(invite(), UAC, now=0.5)
    assert again.peer == first.peer
    assert forwarded(again).via.branch == forwarded(first).via.branch


def test_a_2xx_retransmitted_after_the_bye_is_not_a_new_call() -> None:
    # The server retransmits its 200 because the caller's ACK was late; by then the BYE went
    # by and the dialog is idle (lingering for retransmissions): nothing must be counted again.
    r = make_router()
    out = _confirmed_call(r)
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert (server.calls_total, server.dialogs) == (1, 0)
    [late] = r.on_response(answer(forwarded(out), 200), out.peer, now=1.1)
    # ACKed here for the caller, who had its 2xx (it sent the BYE) and, past its BYE, would
    # take another for an error (SIPp aborts the call); the server stops retransmitting.
    assert late.peer == out.peer
    assert forwarded(late).method == "ACK"
    assert r.stats.ghost_calls_ended == 0
    assert (server.calls_total, server.dialogs) == (1, 0)
    assert r.dialog_phase("c1") is DialogPhase.IDLE


def test_silence_is_due_only_when_a_failover_deadline_or_probe_timeout_came() -> None:
    # The service reads its sockets before on_timer judges silence, and only then: under
    # steady load that read must not run on every timer tick.
    r = make_router()
    r.on_timer(0.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    assert not r.silence_due(0.1)
    assert r.silence_due(0.2)
    r.on_response(answer(forwarded(out), 180), out.peer, now=0.15)
    assert not r.silence_due(0.3)  # answered: no failover deadline any more
    for s in r.servers():
        s.probing = True
    r.set_state(r.servers()[0], HealthState.ACTIVE, 0.3, "test")  # probe at the next tick
    r.on_timer(0.3)  # probes go out
    assert not r.silence_due(0.3 + r.settings.probe.timeout - 0.01)
    assert r.silence_due(0.3 + r.settings.probe.timeout)


def test_a_provisional_overtaken_by_the_final_answer_is_dropped() -> None:
    # Delay with jitter reorders datagrams: the 180 may arrive after the 200 it preceded.
    # The transaction is over (RFC 6026's Accepted state, Kamailio's tm drop it too); SIPp's
    # uac would abort the call on an unexpected 180.
    r = make_router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    [up] = r.on_response(answer(forwarded(out), 200), out.peer, now=0.03)
    assert up.peer == UAC
    assert r.on_response(answer(forwarded(out), 180), out.peer, now=0.04) == []
    assert r.on_response(answer(forwarded(out), 100), out.peer, now=0.04) == []
    assert r.stats.stale_responses_dropped == 2
    [again] = r.on_response(answer(forwarded(out), 200), out.peer, now=0.05)
    assert again.peer == UAC  # a retransmitted 2xx still goes up: the caller ACKs it


def test_a_failure_for_an_answered_call_never_reaches_the_caller() -> None:
    # The 487 of an attempt cancelled because another server answered, arriving after its
    # transaction left the table (a takeover in between): the caller has its 200.
    r = make_router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.03)
    assert r.on_response(answer(forwarded(out), 487), out.peer, now=0.04) == []
    assert r.stats.stale_responses_dropped == 1
    # A failure of a call that never got a 2xx still goes up (the caller ACKs it).
    [out2] = r.on_request(invite(call="c2", branch="z9hG4bK2"), UAC, now=1.0)
    [up] = r.on_response(answer(forwarded(out2), 486), out2.peer, now=1.01)
    assert up.peer == UAC


def test_when_every_server_is_suspect_a_suspect_takes_the_call_not_a_503() -> None:
    # All failover deadlines fire together after our own stall: every server turns suspect
    # at once. One silent transaction is weak evidence; a 503 would lose the next calls.
    r = make_router(n=2, max_attempts=1)
    r.on_request(invite(call="c1", branch="z9hG4bK1"), UAC, now=0.0)
    r.on_request(invite(call="c2", branch="z9hG4bK2"), UAC, now=0.0)
    r.on_timer(0.2)  # one late wake-up: both deadlines passed
    assert [s.state for s in r.servers()] == [HealthState.SUSPECT] * 2
    [out] = r.on_request(invite(call="c9", branch="z9hG4bK9"), UAC, now=0.21)
    assert forwarded(out).method == "INVITE"
    assert r.stats.no_server == 0
    for server in r.servers():
        r.set_state(server, HealthState.INACTIVE, now=0.2, cause="probe failed")
    [refused] = r.on_request(invite(call="c10", branch="z9hG4bK10"), UAC, now=0.3)
    assert parse_message(refused.data).status == 503  # confirmed down: nobody to try


def test_the_answer_of_a_rescued_dialog_is_acked_not_ended() -> None:
    # A lossy link: two lost probes call a live server down, and the caller's ACK is rescued
    # to another server. The first server, never ACKed, retransmits its 2xx: the same answer
    # (same To tag), not a ghost. The dispatcher ACKs it; a BYE would end the live call.
    r = make_router()
    out = _confirmed_call(r)
    first = r.find(f"{out.peer.host}:{out.peer.port}")
    assert first is not None
    r.set_state(first, HealthState.INACTIVE, 0.5, "two probes lost")
    [ack] = r.on_request(invite(method="ACK", branch="z9hG4bKk", to_tag="s1"), UAC, 0.6)
    assert ack.peer != out.peer
    sends = r.on_response(answer(forwarded(out), 200), out.peer, now=1.0)
    assert [(forwarded(s).method, s.peer) for s in sends] == [("ACK", out.peer)]
    assert r.stats.ghost_calls_ended == 0
    [bye] = r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 2.0)
    assert bye.peer == ack.peer  # the call ends where its dialog went


def test_a_retransmitted_bye_goes_to_its_server_and_a_rescuer() -> None:
    # The first BYE went to the dialog's server, which was then called down. Either it got
    # there and its 200 was lost (a lossy link: only it can answer, the call is gone from the
    # store) or it did not (the server is cut off: another must answer). Both get it; the
    # rescuer's 481 (call gone) does not reach the caller, a 200 does.
    r = make_router()
    out = _confirmed_call(r)
    [first] = r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    assert first.peer == out.peer
    server = r.find(f"{out.peer.host}:{out.peer.port}")
    assert server is not None
    r.set_state(server, HealthState.INACTIVE, 1.2, "two probes lost")
    again = invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2)
    rescuer, original = r.on_request(again, UAC, 1.5)
    assert original.peer == out.peer
    assert rescuer.peer != out.peer
    assert r.on_response(answer(forwarded(rescuer), 481), rescuer.peer, now=1.51) == []
    [ok] = r.on_response(answer(forwarded(original), 200), original.peer, now=1.52)
    assert ok.peer == UAC
