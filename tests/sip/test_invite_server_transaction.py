"""INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1), UDP and TCP, virtual time."""

from __future__ import annotations

import pytest

from sipha.sip.message import Response
from sipha.sip.transaction import (
    CancelTimer,
    RequestReceived,
    Send,
    ServerInviteState,
    ServerInviteTransaction,
    Terminate,
    TerminationReason,
    TimerName,
    TransactionTable,
    TransactionUsageError,
    TransportFailed,
    TuResponded,
)
from tests.sip.transaction_helpers import (
    ack_for,
    passed_up,
    response,
    run_timers,
    send_times,
    sends,
    sipp_request,
    started,
)


def _txn(
    *, reliable: bool = False, auto_trying: bool = True
) -> tuple[TransactionTable, ServerInviteTransaction, list[Response]]:
    table = TransactionTable()
    invite = sipp_request(transport="TCP" if reliable else "UDP")
    txn = ServerInviteTransaction(invite, reliable=reliable, auto_trying=auto_trying)
    out = sends(table.add(txn, 0.0))
    assert all(isinstance(m, Response) for m in out)
    return table, txn, out  # type: ignore[return-value]


def test_start_sends_100_trying() -> None:
    _, txn, out = _txn()
    request = txn.request  # the transaction lets it go at its final
    [trying] = out
    assert trying.status == 100
    assert trying.to_tag is None
    assert trying.get_all("via") == request.get_all("via")
    assert trying.cseq == request.cseq
    assert txn.state is ServerInviteState.PROCEEDING


def test_no_trying_when_the_tu_answers_itself() -> None:
    table, txn, out = _txn(auto_trying=False)
    assert out == []
    # A retransmitted INVITE before any provisional: nothing to resend.
    assert table.handle(txn, RequestReceived(sipp_request()), 0.5) == []


def test_retransmitted_invite_resends_last_provisional() -> None:
    table, txn, [trying] = _txn()
    request = txn.request  # the transaction lets it go at its final
    retransmission = sipp_request()
    assert table.find_server(retransmission) is txn
    assert sends(table.handle(txn, RequestReceived(retransmission), 0.5)) == [trying]
    ringing = response(request, 180)
    assert table.handle(txn, TuResponded(ringing), 0.6) == [Send(ringing)]
    assert table.handle(txn, RequestReceived(retransmission), 1.0) == [Send(ringing)]
    assert passed_up(table.handle(txn, RequestReceived(retransmission), 1.0)) == []


def test_non_2xx_final_retransmitted_by_timer_g_until_timer_h() -> None:
    table, txn, _ = _txn()
    request = txn.request  # the transaction lets it go at its final
    busy = response(request, 486)
    actions = table.handle(txn, TuResponded(busy), 1.0)
    assert sends(actions) == [busy]
    assert started(actions) == {"G": 0.5, "H": 32.0}
    assert txn.state is ServerInviteState.COMPLETED
    log = run_timers(table, 100.0)
    # G: 0.5, 1, 2, 4, 4, ... (min(2G, T2)) after the first send at 1.0.
    assert send_times(log) == [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    assert all(a.message == busy for _, _, a in log if isinstance(a, Send))
    assert log[-1][0] == 33.0
    assert log[-1][2] == Terminate(TerminationReason.TIMEOUT)  # no ACK came
    assert len(table) == 0


def test_ack_confirms_stops_g_and_h_and_timer_i_ends() -> None:
    table, txn, _ = _txn()
    request = txn.request  # the transaction lets it go at its final
    busy = response(request, 486)
    table.handle(txn, TuResponded(busy), 1.0)
    run_timers(table, 2.0)  # one G retransmission
    # A retransmitted INVITE in Completed gets the final again.
    assert table.handle(txn, RequestReceived(sipp_request()), 2.1) == [Send(busy)]

    ack = ack_for(request)
    assert table.find_server(ack) is txn
    actions = table.handle(txn, RequestReceived(ack), 2.2)
    assert passed_up(actions) == []  # the ACK of a non-2xx stays in the transaction
    assert started(actions) == {"I": 5.0}
    assert CancelTimer(TimerName.G) in actions
    assert CancelTimer(TimerName.H) in actions
    assert txn.state is ServerInviteState.CONFIRMED

    # ACK and INVITE retransmissions are absorbed while Confirmed.
    assert table.handle(txn, RequestReceived(ack), 3.0) == []
    assert table.handle(txn, RequestReceived(sipp_request()), 3.0) == []
    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(7.2, Terminate(TerminationReason.COMPLETED))]


def test_2xx_moves_to_accepted_with_timer_l() -> None:
    table, txn, _ = _txn()
    request = txn.request  # the transaction lets it go at its final
    ok = response(request, 200)
    actions = table.handle(txn, TuResponded(ok), 0.5)
    assert sends(actions) == [ok]
    assert started(actions) == {"L": 32.0}
    assert txn.state is ServerInviteState.ACCEPTED
    # RFC 6026 §7.1: INVITE retransmissions absorbed (the TU retransmits the 2xx) ...
    assert table.handle(txn, RequestReceived(sipp_request()), 1.0) == []
    # ... the TU's 2xx retransmissions and other 2xx go out ...
    assert table.handle(txn, TuResponded(ok), 1.0) == [Send(ok)]
    # ... a matching ACK goes up instead of being absorbed ...
    ack = ack_for(request)
    assert passed_up(table.handle(txn, RequestReceived(ack), 1.5)) == [ack]
    # ... and a non-2xx now is TU misuse.
    with pytest.raises(TransactionUsageError):
        table.handle(txn, TuResponded(response(request, 486)), 2.0)
    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(32.5, Terminate(TerminationReason.COMPLETED))]


def test_responding_after_final_or_termination_is_misuse() -> None:
    table, txn, _ = _txn()
    request = txn.request  # the transaction lets it go at its final
    table.handle(txn, TuResponded(response(request, 404)), 0.1)
    for status in (180, 200, 404):
        with pytest.raises(TransactionUsageError):
            txn.handle(TuResponded(response(request, status)), 0.2)
    txn.handle(TransportFailed(), 0.3)
    assert txn.state is ServerInviteState.TERMINATED
    with pytest.raises(TransactionUsageError):
        txn.handle(TuResponded(response(request, 200)), 0.4)


def test_status_outside_100_699_is_misuse() -> None:
    _, txn, _ = _txn()
    request = txn.request  # the transaction lets it go at its final
    bad = response(request, 180)
    bad.status = 99
    with pytest.raises(TransactionUsageError):
        txn.handle(TuResponded(bad), 0.1)


def test_tcp_no_timer_g_and_ack_terminates_at_once() -> None:
    table, txn, _ = _txn(reliable=True)
    request = txn.request  # the transaction lets it go at its final
    busy = response(request, 486)
    actions = table.handle(txn, TuResponded(busy), 1.0)
    assert started(actions) == {"H": 32.0}  # H still waits for the ACK on TCP
    actions = table.handle(txn, RequestReceived(ack_for(request)), 1.5)
    assert started(actions) == {}  # Timer I is 0 s
    assert actions[-1] == Terminate(TerminationReason.COMPLETED)
    assert len(table) == 0


def test_tcp_missing_ack_times_out_with_timer_h() -> None:
    table, txn, _ = _txn(reliable=True)
    request = txn.request  # the transaction lets it go at its final
    table.handle(txn, TuResponded(response(request, 500)), 1.0)
    log = run_timers(table, 100.0)
    assert send_times(log) == []
    assert [(t, a) for t, _, a in log] == [(33.0, Terminate(TerminationReason.TIMEOUT))]


def test_tcp_2xx_still_waits_timer_l() -> None:
    table, txn, _ = _txn(reliable=True)
    request = txn.request  # the transaction lets it go at its final
    assert started(table.handle(txn, TuResponded(response(request, 200)), 0.0)) == {
        "L": 32.0
    }


def test_100_trying_echoes_timestamp() -> None:
    # RFC 3261 §8.2.6.1: a 100 (Trying) copies the request's Timestamp.
    invite = sipp_request()
    invite.add_header("Timestamp", "54.2 0.1")
    txn = ServerInviteTransaction(invite, reliable=False)
    [trying] = sends(txn.start(0.0))
    assert trying.get("timestamp") == "54.2 0.1"
