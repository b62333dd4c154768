"""Spoofed sources that never ACK cannot make a node a reflector: its retransmissions to a
host that never answered one of its requests draw on a per-host budget (virtual time for the
budget, real loopback sockets and a short T1 for the transaction layer)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sipha.transport import ListenSpec, SipEndpoint
from sipha.transport.reflection import RetransmitBudget
from sipha.transport.transactions import TransactionLayer
from tests.messages import sipp_invite
from tests.transport.test_transaction_layer import FAST, Recorder


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    b = RetransmitBudget(rate=2.0, burst=3.0)
    assert [b.allow("192.0.2.1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow("192.0.2.1", 0.5)  # one token back after 0.5 s at 2/s
    assert not b.allow("192.0.2.1", 0.5)
    assert [b.allow("192.0.2.1", 100.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow("192.0.2.2", 0.0)  # every host has its own bucket
    assert b.suppressed == 3


def test_a_verified_host_is_never_budgeted_and_memory_is_bounded() -> None:
    b = RetransmitBudget(rate=1.0, burst=1.0, max_hosts=4)
    b.verify("192.0.2.9")
    assert all(b.allow("192.0.2.9", 0.0) for _ in range(100))
    for n in range(100):
        b.allow(f"198.51.100.{n}", float(n))
        b.verify(f"203.0.113.{n}")
    assert b.tracked_hosts <= 8
    with pytest.raises(ValueError, match="positive"):
        RetransmitBudget(rate=0)


def _invites(n: int, port: int) -> list[bytes]:
    return [
        sipp_invite(f"refl-{i}").replace(b"z9hG4bK-12345-1-0", f"z9hG4bK-refl-{i}".encode())
        .replace(b"127.0.0.1:5061", f"127.0.0.1:{port}".encode())
        for i in range(n)
    ]


async def _count_answers(budget: RetransmitBudget, *, verified: bool) -> int:
    """50 INVITEs answered 486 and never ACKed: datagrams the source gets until Timer H."""
    tu = Recorder()
    tu.layer = TransactionLayer(tu, timers=FAST, budget=budget)
    ep = SipEndpoint([ListenSpec("udp", "127.0.0.1", 0)], tu.layer.receive)
    await ep.start()
    tu.layer.bind(ep.send)
    loop = asyncio.get_running_loop()
    received = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
            victim.bind(("127.0.0.1", 0))
            victim.setblocking(False)
            if verified:
                budget.verify("127.0.0.1")
            for data in _invites(50, victim.getsockname()[1]):
                victim.sendto(data, ("127.0.0.1", ep.local().port))
            end = loop.time() + 64 * FAST.t1 + 0.3  # past Timer H
            while loop.time() < end:
                try:
                    async with asyncio.timeout(max(0.01, end - loop.time())):
                        await loop.sock_recv(victim, 65535)
                    received += 1
                except TimeoutError:
                    break
    finally:
        await ep.close()
    return received


def test_an_unacked_flood_gets_one_answer_each_and_a_bounded_number_of_retransmissions() -> None:
    budget = RetransmitBudget(rate=10.0, burst=20.0)
    received = asyncio.run(_count_answers(budget, verified=False))
    # One 486 per INVITE, then at most the burst plus the refill (0.94 s at 10/s).
    assert 50 <= received <= 50 + 20 + 10
    assert budget.suppressed > 0


def test_a_host_that_answered_us_gets_every_retransmission() -> None:
    budget = RetransmitBudget(rate=10.0, burst=20.0)
    received = asyncio.run(_count_answers(budget, verified=True))
    # Timer G at 10, 20, 40, 40, ... ms until Timer H (640 ms): well over 200 in all.
    assert received > 50 * 5
    assert budget.suppressed == 0
