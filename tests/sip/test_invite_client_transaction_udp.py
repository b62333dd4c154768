"""INVITE client transaction over UDP (RFC 3261 §17.1.1, RFC 6026 §7.2), on virtual time."""

from __future__ import annotations

import pytest

from sipha.sip.message import Request
from sipha.sip.transaction import (
    CancelTimer,
    ClientInviteState,
    ClientInviteTransaction,
    ResponseReceived,
    Send,
    Terminate,
    TerminationReason,
    TimerConfig,
    TimerFired,
    TimerName,
    TransactionTable,
    TransactionUsageError,
    TransportFailed,
)
from tests.sip.transaction_helpers import (
    passed_up,
    response,
    run_timers,
    send_times,
    sends,
    sipp_request,
    started,
    terminations,
)


def _started_in_table() -> tuple[TransactionTable, ClientInviteTransaction]:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    actions = table.add(txn, 0.0)
    assert sends(actions) == [txn.request]
    assert started(actions) == {"A": 0.5, "B": 32.0}
    return table, txn


def test_retransmits_with_doubling_timer_a_then_times_out_with_timer_b() -> None:
    table, txn = _started_in_table()
    log = run_timers(table, 100.0)
    # A: 0.5, 1, 2, 4, 8, 16 -> retransmissions at these instants; B ends it at 64*T1.
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(a.message is txn.request for _, _, a in log if isinstance(a, Send))
    assert log[-1][0] == 32.0
    assert log[-1][2] == Terminate(TerminationReason.TIMEOUT)
    assert txn.state is ClientInviteState.TERMINATED
    assert txn.termination_reason is TerminationReason.TIMEOUT
    assert len(table) == 0
    assert table.next_deadline() is None


def test_timer_a_scales_with_t1() -> None:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False, timers=TimerConfig(t1=0.1))
    table.add(txn, 10.0)
    log = run_timers(table, 100.0)
    assert send_times(log) == pytest.approx([10.1, 10.3, 10.7, 11.5, 13.1, 16.3])
    assert log[-1][0] == pytest.approx(16.4)


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    table, txn = _started_in_table()
    run_timers(table, 1.0)  # one retransmission at 0.5
    ringing = response(txn.request, 180)
    actions = table.handle(txn, ResponseReceived(ringing), 1.2)
    assert passed_up(actions) == [ringing]
    assert CancelTimer(TimerName.A) in actions
    assert CancelTimer(TimerName.B) in actions
    assert txn.state is ClientInviteState.PROCEEDING
    assert table.next_deadline() is None
    # A further provisional is passed up too; nothing is retransmitted, nothing times out.
    assert passed_up(table.handle(txn, ResponseReceived(response(txn.request, 183)), 2.0))
    assert run_timers(table, 500.0) == []
    assert txn.state is ClientInviteState.PROCEEDING


@pytest.mark.parametrize("provisional_first", [False, True])
def test_non_2xx_final_is_acked_passed_up_and_retransmissions_re_acked(
    provisional_first: bool,
) -> None:
    table, txn = _started_in_table()
    if provisional_first:
        table.handle(txn, ResponseReceived(response(txn.request, 100)), 0.1)
    busy = response(txn.request, 486)
    actions = table.handle(txn, ResponseReceived(busy), 0.2)
    assert passed_up(actions) == [busy]
    [ack] = sends(actions)
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack is txn.ack
    assert started(actions) == {"D": 32.0}
    assert txn.state is ClientInviteState.COMPLETED

    # Retransmitted final: ACK sent again, the TU does not see it twice.
    again = table.handle(txn, ResponseReceived(response(txn.request, 486)), 1.0)
    assert again == [Send(ack)]
    # Stray provisionals and 2xx are absorbed in Completed.
    assert table.handle(txn, ResponseReceived(response(txn.request, 180)), 1.1) == []
    assert table.handle(txn, ResponseReceived(response(txn.request, 200)), 1.2) == []

    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(32.2, Terminate(TerminationReason.COMPLETED))]
    assert txn.terminated


def test_2xx_goes_to_accepted_passes_retransmissions_up_and_ends_with_timer_m() -> None:
    table, txn = _started_in_table()
    ok = response(txn.request, 200)
    actions = table.handle(txn, ResponseReceived(ok), 0.3)
    assert passed_up(actions) == [ok]
    assert sends(actions) == []  # the ACK for 2xx belongs to the TU (§13.2.2.4)
    assert started(actions) == {"M": 32.0}
    assert txn.state is ClientInviteState.ACCEPTED

    # RFC 6026 §7.2: retransmitted 2xx (and 2xx from other forks) go up too.
    retransmitted = response(txn.request, 200)
    assert passed_up(table.handle(txn, ResponseReceived(retransmitted), 1.0)) == [retransmitted]
    forked = response(txn.request, 200, to_tag="fork-2")
    assert passed_up(table.handle(txn, ResponseReceived(forked), 1.5)) == [forked]
    # Non-2xx in Accepted is absorbed.
    assert table.handle(txn, ResponseReceived(response(txn.request, 486)), 2.0) == []

    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(32.3, Terminate(TerminationReason.COMPLETED))]
    assert txn.termination_reason is TerminationReason.COMPLETED
    assert len(table) == 0


def test_transport_error_terminates_and_is_reported() -> None:
    table, txn = _started_in_table()
    actions = table.handle(txn, TransportFailed(), 0.1)
    assert terminations(actions) == [Terminate(TerminationReason.TRANSPORT_ERROR)]
    assert actions[-1] == Terminate(TerminationReason.TRANSPORT_ERROR)
    assert set(actions[:-1]) == {CancelTimer(TimerName.A), CancelTimer(TimerName.B)}
    assert len(table) == 0


def test_stale_timer_and_events_after_termination_are_ignored() -> None:
    _, txn = _started_in_table()
    txn.handle(ResponseReceived(response(txn.request, 180)), 0.1)
    assert txn.handle(TimerFired(TimerName.A), 0.5) == []  # cancelled by the 180
    assert txn.handle(TimerFired(TimerName.B), 32.0) == []
    txn.handle(TransportFailed(), 1.0)
    assert txn.handle(ResponseReceived(response(txn.request, 200)), 2.0) == []
    assert txn.handle(TransportFailed(), 2.0) == []


def test_misuse_raises_usage_error() -> None:
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    with pytest.raises(TransactionUsageError):
        txn.handle(ResponseReceived(response(txn.request, 180)), 0.0)  # before start
    txn.start(0.0)
    with pytest.raises(TransactionUsageError):
        txn.start(0.1)
    with pytest.raises(TransactionUsageError):
        ClientInviteTransaction(sipp_request("OPTIONS"), reliable=False)
