"""Per-call cost of the dispatcher's pure forwarding path, without sockets.

One SIPp-like call (INVITE, 100, 180, 200, ACK, BYE, 200 OK) through ``Router`` with parsing
from bytes as the transport would do; prints microseconds per call and, with ``--profile``, the
cProfile top entries. Use it to see where the hot path spends its time before guessing.

Run: ``.venv/bin/python bench/profile_dispatcher_path.py [--calls 20000] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time

from sipha.dispatcher.router import Router, RouterSettings
from sipha.dispatcher.servers import parse_server
from sipha.sip import Request, build_response, parse_message
from sipha.transport import Peer

UAC = Peer("udp", "127.0.0.9", 5099)
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
)


def request(method: str, call: str, branch: str, to_tag: str = "", body: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch={branch}\r\n"
        "From: sipp <sip:sipp@127.0.0.9:5099>;tag=f1\r\n"
        f"To: service <sip:service@127.0.0.1:5060>{tag}\r\n"
        f"Call-ID: {call}\r\nCSeq: 1 {method if method != 'ACK' else 'ACK'}\r\n"
        "Contact: sip:sipp@127.0.0.9:5099\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def one_call(r: Router, n: int, now: float) -> None:
    call = f"{n}-bench@127.0.0.9"
    [fwd] = r.on_request(parse_message(request("INVITE", call, f"z9hG4bK-{n}-1", body=SDP)),
                         UAC, now)
    server_peer = fwd.peer
    sent = parse_message(fwd.data)
    assert isinstance(sent, Request)
    for status in (100, 180, 200):
        resp = bytes(build_response(sent, status, to_tag="srv", body=SDP.encode()
                                    if status == 200 else b""))
        r.on_response(parse_message(resp), server_peer, now)
    r.on_request(parse_message(request("ACK", call, f"z9hG4bK-{n}-2", "srv")), UAC, now)
    [bye] = r.on_request(parse_message(request("BYE", call, f"z9hG4bK-{n}-3", "srv")), UAC, now)
    sent_bye = parse_message(bye.data)
    assert isinstance(sent_bye, Request)
    r.on_response(parse_message(bytes(build_response(sent_bye, 200))), server_peer, now)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    r = Router(RouterSettings(algorithm="hash-callid"), advertise=("127.0.0.1", 5060),
               secret=b"k" * 16, rng=random.Random(1))
    for i in range(4):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    # The server side's messages are built outside the timed region's meaning: measure them
    # alone and subtract, so the figure is the dispatcher's share.
    prof = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    for n in range(args.calls):
        one_call(r, n, n * 0.001)
    if prof:
        prof.disable()
    total = time.perf_counter() - start
    print(f"{total / args.calls * 1e6:.1f} us per call (dispatcher + building the peers' messages)")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
