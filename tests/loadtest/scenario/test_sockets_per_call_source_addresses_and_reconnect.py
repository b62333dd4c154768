"""SIPp's socket options on real loopback sockets, checked by the peer that receives:

* ``-t un``: every call sends from its own UDP port (and its ``[local_port]`` says so);
* several ``--local-ip`` addresses: calls take them in turn, as source address and in Via;
* ``-t tn``: every call opens its own TCP connection;
* TCP ``--max-reconnect``: a connection the peer closes is reopened at most that many times,
  after ``--reconnect-sleep``, and the calls on it fail (``tcp_closed``, SIPp's
  -reconnect_close);
* ``--rate-increase``: the rate steps up every interval and the run stops starting calls at
  the increase past ``--rate-max``, as SIPp's.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from sipha.common.process import free_port
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.percall import SocketOptions
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from sipha.loadtest.scenario.schedule import RateSchedule

OPTIONS = """<scenario name="options">
  <send retrans="500"><![CDATA[
    OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
    Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
    From: <sip:probe@[local_ip]:[local_port]>;tag=[call_number]
    To: <sip:[service]@[remote_ip]:[remote_port]>
    Call-ID: [call_id]
    CSeq: [cseq] OPTIONS
    Max-Forwards: 70
    Content-Length: 0
  ]]></send>
  <recv response="200"/>
</scenario>"""
VIA = re.compile(rb"Via: SIP/2\.0/\w+ ([\d.]+):(\d+)")


def _answer(data: bytes) -> bytes:
    keep = [line for line in data.split(b"\r\n")
            if line.split(b":")[0].lower() in (b"via", b"from", b"to", b"call-id", b"cseq")]
    return b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""])


class _Responder(asyncio.DatagramProtocol):
    """Answers every request 200, noting where it came from and what its Via says."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, int]] = []
        self.vias: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sources.append((addr[0], addr[1]))
        m = VIA.search(data)
        assert m is not None
        self.vias.append((m.group(1).decode(), int(m.group(2))))
        assert self.transport is not None
        self.transport.sendto(_answer(data), addr)


async def _udp_run(sockets: SocketOptions, calls: int) -> tuple[ScenarioEngine, _Responder]:
    loop = asyncio.get_running_loop()
    port = free_port("127.0.0.1")
    transport, peer = await loop.create_datagram_endpoint(_Responder,
                                                          local_addr=("127.0.0.1", port))
    try:
        async with asyncio.timeout(20):
            engine = await run_scenario(
                load_scenario_text(OPTIONS, file="options.xml"),
                RunConfig(remote_port=port), RunBounds(rate=50, max_calls=calls),
                seed=1, sockets=sockets)
    finally:
        transport.close()
    return engine, peer


def test_a_udp_socket_per_call() -> None:
    engine, peer = asyncio.run(_udp_run(SocketOptions(per_call=True), 10))
    assert (engine.stats.successful, engine.stats.failed_calls) == (10, 0)
    assert len(set(peer.sources)) == 10  # ten calls, ten source ports
    assert peer.vias == peer.sources  # [local_ip]:[local_port] name each call's own socket


def test_calls_take_the_local_addresses_in_turn() -> None:
    engine, peer = asyncio.run(_udp_run(
        SocketOptions(local_ips=("127.0.0.1", "127.0.0.2")), 10))
    assert (engine.stats.successful, engine.stats.failed_calls) == (10, 0)
    assert Counter(ip for ip, _ in peer.sources) == {"127.0.0.1": 5, "127.0.0.2": 5}
    assert len(set(peer.sources)) == 2  # one socket per address (-t u1)
    assert peer.vias == peer.sources


class _TcpPeer:
    """A TCP peer that answers each message 200, or closes the connection instead."""

    def __init__(self, *, close: bool) -> None:
        self.close = close
        self.connections = 0
        self.messages = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                data = await reader.readuntil(b"\r\n\r\n")
                self.messages += 1
                if self.close:
                    break
                writer.write(_answer(data))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def _tcp_run(peer: _TcpPeer, sockets: SocketOptions, calls: int,
                   recv_timeout: float = 0.0, rate: float = 20) -> ScenarioEngine:
    port = free_port("127.0.0.1")
    server = await asyncio.start_server(peer.handle, "127.0.0.1", port)
    try:
        async with asyncio.timeout(20):
            return await run_scenario(
                load_scenario_text(OPTIONS, file="options.xml"),
                RunConfig(remote_port=port, transport="TCP", recv_timeout=recv_timeout),
                RunBounds(rate=rate, max_calls=calls, drain_timeout=5), seed=1, sockets=sockets)
    finally:
        server.close()


def test_a_tcp_connection_per_call() -> None:
    peer = _TcpPeer(close=False)
    engine = asyncio.run(_tcp_run(peer, SocketOptions(per_call=True), 6))
    assert (engine.stats.successful, engine.stats.failed_calls) == (6, 0)
    assert (peer.connections, peer.messages) == (6, 6)


def test_lost_connections_are_reopened_up_to_max_reconnect() -> None:
    peer = _TcpPeer(close=True)
    sockets = SocketOptions(max_reconnect=1, reconnect_sleep=0.1)
    # A call every 500 ms: each finds the connection (re)opened 100 ms after the last loss.
    engine = asyncio.run(_tcp_run(peer, sockets, 4, recv_timeout=1.0, rate=2))
    s = engine.stats
    assert (s.created, s.successful) == (4, 0)
    # The first connection and one reconnection, each closed under a call (failed with it);
    # past the limit nothing more is sent: the calls left wait for their answer in vain.
    assert peer.connections == 2
    assert s.failed["tcp_closed"] == 2
    assert s.failed["recv_timeout"] == 2


def test_rate_increase_steps_up_and_quits_past_the_max() -> None:
    per_second: list[int] = []

    def on_period(engine: ScenarioEngine, _wall: float) -> None:
        per_second.append(engine.stats.created - sum(per_second))

    async def go() -> ScenarioEngine:
        loop = asyncio.get_running_loop()
        port = free_port("127.0.0.1")
        transport, _ = await loop.create_datagram_endpoint(_Responder,
                                                           local_addr=("127.0.0.1", port))
        try:
            schedule = RateSchedule(rate=10, increase=10, interval=1.0, rate_max=20)
            async with asyncio.timeout(20):
                return await run_scenario(
                    load_scenario_text(OPTIONS, file="options.xml"), RunConfig(remote_port=port),
                    RunBounds(schedule=schedule), seed=1, on_period=on_period, period=1.0)
        finally:
            transport.close()

    engine = asyncio.run(go())
    # 10 calls/s for a second, 20 for the next; the step to 30 is past the maximum: the run
    # stops starting calls there (SIPp's quit), with every call answered.
    assert 9 <= per_second[0] <= 12, per_second
    assert 27 <= engine.stats.created <= 31, per_second
    assert engine.stats.successful == engine.stats.created
