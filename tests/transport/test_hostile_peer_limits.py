"""Transport limits against hostile peers on loopback: slowloris, many connections from one
address, oversized datagrams. Each costs the node a bounded amount, for a bounded time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import ListenSpec, Peer, SipEndpoint, TransportConfig
from tests.messages import sipp_invite


def _echo(
    config: TransportConfig, transport: str = "tcp"
) -> tuple[SipEndpoint, list[Request | Response]]:
    got: list[Request | Response] = []

    def on_message(msg: Request | Response, peer: Peer) -> None:
        got.append(msg)
        if isinstance(msg, Request):
            ep.send(bytes(build_response(msg, 200, to_tag="t")), peer)

    ep = SipEndpoint([ListenSpec(transport, "127.0.0.1", 0)], on_message, config=config)
    return ep, got


async def _answer(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    msg = parse_message(head, stream=False)
    body = await reader.readexactly(msg.content_length or 0)
    answer = parse_message(head + body)
    assert isinstance(answer, Response)
    return answer


async def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (the endpoint's counters move on the same loop) for 5 s."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_slowloris_is_cut_off_although_every_byte_comes_before_the_idle_timeout() -> None:
    async def main() -> None:
        ep, got = _echo(TransportConfig(tcp_idle_timeout=60.0, tcp_message_timeout=0.5))
        await ep.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.local("tcp").port)
            message = sipp_invite("slow")
            closed = False
            async with asyncio.timeout(10):
                for i in range(len(message)):
                    writer.write(message[i : i + 1])
                    try:
                        await writer.drain()
                    except ConnectionError:
                        closed = True
                        break
                    await asyncio.sleep(0.02)
                    if reader.at_eof() or ep.counters.tcp_closed_slow:
                        closed = True
                        break
            assert closed
            assert ep.counters.tcp_closed_slow == 1
            assert got == []
            writer.close()
        finally:
            await ep.close()

    asyncio.run(main())


def test_a_quiet_pause_between_whole_messages_is_not_slowloris() -> None:
    async def main() -> None:
        ep, _got = _echo(TransportConfig(tcp_idle_timeout=60.0, tcp_message_timeout=0.3))
        await ep.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.local("tcp").port)
            async with asyncio.timeout(10):
                for n in range(3):
                    writer.write(sipp_invite(f"call-{n}"))
                    assert (await _answer(reader)).call_id == f"call-{n}"
                    await asyncio.sleep(0.6)  # twice the message deadline, between messages
            assert ep.counters.tcp_closed_slow == 0
            assert ep.tcp_connections == 1
            writer.close()
        finally:
            await ep.close()

    asyncio.run(main())


def test_connections_from_one_address_are_capped_and_others_still_accepted() -> None:
    async def main() -> None:
        ep, _got = _echo(TransportConfig(max_tcp_per_source=5))
        await ep.start()
        port = ep.local("tcp").port
        conns: list[asyncio.StreamWriter] = []
        try:
            for _ in range(40):
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                conns.append(w)
            c = ep.counters
            await _until(lambda: c.tcp_accepted + c.tcp_refused_per_source >= 40)
            assert ep.tcp_connections == 5
            assert ep.counters.tcp_refused_per_source == 35
            # Another address is not held back by the first one's connections.
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=("127.0.0.2", 0)
            )
            conns.append(writer)
            writer.write(sipp_invite("other-source"))
            async with asyncio.timeout(5):
                assert (await _answer(reader)).call_id == "other-source"
            # Closing the first address's connections frees its share again.
            for w in conns[:-1]:
                w.close()
            await _until(lambda: ep.tcp_connections <= 1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conns.append(writer)
            writer.write(sipp_invite("again"))
            async with asyncio.timeout(5):
                assert (await _answer(reader)).call_id == "again"
        finally:
            for w in conns:
                w.close()
            await ep.close()

    asyncio.run(main())


def test_datagrams_over_the_cap_are_dropped_unread_and_counted() -> None:
    async def main() -> None:
        ep, got = _echo(TransportConfig(max_datagram_size=16 * 1024), transport="udp")
        await ep.start()
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            try:
                target = ("127.0.0.1", ep.local("udp").port)
                big = sipp_invite("big", body="x" * 20_000)
                for _ in range(50):
                    sock.sendto(big, target)
                sock.sendto(sipp_invite("small"), target)
                answer = parse_message(await loop.run_in_executor(None, sock.recv, 65535))
                assert answer.call_id == "small"
                assert [m.call_id for m in got] == ["small"]
                assert ep.counters.oversized_datagrams == 50
            finally:
                await ep.close()

    asyncio.run(main())
