"""TransactionTable: matching, one timer heap, removal of terminated transactions."""

from __future__ import annotations

import pytest

from sipha.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    StartTimer,
    TimerName,
    TransactionTable,
    TransactionUsageError,
    TuResponded,
    build_ack_for_non2xx,
    build_cancel,
)
from tests.sip.transaction_helpers import response, run_timers, sipp_request


def test_timers_of_several_transactions_fire_in_deadline_order() -> None:
    table = TransactionTable()
    invite = ClientInviteTransaction(sipp_request(branch="z9hG4bK-a"), reliable=False)
    options = ClientNonInviteTransaction(
        sipp_request("OPTIONS", branch="z9hG4bK-b"), reliable=False
    )
    table.add(invite, 0.0)
    table.add(options, 0.2)
    assert table.next_deadline() == 0.5
    log = run_timers(table, 2.0)
    sent = [(t, txn) for t, txn, a in log if isinstance(a, Send)]
    assert sent == [(0.5, invite), (0.7, options), (1.5, invite), (1.7, options)]
    assert table.next_deadline() == pytest.approx(3.5)


def test_handle_timers_only_fires_due_timers() -> None:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    table.add(txn, 0.0)
    assert table.handle_timers(0.49) == []
    fired = table.handle_timers(0.5)
    assert [a for _, a in fired] == [Send(txn.request), StartTimer(TimerName.A, 1.0)]


def test_late_wakeup_fires_each_due_timer_once() -> None:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    table.add(txn, 0.0)
    # The loop slept past both the A deadline (0.5) and nothing else: one retransmission,
    # re-armed relative to the late 'now'.
    fired = table.handle_timers(1.2)
    assert [a for _, a in fired] == [Send(txn.request), StartTimer(TimerName.A, 1.0)]
    assert table.next_deadline() == pytest.approx(2.2)


def test_find_server_client_and_cancelled_invite() -> None:
    table = TransactionTable()
    invite = sipp_request()
    server = ServerInviteTransaction(invite, reliable=False)
    table.add(server, 0.0)
    assert table.find_server(sipp_request()) is server
    ack = build_ack_for_non2xx(invite, response(invite, 486))
    assert table.find_server(ack) is server
    cancel = build_cancel(invite)
    assert table.find_server(cancel) is None  # its own transaction, not created yet
    assert table.find_cancelled(cancel) is server
    cancel_txn = ServerNonInviteTransaction(cancel, reliable=False)
    table.add(cancel_txn, 0.1)
    assert table.find_server(cancel) is cancel_txn
    # Client and server keys live apart: our own server transaction is no client one.
    assert table.find_client(response(invite, 180)) is None
    assert len(table) == 2
    assert set(map(id, table)) == {id(server), id(cancel_txn)}


def test_duplicate_and_terminated_transactions_are_refused() -> None:
    table = TransactionTable()
    table.add(ServerNonInviteTransaction(sipp_request("OPTIONS"), reliable=False), 0.0)
    with pytest.raises(TransactionUsageError):
        table.add(ServerNonInviteTransaction(sipp_request("OPTIONS"), reliable=False), 0.0)
    done = ServerNonInviteTransaction(sipp_request("BYE", transport="TCP"), reliable=True)
    done.start(0.0)
    done.handle(TuResponded(response(done.request, 200)), 0.0)
    with pytest.raises(TransactionUsageError):
        table.add(done, 0.0)


def test_adding_a_started_transaction_keeps_its_timers() -> None:
    table = TransactionTable()
    txn = ClientNonInviteTransaction(sipp_request("OPTIONS"), reliable=False)
    txn.start(10.0)
    assert table.add(txn, 11.0) == []
    assert table.next_deadline() == 10.5


def test_terminated_transactions_leave_the_table_and_their_timers_die() -> None:
    table = TransactionTable()
    request = sipp_request()
    txn = ServerInviteTransaction(request, reliable=False)
    table.add(txn, 0.0)
    table.handle(txn, TuResponded(response(request, 486)), 0.0)
    assert table.next_deadline() == 0.5
    ack = build_ack_for_non2xx(request, response(request, 486))
    table.handle(txn, RequestReceived(ack), 0.1)
    assert table.next_deadline() == pytest.approx(5.1)  # only Timer I; G and H are dead
    run_timers(table, 10.0)
    assert len(table) == 0
    assert table.find_server(request) is None


def test_remove_forgets_a_transaction() -> None:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    table.add(txn, 0.0)
    table.remove(txn)
    assert table.find_client(response(txn.request, 180)) is None
    assert table.next_deadline() is None
    table.remove(txn)  # idempotent


def test_client_response_routed_through_the_table() -> None:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(), reliable=False)
    table.add(txn, 0.0)
    ok = response(txn.request, 200)
    found = table.find_client(ok)
    assert found is txn
    table.handle(found, ResponseReceived(ok), 0.1)
    assert table.next_deadline() == pytest.approx(32.1)  # Timer M only
