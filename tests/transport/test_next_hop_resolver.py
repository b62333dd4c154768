"""RFC 3263 next-hop resolution against a DNS server started by the test: SRV then A, an
explicit port means A only, TTLs and negative answers cached, a dead DNS server bounded by the
timeout (408), a missing name 503, lookups of one name shared, never another exception."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipha.transport import Peer
from sipha.transport.resolver import ResolveError, Resolver
from tests.dns_server import DnsServer

ZONE = {
    ("_sip._udp.peer.test", "SRV"): ["10 5 5070 b.peer.test.", "0 5 5080 a.peer.test."],
    ("_sip._tcp.tcp.test", "SRV"): ["0 0 5090 a.peer.test."],
    ("a.peer.test", "A"): ["127.0.0.1"],
    ("b.peer.test", "A"): ["127.0.0.2"],
    ("naptr.test", "NAPTR"): ['10 50 "s" "SIP+D2T" "" _sip._tcp.tcp.test.'],
    ("plain.test", "A"): ["127.0.0.3"],
}


def _resolver(dns: DnsServer, timeout: float = 2.0) -> Resolver:
    return Resolver([("127.0.0.1", dns.port)], timeout=timeout, negative_ttl=30.0)


def test_rfc3263_srv_naptr_and_a() -> None:
    async def main() -> None:
        with DnsServer(ZONE) as dns:
            r = _resolver(dns)
            # SRV: priority order, each target by A.
            assert await r.resolve("peer.test", None, None) == [
                Peer("udp", "127.0.0.1", 5080), Peer("udp", "127.0.0.2", 5070)]
            # An explicit port: A only (§4.2), no SRV query.
            assert await r.resolve("plain.test", 5099, None) == [Peer("udp", "127.0.0.3", 5099)]
            assert dns.queries[("_sip._udp.plain.test", "SRV")] == 0
            # No SRV: A with 5060.
            assert await r.resolve("plain.test", None, "udp") == [Peer("udp", "127.0.0.3", 5060)]
            # NAPTR chooses TCP and names the SRV record (§4.1).
            assert await r.resolve("naptr.test", None, None) == [Peer("tcp", "127.0.0.1", 5090)]
            # IP literals never touch the DNS.
            assert await r.resolve("[::1]", 5062, "tcp") == [Peer("tcp", "::1", 5062)]
            # Cached for the TTL: asking again sends no query.
            before = sum(dns.queries.values())
            await r.resolve("peer.test", None, None)
            assert sum(dns.queries.values()) == before

    asyncio.run(main())


def test_a_missing_name_is_503_and_cached_briefly() -> None:
    async def main() -> None:
        with DnsServer(ZONE) as dns:
            r = _resolver(dns)
            for _ in range(3):
                with pytest.raises(ResolveError) as err:
                    await r.resolve("nowhere.test", None, None)
                assert err.value.status == 503
            # Negative answers cached: one query per name and type, not one per request.
            assert dns.queries[("nowhere.test", "A")] == 1
            with pytest.raises(ResolveError, match="bad host"):
                await r.resolve("a b" * 200, None, None)

    asyncio.run(main())


def test_a_dead_dns_server_costs_a_bounded_wait_and_shared_lookups() -> None:
    async def main() -> None:
        with DnsServer(silent=True) as dns:
            r = _resolver(dns, timeout=0.5)
            started = time.monotonic()
            results = await asyncio.gather(
                *(r.resolve("slow.test", 5060, None) for _ in range(20)), return_exceptions=True
            )
            took = time.monotonic() - started
            assert all(isinstance(e, ResolveError) and e.status == 408 for e in results)
            assert took < 5.0  # 0.5 s asked; wide margin for a loaded machine
            # Twenty callers, one query in flight (dnspython may retry it within the timeout).
            assert dns.queries[("slow.test", "A")] <= 5

    asyncio.run(main())


def test_any_host_string_gives_peers_or_resolve_error_only() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    with DnsServer(ZONE) as dns:

        @settings(max_examples=60, deadline=None)
        @given(st.text(max_size=300), st.one_of(st.none(), st.integers(1, 65535)))
        def check(host: str, port: int | None) -> None:
            async def main() -> None:
                r = _resolver(dns, timeout=1.0)
                outcome: list[Peer] | ResolveError
                try:
                    outcome = await r.resolve(host, port, None)
                except ResolveError as exc:
                    outcome = exc
                if isinstance(outcome, ResolveError):
                    assert outcome.status in (408, 503)
                else:
                    assert all(isinstance(p, Peer) for p in outcome)

            asyncio.run(main())

        check()
