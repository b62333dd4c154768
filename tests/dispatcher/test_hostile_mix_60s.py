"""Issue 14's hostile mix: for 60 seconds, garbage datagrams, a flood of INVITEs from one source,
slowloris TCP connections and replayed credentials hit a dispatcher and the server behind it,
while SIPp makes legitimate authenticated calls (407, then Proxy-Authorization with a fresh
nonce each) from another source through both: not one legitimate call may fail.

Each attacker has its own loopback address (127.0.0.3 ... 127.0.0.6), SIPp 127.0.0.2, so the
dispatcher's per-source limits see them apart, as they would on the Internet."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sipha.sip import Response, parse_message
from tests.dispatcher.test_attacks_through_the_dispatcher import Front, front
from tests.messages import SDP
from tests.server.helpers import SCENARIOS
from tests.server.outside import answer, raw_request
from tests.sipp import run_uac

SECONDS = 60.0
RATE = 10  # legitimate calls a second


def _udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _garbage(f: Front, stop: threading.Event) -> None:
    with _udp("127.0.0.3") as sock:
        n = 0
        while not stop.wait(0.01):
            for port in (f.port, f.server.port):
                sock.sendto(os.urandom(32 + n % 900), ("127.0.0.1", port))
            n += 1


def _flood(f: Front, stop: threading.Event) -> None:
    """INVITEs from one source as fast as a thread sends them (throttled, then banned)."""
    with _udp("127.0.0.4") as sock:
        me = sock.getsockname()[1]
        n = 0
        while not stop.wait(0.002):
            n += 1
            text = raw_request("INVITE", f"sip:service@127.0.0.1:{f.port}", via_port=me,
                               call_id=f"flood{n}", from_uri="sip:alice@sipha.local",
                               to=f"<sip:service@127.0.0.1:{f.port}>", body=SDP)
            sock.sendto(text.replace("127.0.0.1:" + str(me), "127.0.0.4:" + str(me)).encode(),
                        ("127.0.0.1", f.port))
            if n % 200 == 0:
                _drain(sock)


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return


def _slowloris(f: Front, stop: threading.Event) -> None:
    """Connections that send a request a byte a second, reopened when the node cuts them."""
    conns: list[socket.socket] = []
    payload = b"INVITE sip:service@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:9;branch=z"
    try:
        while not stop.wait(1.0):
            while len(conns) < 40:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.5", 0))
                s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", f.port if len(conns) % 2 else f.server.port))
                except OSError:
                    s.close()
                    break
                conns.append(s)
            alive = []
            for s in conns:
                try:
                    s.send(payload[: 1 + int(time.monotonic()) % len(payload)][-1:])
                    alive.append(s)
                except OSError:
                    s.close()
            conns = alive
    finally:
        for s in conns:
            s.close()


def _replays(f: Front, stop: threading.Event, counts: dict[str, int]) -> None:
    """One call authenticated by hand (captured), then its credentials replayed with new
    Call-IDs and branches: each replay must be challenged again, never set up."""
    with _udp("127.0.0.6") as sock:
        me = sock.getsockname()[1]
        ruri = f"sip:service@127.0.0.1:{f.port}"

        def invite(call_id: str, branch: str, auth: str | None) -> bytes:
            headers = [f"Proxy-Authorization: {auth}"] if auth else []
            text = raw_request("INVITE", ruri, via_port=me, call_id=call_id, cseq=2,
                               from_uri="sip:alice@sipha.local", to=f"<{ruri}>",
                               headers=headers, body=SDP, branch=branch)
            return text.replace(f"127.0.0.1:{me}", f"127.0.0.6:{me}").encode()

        def final(call_id: str, deadline: float) -> Response | None:
            # (the captured call's 200 keeps coming: it is never ACKed)
            while time.monotonic() < deadline:
                try:
                    msg = parse_message(sock.recv(65535))
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                if isinstance(msg, Response) and msg.status >= 200 and msg.call_id == call_id:
                    return msg
            return None

        sock.sendto(invite("captured", "z9hG4bKcap1", None), ("127.0.0.1", f.port))
        challenge = final("captured", time.monotonic() + 10)
        assert challenge is not None
        assert challenge.status == 407
        auth = answer(challenge, method="INVITE", uri=ruri, user="alice", password="alicepw")
        sock.sendto(invite("captured", "z9hG4bKcap2", auth), ("127.0.0.1", f.port))
        n = 0
        while not stop.wait(0.2):
            n += 1
            _drain(sock)
            sock.sendto(invite(f"replay{n}", f"z9hG4bKrep{n}", auth), ("127.0.0.1", f.port))
            got = final(f"replay{n}", time.monotonic() + 2)
            if got is not None:
                counts[str(got.status)] = counts.get(str(got.status), 0) + 1


def test_legitimate_calls_all_succeed_through_a_60_second_hostile_mix(tmp_path: Path) -> None:
    stop = threading.Event()
    replies: dict[str, int] = {}
    with front(tmp_path, "--rate-limit", "50", transports=("udp", "tcp")) as f:
        attackers: list[Callable[[Front, threading.Event], None]] = [_garbage, _flood,
                                                                     _slowloris]
        threads = [threading.Thread(target=a, args=(f, stop), daemon=True) for a in attackers]
        threads.append(threading.Thread(target=_replays, args=(f, stop, replies), daemon=True))
        for t in threads:
            t.start()
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                calls = int(RATE * SECONDS)
                load = pool.submit(
                    run_uac, f"127.0.0.1:{f.port}", rate=RATE, calls=calls,
                    local_ip="127.0.0.2", timeout=SECONDS + 60,
                    scenario=("-sf", str(SCENARIOS / "uac_auth.xml"), "-s", "service",
                              "-au", "alice", "-ap", "alicepw",
                              "-auth_uri", f"service@127.0.0.1:{f.port}"),
                )
                result = load.result(timeout=SECONDS + 90)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        assert (result.successful, result.failed) == (calls, 0), result.stdout
        stats = f.stats()
        assert stats["rate_limited"] > 1000  # the flood was refused at the door
        security = f.server.status()["security"]
        assert isinstance(security, dict)
        # Every replay was challenged again (407), none set up a call.
        assert replies.get("407", 0) >= 50, replies
        assert "200" not in replies
        assert security.get("replay", 0) >= 1
        status = f.dispatcher.get("/status", "t0ken")
        assert status["transport"]["malformed"] > 1000
