"""Per-call cost of the server's proxy path, without sockets.

One SIPp-like call (INVITE, 100, 180, 200 from the callee, ACK, BYE, 200 OK) through a
``ServerNode`` on an SQLite store holding the callee's binding, messages parsed from bytes as
the transport would do; prints microseconds per call and, with ``--profile``, the cProfile
top entries. The machine's load matters less than in ``bench_server.py`` (no SIPp, no
loopback sends), so it is the finer A/B of a change to the proxy's logic.

Run: ``.venv/bin/python bench/profile_server_path.py [--calls 5000] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from sipha.server.config import ServerConfig
from sipha.server.node import ServerNode
from sipha.sip import Request, Response, build_response, parse_message
from sipha.store import BindingChange, open_store
from sipha.transport import ListenSpec, Peer

UAC = Peer("udp", "127.0.0.9", 5099)
UAS = Peer("udp", "127.0.0.8", 5098)
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"


class Wire:
    """Stands in for the endpoint: keeps what the node sends."""

    tcp_connections = 0

    def __init__(self) -> None:
        self.bound = [ListenSpec("udp", "127.0.0.1", 5060)]
        self.sent: list[tuple[bytes, Peer]] = []

    def send(self, data: bytes, peer: Peer) -> None:
        self.sent.append((data, peer))


def request(method: str, call: str, branch: str, *, to_tag: str = "", route: str = "",
            cseq: int = 1) -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    body = SDP if method == "INVITE" else ""
    ruri = "sip:service@127.0.0.8:5098" if to_tag else "sip:service@127.0.0.1:5060"
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch={branch}\r\n"
        f"{route}From: sipp <sip:sipp@127.0.0.9:5099>;tag=f{call}\r\n"
        f"To: service <sip:service@127.0.0.1:5060>{tag}\r\n"
        f"Call-ID: {call}\r\nCSeq: {cseq} {method}\r\n"
        "Contact: sip:sipp@127.0.0.9:5099\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _last_to(wire: Wire, peer: Peer) -> Request:
    for data, to in reversed(wire.sent):
        if to == peer:
            msg = parse_message(data)
            assert isinstance(msg, Request)
            return msg
    raise AssertionError("nothing sent")


def one_call(node: ServerNode, wire: Wire, n: int) -> None:
    receive = node.layer.receive
    call = f"c{n}"
    receive(parse_message(request("INVITE", call, f"z9hG4bKi{n}")), UAC)
    invite = _last_to(wire, UAS)
    for status in (100, 180, 200):
        resp = build_response(invite, status, to_tag="" if status == 100 else "u1",
                              copy_record_route=status > 100)
        receive(parse_message(bytes(resp)), UAS)
    ok = parse_message(wire.sent[-1][0])
    assert isinstance(ok, Response)
    assert ok.status == 200, ok.status
    route = f"Route: {ok.get('record-route')}\r\n"
    receive(parse_message(request("ACK", call, f"z9hG4bKa{n}", to_tag="u1", route=route)), UAC)
    receive(parse_message(request("BYE", call, f"z9hG4bKb{n}", to_tag="u1", route=route,
                                  cseq=2)), UAC)
    bye = _last_to(wire, UAS)
    receive(parse_message(bytes(build_response(bye, 200))), UAS)
    wire.sent.clear()


async def main_async(calls: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:{Path(tmp) / 'bench.db'}"
        store = open_store(url)
        contact = f"sip:service@{UAS.host}:{UAS.port}"
        await store.update_bindings(
            "service@127.0.0.1", changes=[BindingChange(contact=contact, expires=3600,
                                                        raw=f"<{contact}>")],
            call_id="bench", cseq=1, now=time.time())
        cfg = ServerConfig(domain="127.0.0.1", auth="off", store=url)
        node = ServerNode(cfg, store, nonce_key=b"k" * 32)
        wire = Wire()
        node.attach(wire)  # type: ignore[arg-type]
        for n in range(200):  # warm up
            one_call(node, wire, -n - 1)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        start = time.process_time()
        for n in range(calls):
            one_call(node, wire, n)
        cpu = time.process_time() - start
        if profiler:
            profiler.disable()
        print(f"{cpu / calls * 1e6:.1f} µs CPU per call ({calls} calls)")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        node.close()
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    asyncio.run(main_async(args.calls, args.profile))


if __name__ == "__main__":
    main()
