"""A sipha server on the Redis Sentinel store while the Redis master is SIGKILLed: every user
registered before the crash stays reachable through the election, REGISTERs sent during it
are held and then acknowledged on the new master (none refused), and afterwards every user
still is reachable and registered."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.common.process import free_port
from sipha.sip import Request, Response, build_response
from sipha.sip.auth import build_credentials, parse_challenge
from sipha.store import make_user, open_store
from tests.server.helpers import Server, SipClient, server
from tests.store.sentinel_cluster import SentinelCluster, sentinel_cluster

N = 10
PASSWORD = "pw"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with sentinel_cluster(tmp_path / "cluster") as c:
        yield c


def _add_users(url: str) -> None:
    async def add() -> None:
        store = open_store(url)
        try:
            await store.add_users(make_user(f"u{i}", "sipha.local", PASSWORD) for i in range(N))
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(add(), timeout=30))


def _answer_options(ua: SipClient, stop: threading.Event) -> None:
    """The UA's side: answer every proxied OPTIONS with 200 until told to stop."""
    while not stop.is_set():
        try:
            msg = ua.recv(timeout=0.2)
        except TimeoutError:
            continue
        if isinstance(msg, Request) and msg.method == "OPTIONS":
            ua.send(bytes(build_response(msg, 200)))


def _reach_everyone(srv: Server, uas: list[SipClient]) -> list[int]:
    """OPTIONS to every user through the server (proxied to the registered contact)."""
    stop = threading.Event()
    threads = [threading.Thread(target=_answer_options, args=(ua, stop)) for ua in uas]
    for t in threads:
        t.start()
    try:
        with SipClient(srv.port) as caller:
            statuses = []
            for i in range(N):
                caller.request("OPTIONS", f"sip:u{i}@127.0.0.1:{srv.port}", from_user="caller")
                statuses.append(caller.recv_final(timeout=10).status)
            return statuses
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def _send_authenticated_register(ua: SipClient, user: str, call_id: str, cseq: int) -> None:
    """Challenge, then the authenticated REGISTER whose answer the caller collects later."""
    ruri = f"sip:127.0.0.1:{ua.server[1]}"
    to = f"<sip:{user}@127.0.0.1>"
    headers = [f"Contact: <sip:{user}@127.0.0.1:{ua.port}>", "Expires: 600"]
    ua.request("REGISTER", ruri, to=to, from_user=user, headers=headers, call_id=call_id,
               cseq=cseq)
    first = ua.recv_final()
    assert first.status == 401, first
    challenge = parse_challenge(first.get("www-authenticate") or "")
    creds = build_credentials(challenge, method="REGISTER", uri=ruri, username=user,
                              password=PASSWORD, cnonce=f"cn{cseq}")
    ua.request("REGISTER", ruri, to=to, from_user=user, call_id=call_id, cseq=cseq + 1,
               headers=[*headers, f"Authorization: {creds}"])


def test_every_user_registered_before_the_crash_stays_reachable(
    tmp_path: Path, cluster: SentinelCluster
) -> None:
    url = cluster.url(hold=20, cache_ttl=60)
    _add_users(url)
    uas = [SipClient(0) for _ in range(N)]
    try:
        # The URL in a config file, as deployed (the flag takes the same string).
        # auth off: the caller's OPTIONS carry no credentials (authorization is
        # test_open_relay.py's; here the store's failover is under test).
        with server(tmp_path, config=f'store = "{url}"\nauth = "off"\n') as srv:
            for i, ua in enumerate(uas):
                ua.server = ("127.0.0.1", srv.port)
                assert ua.register(f"u{i}", PASSWORD, expires=600).status == 200
            assert _reach_everyone(srv, uas) == [200] * N

            cluster.kill(cluster.master_port)
            # During the election: calls are routed (bindings read from the replica) ...
            assert _reach_everyone(srv, uas) == [200] * N
            # ... and REGISTERs wait for a master and a replica to confirm them.
            for i, ua in enumerate(uas):
                _send_authenticated_register(ua, f"u{i}", call_id=f"refresh-{i}", cseq=10)
            cluster.wait_failover()
            cluster.start_redis(cluster.replica_port, replicaof=cluster.master_port)
            finals: list[Response] = [ua.recv_final(timeout=30) for ua in uas]
            assert [r.status for r in finals] == [200] * N, [str(r) for r in finals]

            assert _reach_everyone(srv, uas) == [200] * N
            status = srv.status()
            assert status["registrar"]["registrations"] == 2 * N, status  # type: ignore[index]
            assert status["store_errors"] == 0, status
    finally:
        for ua in uas:
            ua.close()


def test_register_is_refused_503_with_retry_after_when_the_store_cannot_confirm(
    tmp_path: Path,
) -> None:
    """No Sentinel answers (a partition): the REGISTER is not acknowledged, the UA is told
    when to retry, and the server keeps serving."""
    dead = [free_port(kind=socket.SOCK_STREAM) for _ in range(3)]
    hosts = ",".join(f"127.0.0.1:{p}" for p in dead)
    url = f"redis-sentinel://{hosts}/sipha/0?hold=0.5"
    flag = ("--nonce-secret", "configured-secret-of-the-cluster")  # none to read at start
    with server(tmp_path, store=url, extra=flag) as srv, SipClient(srv.port) as ua:
        reply = ua.register("u0", PASSWORD)
        assert reply.status == 503, reply
        assert reply.get("retry-after") == "1"
        assert srv.status()["store_errors"] == 1
