"""Non-INVITE server transaction over UDP (RFC 3261 §17.2.2), on virtual time."""

from __future__ import annotations

import pytest

from sipha.sip.transaction import (
    RequestReceived,
    Send,
    ServerNonInviteState,
    ServerNonInviteTransaction,
    Terminate,
    TerminationReason,
    TransactionTable,
    TransactionUsageError,
    TuResponded,
)
from tests.sip.transaction_helpers import response, run_timers, sipp_request, started


def _txn() -> tuple[TransactionTable, ServerNonInviteTransaction]:
    table = TransactionTable()
    txn = ServerNonInviteTransaction(sipp_request("REGISTER"), reliable=False)
    assert table.add(txn, 0.0) == []  # the TU answers, the transaction sends nothing itself
    return table, txn


def test_retransmission_absorbed_in_trying_then_last_response_resent() -> None:
    table, txn = _txn()
    request = txn.request  # the transaction lets it go at its final
    again = sipp_request("REGISTER")
    assert table.find_server(again) is txn
    assert table.handle(txn, RequestReceived(again), 0.2) == []  # Trying discards it
    trying = response(request, 100)
    assert table.handle(txn, TuResponded(trying), 0.3) == [Send(trying)]
    assert txn.state is ServerNonInviteState.PROCEEDING
    assert table.handle(txn, RequestReceived(again), 0.5) == [Send(trying)]
    ok = response(request, 200)
    actions = table.handle(txn, TuResponded(ok), 1.0)
    assert actions[0] == Send(ok)
    assert started(actions) == {"J": 32.0}
    assert txn.state.value == "completed"  # (mypy keeps the earlier narrowing)
    assert table.handle(txn, RequestReceived(again), 2.0) == [Send(ok)]


def test_timer_j_ends_completed() -> None:
    table, txn = _txn()
    request = txn.request  # the transaction lets it go at its final
    table.handle(txn, TuResponded(response(request, 403)), 1.0)
    log = run_timers(table, 100.0)
    # No retransmissions of a non-INVITE final: the peer's retransmissions drive them.
    assert [(t, a) for t, _, a in log] == [(33.0, Terminate(TerminationReason.COMPLETED))]
    assert len(table) == 0


def test_second_final_is_misuse() -> None:
    table, txn = _txn()
    request = txn.request  # the transaction lets it go at its final
    table.handle(txn, TuResponded(response(request, 200)), 0.1)
    with pytest.raises(TransactionUsageError):
        table.handle(txn, TuResponded(response(request, 200)), 0.2)
    with pytest.raises(TransactionUsageError):
        table.handle(txn, TuResponded(response(request, 100)), 0.2)


def test_ack_and_other_methods_are_ignored() -> None:
    table, txn = _txn()
    assert table.handle(txn, RequestReceived(sipp_request("ACK")), 0.1) == []
    assert table.handle(txn, RequestReceived(sipp_request("CANCEL")), 0.1) == []
    assert txn.state is ServerNonInviteState.TRYING


def test_invite_and_ack_are_refused() -> None:
    for method in ("INVITE", "ACK"):
        with pytest.raises(TransactionUsageError):
            ServerNonInviteTransaction(sipp_request(method), reliable=False)
