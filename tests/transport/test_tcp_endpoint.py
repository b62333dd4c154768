"""TCP endpoint on loopback: framing, connection reuse, hostile peers, caps."""

from __future__ import annotations

import asyncio

from sipha.sip import Request, Response, build_response, parse_message
from sipha.sip.parser import Limits
from sipha.transport import ListenSpec, Peer, SipEndpoint, TransportConfig
from tests.messages import sipp_invite


def _echo(config: TransportConfig | None = None) -> tuple[SipEndpoint, list[Request | Response]]:
    got: list[Request | Response] = []

    def on_message(msg: Request | Response, peer: Peer) -> None:
        got.append(msg)
        if isinstance(msg, Request):
            ep.send(bytes(build_response(msg, 200, to_tag="t")), peer)

    ep = SipEndpoint([ListenSpec("tcp", "127.0.0.1", 0)], on_message, config=config)
    return ep, got


async def _read_message(reader: asyncio.StreamReader) -> Request | Response:
    head = await reader.readuntil(b"\r\n\r\n")
    msg = parse_message(head, stream=False)
    body = await reader.readexactly(msg.content_length or 0)
    return parse_message(head + body)


def test_pipelined_messages_in_odd_chunks_are_framed_and_answered_on_the_same_connection() -> None:
    async def main() -> None:
        ep, _got = _echo()
        await ep.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.local("tcp").port)
            stream = sipp_invite("a") + sipp_invite("b") + sipp_invite("c")
            for i in range(0, len(stream), 97):
                writer.write(stream[i : i + 97])
                await writer.drain()
            async with asyncio.timeout(5):
                answers = [await _read_message(reader) for _ in range(3)]
            assert [a.call_id for a in answers] == ["a", "b", "c"]
            assert all(isinstance(a, Response) and a.status == 200 for a in answers)
            assert ep.tcp_connections == 1
            writer.close()
        finally:
            await ep.close()

    asyncio.run(main())


def test_never_ending_header_closes_the_connection_and_others_keep_working() -> None:
    async def main() -> None:
        ep, _got = _echo(TransportConfig(limits=Limits(max_message_size=8192)))
        await ep.start()
        try:
            port = ep.local("tcp").port
            _r, bad = await asyncio.open_connection("127.0.0.1", port)
            bad.write(b"INVITE sip:a@b SIP/2.0\r\nX-Never-Ending: ")
            closed = False
            for _ in range(50):
                bad.write(b"y" * 1024)
                try:
                    await bad.drain()
                except ConnectionError:
                    closed = True
                    break
                await asyncio.sleep(0.01)
                if ep.counters.tcp_closed_bad_framing:
                    closed = True
                    break
            assert closed
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(sipp_invite("good"))
            async with asyncio.timeout(5):
                assert (await _read_message(reader)).call_id == "good"
            writer.close()
        finally:
            await ep.close()

    asyncio.run(main())


def test_connection_cap_refuses_extra_connections() -> None:
    async def main() -> None:
        ep, _got = _echo(TransportConfig(max_tcp_connections=2))
        await ep.start()
        try:
            port = ep.local("tcp").port
            conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
            await asyncio.sleep(0.2)
            assert ep.tcp_connections == 2
            assert ep.counters.tcp_refused == 2
            for _, w in conns:
                w.close()
        finally:
            await ep.close()

    asyncio.run(main())


def test_idle_connections_are_closed() -> None:
    async def main() -> None:
        ep, _got = _echo(TransportConfig(tcp_idle_timeout=0.3))
        await ep.start()
        try:
            reader, _w = await asyncio.open_connection("127.0.0.1", ep.local("tcp").port)
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # the server closed it
            assert ep.counters.tcp_closed_idle == 1
        finally:
            await ep.close()

    asyncio.run(main())


def test_send_to_unreachable_tcp_peer_reports_the_error() -> None:
    async def main() -> None:
        errors: list[Peer] = []
        reported = asyncio.Event()

        def on_error(peer: Peer, data: bytes, exc: Exception) -> None:
            errors.append(peer)
            reported.set()

        ep = SipEndpoint(
            [ListenSpec("udp", "127.0.0.1", 0)], lambda m, p: None, on_send_error=on_error
        )
        await ep.start()
        try:
            ep.send(sipp_invite(), Peer("tcp", "127.0.0.1", 1))
            async with asyncio.timeout(5):
                await reported.wait()
            assert errors == [Peer("tcp", "127.0.0.1", 1)]
        finally:
            await ep.close()

    asyncio.run(main())
