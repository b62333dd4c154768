"""Non-INVITE client transaction (RFC 3261 §17.1.2), UDP and TCP, on virtual time."""

from __future__ import annotations

import pytest

from sipha.sip.transaction import (
    Action,
    CancelTimer,
    ClientNonInviteState,
    ClientNonInviteTransaction,
    ResponseReceived,
    Send,
    Terminate,
    TerminationReason,
    TimerConfig,
    TimerName,
    TransactionTable,
    TransactionUsageError,
    TransportFailed,
    build_cancel,
)
from tests.sip.transaction_helpers import (
    passed_up,
    response,
    run_timers,
    send_times,
    sends,
    sipp_request,
    started,
)


def _txn(
    *, reliable: bool = False, method: str = "OPTIONS", timers: TimerConfig | None = None
) -> tuple[TransactionTable, ClientNonInviteTransaction, list[Action]]:
    table = TransactionTable()
    request = sipp_request(method, transport="TCP" if reliable else "UDP")
    txn = ClientNonInviteTransaction(request, reliable=reliable, timers=timers or TimerConfig())
    actions = table.add(txn, 0.0)
    assert sends(actions) == [request]
    return table, txn, actions


def test_timer_e_doubles_up_to_t2_then_timer_f_times_out() -> None:
    table, txn, actions = _txn()
    assert started(actions) == {"E": 0.5, "F": 32.0}
    log = run_timers(table, 100.0)
    # E: 0.5, 1, 2, 4, 4, 4, ... (capped at T2 = 4).
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1][0] == 32.0
    assert log[-1][2] == Terminate(TerminationReason.TIMEOUT)
    assert txn.termination_reason is TerminationReason.TIMEOUT
    assert len(table) == 0


def test_small_t2_caps_sooner() -> None:
    table, _, _ = _txn(timers=TimerConfig(t1=0.5, t2=1.0))
    log = run_timers(table, 5.0)
    assert send_times(log) == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_provisional_keeps_retransmitting_at_t2() -> None:
    table, txn, _ = _txn()
    run_timers(table, 1.0)  # E fired at 0.5, next at 1.5 (interval 1)
    trying = response(txn.request, 100)
    actions = table.handle(txn, ResponseReceived(trying), 1.2)
    assert passed_up(actions) == [trying]
    assert txn.state is ClientNonInviteState.PROCEEDING
    assert started(actions) == {}  # E and F keep running
    log = run_timers(table, 100.0)
    # The pending E fires at 1.5, then every T2 (§17.1.2.2), until F at 32.
    assert send_times(log) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert log[-1][0] == 32.0
    assert log[-1][2] == Terminate(TerminationReason.TIMEOUT)


@pytest.mark.parametrize("status", [200, 202, 404, 503])
def test_final_response_completes_and_timer_k_ends(status: int) -> None:
    table, txn, _ = _txn()
    final = response(txn.request, status)
    actions = table.handle(txn, ResponseReceived(final), 0.7)
    assert passed_up(actions) == [final]
    assert started(actions) == {"K": 5.0}
    assert CancelTimer(TimerName.E) in actions
    assert CancelTimer(TimerName.F) in actions
    assert txn.state is ClientNonInviteState.COMPLETED
    # Retransmitted finals and late provisionals are absorbed.
    assert table.handle(txn, ResponseReceived(response(txn.request, status)), 1.0) == []
    assert table.handle(txn, ResponseReceived(response(txn.request, 100)), 1.0) == []
    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(5.7, Terminate(TerminationReason.COMPLETED))]


def test_tcp_never_retransmits_and_ends_on_final() -> None:
    table, txn, actions = _txn(reliable=True)
    assert started(actions) == {"F": 32.0}
    table.handle(txn, ResponseReceived(response(txn.request, 100)), 0.1)
    final = response(txn.request, 200)
    actions = table.handle(txn, ResponseReceived(final), 0.2)
    assert passed_up(actions) == [final]
    assert started(actions) == {}  # K is 0 s
    assert actions[-1] == Terminate(TerminationReason.COMPLETED)
    assert len(table) == 0


def test_tcp_timeout_with_timer_f() -> None:
    table, _, _ = _txn(reliable=True)
    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(32.0, Terminate(TerminationReason.TIMEOUT))]


def test_cancel_runs_in_its_own_non_invite_transaction() -> None:
    table = TransactionTable()
    invite = sipp_request()
    cancel = ClientNonInviteTransaction(build_cancel(invite), reliable=False)
    assert sends(table.add(cancel, 0.0)) == [cancel.request]
    ok = response(cancel.request, 200)
    assert table.find_client(ok) is cancel
    assert table.find_client(response(invite, 487)) is None


def test_transport_error_terminates() -> None:
    table, txn, _ = _txn()
    actions = table.handle(txn, TransportFailed(), 0.1)
    assert actions[-1] == Terminate(TerminationReason.TRANSPORT_ERROR)
    assert not [a for a in actions if isinstance(a, Send)]


def test_invite_and_ack_are_refused() -> None:
    for method in ("INVITE", "ACK"):
        with pytest.raises(TransactionUsageError):
            ClientNonInviteTransaction(sipp_request(method), reliable=False)
