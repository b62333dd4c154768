"""UDP endpoint on loopback: delivery, 400 for answerable garbage, counted drops."""

from __future__ import annotations

import asyncio
import socket
import time

from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import ListenSpec, Peer, SipEndpoint, TransportConfig
from tests.messages import sipp_invite
from tests.sip.malformed_corpus import CORPUS

MAX_DATAGRAM = TransportConfig().max_datagram_size

def _client() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


async def _with_echo_server(body: object) -> None:
    got: list[tuple[Request | Response, Peer]] = []

    def on_message(msg: Request | Response, peer: Peer) -> None:
        got.append((msg, peer))
        if isinstance(msg, Request):
            ep.send(bytes(build_response(msg, 200, to_tag="t")), peer)

    ep = SipEndpoint([ListenSpec("udp", "127.0.0.1", 0)], on_message)
    await ep.start()
    try:
        await body(ep, got)  # type: ignore[operator]
    finally:
        await ep.close()


async def _recv(sock: socket.socket) -> bytes:
    return await asyncio.get_running_loop().run_in_executor(None, sock.recv, 65535)


def test_request_delivered_and_answered_over_udp() -> None:
    async def body(ep: SipEndpoint, got: list[tuple[Request | Response, Peer]]) -> None:
        c = _client()
        c.sendto(sipp_invite(), ("127.0.0.1", ep.local().port))
        resp = parse_message(await _recv(c))
        assert isinstance(resp, Response)
        assert resp.status == 200
        assert got[0][1] == Peer("udp", "127.0.0.1", c.getsockname()[1])
        c.close()

    asyncio.run(_with_echo_server(body))


def test_malformed_corpus_over_udp_gets_400_or_is_dropped_and_counted() -> None:
    async def body(ep: SipEndpoint, got: list[tuple[Request | Response, Peer]]) -> None:
        c = _client()
        port = ep.local().port
        expected_answers = 0
        for _name, data, _status, answerable in CORPUS:
            if not data or len(data) > MAX_DATAGRAM:  # dropped unread (counted)
                continue
            c.sendto(data, ("127.0.0.1", port))
            if answerable:
                expected_answers += 1
                # The answer echoes the broken headers, so read only its status line.
                status_line = (await _recv(c)).split(b"\r\n", 1)[0]
                assert status_line[:9] == b"SIP/2.0 4" or status_line[:9] == b"SIP/2.0 5"
                assert b"(" in status_line  # the parser's reason rides in the phrase
        # After all that, good traffic still flows.
        c.sendto(sipp_invite("after"), ("127.0.0.1", port))
        ok = parse_message(await _recv(c))
        assert ok.call_id == "after"
        assert ep.counters.answered_400 == expected_answers
        assert ep.counters.malformed >= expected_answers
        assert ep.counters.dropped >= 1
        assert [m.call_id for m, _ in got] == ["after"]
        c.close()

    asyncio.run(_with_echo_server(body))


def test_crlf_keepalive_is_not_counted_as_malformed() -> None:
    async def body(ep: SipEndpoint, got: list[tuple[Request | Response, Peer]]) -> None:
        c = _client()
        c.sendto(b"\r\n\r\n", ("127.0.0.1", ep.local().port))
        c.sendto(sipp_invite(), ("127.0.0.1", ep.local().port))
        await _recv(c)
        assert ep.counters.keepalives == 1
        assert ep.counters.malformed == 0
        c.close()

    asyncio.run(_with_echo_server(body))


def test_drain_reads_what_already_arrived_and_no_more_than_its_limit() -> None:
    # A node calls drain() before judging a peer silent: the datagrams queued while its loop
    # was busy are handed over at once, in order, through the same receive path; the limit
    # keeps a loaded socket from holding the loop.
    async def body(ep: SipEndpoint, got: list[tuple[Request | Response, Peer]]) -> None:
        c = _client()
        port = ep.local().port
        for i in range(10):
            c.sendto(sipp_invite().replace(b"Call-ID: ", f"Call-ID: d{i}-".encode()),
                     ("127.0.0.1", port))
        # Block the loop on purpose (as a stall would): all ten queue, none is polled.
        time.sleep(0.2)  # noqa: ASYNC251
        assert ep.drain(limit=3) == 3
        assert [m.call_id.split("-")[0] for m, _ in got] == ["d0", "d1", "d2"]
        assert ep.drain() == 7
        assert len(got) == 10
        assert ep.drain() == 0
        c.close()

    asyncio.run(_with_echo_server(body))
