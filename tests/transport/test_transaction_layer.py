"""The asyncio glue of the transaction table on real loopback sockets with a short T1."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from sipha.sip import Request, Response, build_request, build_response, parse_message
from sipha.sip.transaction import (
    AnyTransaction,
    ClientTransaction,
    ServerTransaction,
    TerminationReason,
    TimerConfig,
)
from sipha.transport import ListenSpec, Peer, SipEndpoint
from sipha.transport.transactions import TransactionLayer
from tests.messages import sipp_invite

FAST = TimerConfig(t1=0.01, t2=0.04, t4=0.05, d=0.05)


class Recorder:
    def __init__(self) -> None:
        self.layer: TransactionLayer
        self.requests: list[Request] = []
        self.acks: list[Request] = []
        self.responses: list[tuple[int, Any]] = []
        self.terminated: list[tuple[TerminationReason, Any]] = []
        self.done = asyncio.Event()

    def on_request(self, request: Request, txn: ServerTransaction, peer: Peer) -> None:
        self.requests.append(request)
        self.layer.respond(txn, build_response(request, 486, to_tag="busy"))

    def on_ack(self, request: Request, peer: Peer) -> None:
        self.acks.append(request)

    def on_response(self, response: Response, txn: ClientTransaction, owner: Any) -> None:
        self.responses.append((response.status, owner))

    def on_stray_response(self, response: Response, peer: Peer) -> None:
        pass

    def on_terminated(self, txn: AnyTransaction, reason: TerminationReason, owner: Any) -> None:
        self.terminated.append((reason, owner))
        if owner == "to-nobody":
            self.done.set()


async def _layer() -> tuple[Recorder, SipEndpoint]:
    tu = Recorder()
    tu.layer = TransactionLayer(tu, timers=FAST)
    ep = SipEndpoint([ListenSpec("udp", "127.0.0.1", 0)], tu.layer.receive,
                     on_send_error=tu.layer.transport_failed)
    await ep.start()
    tu.layer.bind(ep.send)
    return tu, ep


def test_server_transaction_absorbs_retransmissions_and_the_ack() -> None:
    async def main() -> None:
        tu, ep = await _layer()
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.bind(("127.0.0.1", 0))
            c.setblocking(False)
            dest = ("127.0.0.1", ep.local().port)
            for _ in range(3):  # the INVITE and two retransmissions
                c.sendto(sipp_invite(), dest)
            answers = [parse_message(await loop.sock_recv(c, 65535)) for _ in range(3)]
            assert [a.status for a in answers] == [486, 486, 486]  # type: ignore[union-attr]
            assert len(tu.requests) == 1  # the TU saw the INVITE once
            # Timer G retransmits the 486 until the ACK arrives.
            again = parse_message(await loop.sock_recv(c, 65535))
            assert isinstance(again, Response)
            ack = bytes(build_request("ACK", "sip:service@127.0.0.1:5060", [
                ("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0"),
                ("From", "sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001"),
                ("To", "service <sip:service@127.0.0.1:5060>;tag=busy"),
                ("Call-ID", "1-12345@127.0.0.1"), ("CSeq", "1 ACK"),
            ]))
            c.sendto(ack, dest)
            await asyncio.sleep(0.3)  # past Timer I: the transaction has ended
            assert tu.acks == []  # absorbed by the transaction, not passed up
            assert len(tu.layer) == 0
        await ep.close()

    asyncio.run(main())


def test_client_transaction_retransmits_then_times_out_to_the_tu() -> None:
    async def main() -> None:
        tu, ep = await _layer()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.setblocking(False)
            port = silent.getsockname()[1]
            request = build_request("OPTIONS", f"sip:127.0.0.1:{port}", [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:{ep.local().port};branch=z9hG4bKlayer1"),
                ("From", "<sip:a@127.0.0.1>;tag=1"), ("To", f"<sip:127.0.0.1:{port}>"),
                ("Call-ID", "layer1"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70"),
            ])
            tu.layer.send_request(request, Peer("udp", "127.0.0.1", port), owner="to-nobody")
            async with asyncio.timeout(5):
                await tu.done.wait()  # Timer F = 64*T1 = 0.64 s
            received = 0
            while True:
                try:
                    silent.recv(65535)
                except BlockingIOError:
                    break
                received += 1
            assert received >= 5  # Timer E retransmissions
            assert tu.terminated == [(TerminationReason.TIMEOUT, "to-nobody")]
            assert tu.responses == []
        await ep.close()

    asyncio.run(main())
