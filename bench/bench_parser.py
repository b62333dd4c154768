"""Parser benchmark: sipha's SIP core against sippy's, side by side in one run, one core.

Three measurements on the messages SIPp's built-in ``uac`` scenario sends (an INVITE with SDP)
and receives (a 200 OK with SDP):

- parse: bytes -> message object, plus reading what a proxy must read (Call-ID, CSeq, top Via
  branch), since a parser that defers everything would otherwise measure nothing;
- parse + proxy edit + serialize: the stateful proxy's path: read the same headers, prepend a
  Via, add a Record-Route, decrement Max-Forwards, serialize to bytes.

Run: ``.venv/bin/python bench/bench_parser.py [--seconds 1.0]``. Prints messages per second for
both stacks and the ratio sipha/sippy. ``--builds`` measures sipha's two builds in one run: the
mypyc-compiled core and the pure-Python one (``SIPHA_PURE=1``), each in a child process of its
own, alternating ``--repeats`` times, and prints the medians next to sippy's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from sippy.SipHeader import SipHeader  # type: ignore[import-untyped]
from sippy.SipRequest import SipRequest  # type: ignore[import-untyped]
from sippy.SipResponse import SipResponse  # type: ignore[import-untyped]

from sipha._pure import compiled_modules
from sipha.sip import Request, parse_message

SDP = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: 1-12345@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: sip:sipp@127.0.0.1:5061\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n" + SDP
).encode()

OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>;tag=67890SIPpTag011\r\n"
    "Call-ID: 1-12345@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n" + SDP
).encode()

VIA = "SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-proxy-1"
RR = "<sip:127.0.0.10:5060;lr>"


def sipha_parse(data: bytes) -> object:
    m = parse_message(data)
    return (m.call_id, m.cseq.seq, m.via.branch)


def sipha_edit(data: bytes) -> bytes:
    m = parse_message(data)
    _ = (m.call_id, m.cseq.seq, m.via.branch)
    assert isinstance(m, Request)
    m.decrement_max_forwards()
    m.add_record_route(RR)
    m.push_via(VIA)
    return bytes(m)


def sippy_parse_request(data: bytes) -> object:
    m = SipRequest(data.decode())
    return (str(m.getHFBody("call-id")), m.getHFBody("cseq").getCSeqNum(),
            m.getHFBody("via").getBranch())


def sippy_parse_response(data: bytes) -> object:
    m = SipResponse(data.decode())
    return (str(m.getHFBody("call-id")), m.getHFBody("cseq").getCSeqNum(),
            m.getHFBody("via").getBranch())


def sippy_edit(data: bytes) -> bytes:
    m = SipRequest(data.decode())
    _ = (str(m.getHFBody("call-id")), m.getHFBody("cseq").getCSeqNum(),
         m.getHFBody("via").getBranch())
    m.getHFBody("max-forwards").incNum(-1)
    m.insertHeaderBefore(m.getHFs("via")[0], SipHeader(f"Via: {VIA}"))
    m.insertHeaderBefore(m.getHFs("via")[0], SipHeader(f"Record-Route: {RR}"))
    return str(m).encode()


def rate(fn: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Calls per second of fn(data), best of three windows (the least disturbed)."""
    best = 0.0
    for _ in range(3):
        gc.collect()
        n = 0
        deadline = time.perf_counter() + seconds / 3
        start = time.perf_counter()
        while True:
            for _ in range(200):
                fn(data)
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def _child(seconds: float, pure: bool) -> dict[str, object]:
    env = {**os.environ, "SIPHA_PURE": "1" if pure else "0"}
    out = subprocess.run(
        [sys.executable, __file__, "--seconds", str(seconds), "--json"],
        env=env, check=True, capture_output=True, text=True, timeout=600,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def compare_builds(seconds: float, repeats: int) -> int:
    """Compiled vs pure sipha and sippy, alternating child processes; medians printed."""
    runs: dict[str, list[dict[str, object]]] = {"compiled": [], "pure": []}
    for _ in range(repeats):
        for build in ("compiled", "pure"):
            got = _child(seconds, pure=build == "pure")
            ran = "compiled" if got["compiled_modules"] else "pure"
            if ran != build:
                raise SystemExit(f"asked for the {build} build, the child ran the {ran} one")
            runs[build].append(got)

    def med(build: str, label: str, who: str) -> float:
        return statistics.median(
            float(r["rates"][label][who]) for r in runs[build]  # type: ignore[index]
        )

    print(f"python {sys.version.split()[0]}, one core, {seconds:.1f} s per measurement, "
          f"medians of {repeats} alternating runs per build (sippy: all {2 * repeats} runs)")
    print(f"{'measurement':30} {'compiled':>10} {'pure':>10} {'sippy':>10} "
          f"{'comp/pure':>9} {'comp/sippy':>10} {'pure/sippy':>10}")
    for label in ("parse INVITE", "parse 200 OK", "parse+edit+serialize INVITE"):
        c, p = med("compiled", label, "sipha"), med("pure", label, "sipha")
        y = statistics.median(
            float(r["rates"][label]["sippy"])  # type: ignore[index]
            for r in runs["compiled"] + runs["pure"]
        )
        print(f"{label:30} {c:10,.0f} {p:10,.0f} {y:10,.0f} {c / p:8.2f}x {c / y:9.1f}x "
              f"{p / y:9.1f}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    ap.add_argument("--builds", action="store_true",
                    help="compare the compiled and the pure build (child processes)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per build")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.builds:
        return compare_builds(args.seconds, args.repeats)
    # Both stacks must agree on what they read before their speed means anything.
    assert sipha_parse(INVITE) == ("1-12345@127.0.0.1", 1, "z9hG4bK-12345-1-0")
    assert parse_message(sipha_edit(INVITE)).max_forwards == 69
    rows = [
        ("parse INVITE", sipha_parse, sippy_parse_request, INVITE),
        ("parse 200 OK", sipha_parse, sippy_parse_response, OK),
        ("parse+edit+serialize INVITE", sipha_edit, sippy_edit, INVITE),
    ]
    if args.json:
        rates = {
            label: {
                "sipha": rate(ours, data, args.seconds),
                "sippy": rate(theirs, data, args.seconds),
            }
            for label, ours, theirs, data in rows
        }
        print(json.dumps({"compiled_modules": compiled_modules(), "rates": rates}))
        return 0
    build = "compiled" if compiled_modules() else "pure"
    print(f"python {sys.version.split()[0]}, one core, {args.seconds:.1f} s per measurement, "
          f"sipha's {build} build")
    print(f"{'measurement':32} {'sipha msg/s':>12} {'sippy msg/s':>12} {'ratio':>7}")
    worst = float("inf")
    for label, ours, theirs, data in rows:
        a = rate(ours, data, args.seconds)
        b = rate(theirs, data, args.seconds)
        worst = min(worst, a / b)
        print(f"{label:32} {a:12,.0f} {b:12,.0f} {a / b:6.1f}x")
    print(f"lowest ratio: {worst:.1f}x (target >= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
