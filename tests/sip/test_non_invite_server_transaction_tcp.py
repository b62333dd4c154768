"""Non-INVITE server transaction over TCP: Timer J is zero (RFC 3261 §17.2.2, Table 4)."""

from __future__ import annotations

from sipha.sip.transaction import (
    Send,
    ServerNonInviteState,
    ServerNonInviteTransaction,
    Terminate,
    TerminationReason,
    TransactionTable,
    TuResponded,
)
from tests.sip.transaction_helpers import response, sipp_request


def test_final_response_terminates_at_once() -> None:
    table = TransactionTable()
    txn = ServerNonInviteTransaction(sipp_request("BYE", transport="TCP"), reliable=True)
    request = txn.request  # the transaction lets it go at its final
    table.add(txn, 0.0)
    trying = response(request, 100)
    assert table.handle(txn, TuResponded(trying), 0.1) == [Send(trying)]
    ok = response(request, 200)
    actions = table.handle(txn, TuResponded(ok), 0.2)
    assert actions == [Send(ok), Terminate(TerminationReason.COMPLETED)]
    assert txn.state is ServerNonInviteState.TERMINATED
    assert len(table) == 0
    assert table.next_deadline() is None
