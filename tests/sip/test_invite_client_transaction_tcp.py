"""INVITE client transaction over a reliable transport: no Timer A, Timer D is zero."""

from __future__ import annotations

from sipha.sip.transaction import (
    ClientInviteState,
    ClientInviteTransaction,
    ResponseReceived,
    Terminate,
    TerminationReason,
    TransactionTable,
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


def _txn() -> tuple[TransactionTable, ClientInviteTransaction]:
    table = TransactionTable()
    txn = ClientInviteTransaction(sipp_request(transport="TCP"), reliable=True)
    actions = table.add(txn, 0.0)
    assert sends(actions) == [txn.request]
    assert started(actions) == {"B": 32.0}  # no Timer A on reliable transports
    return table, txn


def test_never_retransmits_and_times_out_with_timer_b() -> None:
    table, _ = _txn()
    log = run_timers(table, 100.0)
    assert send_times(log) == []
    assert [(t, a) for t, _, a in log] == [(32.0, Terminate(TerminationReason.TIMEOUT))]


def test_non_2xx_final_acks_and_terminates_at_once() -> None:
    table, txn = _txn()
    table.handle(txn, ResponseReceived(response(txn.request, 180)), 0.1)
    decline = response(txn.request, 603)
    actions = table.handle(txn, ResponseReceived(decline), 0.2)
    assert passed_up(actions) == [decline]
    [ack] = sends(actions)
    assert ack is txn.ack
    assert "TCP" in (ack.get("via") or "")
    assert started(actions) == {}  # Timer D is 0 s: no timer at all
    assert actions[-1] == Terminate(TerminationReason.COMPLETED)
    assert txn.state is ClientInviteState.TERMINATED
    assert len(table) == 0


def test_2xx_still_waits_timer_m() -> None:
    # RFC 6026 §8.4: Timer M is 64*T1 whatever the transport (forked 2xx may still come).
    table, txn = _txn()
    actions = table.handle(txn, ResponseReceived(response(txn.request, 200)), 0.5)
    assert started(actions) == {"M": 32.0}
    assert txn.state is ClientInviteState.ACCEPTED
    log = run_timers(table, 100.0)
    assert [(t, a) for t, _, a in log] == [(32.5, Terminate(TerminationReason.COMPLETED))]
