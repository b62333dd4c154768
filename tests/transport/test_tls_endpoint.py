"""TLS endpoint on loopback: requests and answers over one verified connection, certificate
checks that refuse cleanly (counted, reported, no traceback), mutual TLS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from sipha.common.certs import CertFiles, make_certs
from sipha.common.loop import run as run_on_uvloop
from sipha.sip import Request, Response, build_response
from sipha.transport import ListenSpec, Peer, SipEndpoint, TlsConfig, TransportConfig
from sipha.transport.tls import TlsConfigError, check
from tests.messages import sipp_invite

# The nodes run on uvloop, whose TLS is its own code: the main cases run on both loops.
LOOPS = pytest.mark.parametrize("run", [asyncio.run, run_on_uvloop], ids=["asyncio", "uvloop"])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("other"), name="another CA")


def _server_tls(c: CertFiles, *, mutual: bool = False) -> TlsConfig:
    return TlsConfig(cert=str(c.server_cert), key=str(c.server_key), ca=str(c.ca),
                     require_client_cert=mutual)


class _Pair:
    """A TLS listener answering 200 to every request, and a client endpoint sending to it."""

    def __init__(self, server: TlsConfig, client: TlsConfig, host: str = "127.0.0.1") -> None:
        self.host = host
        self.got: list[tuple[Request | Response, Peer]] = []
        self.answers: list[tuple[Request | Response, Peer]] = []
        self.errors: list[Exception] = []
        self.changed = asyncio.Event()
        self.server = SipEndpoint(
            [ListenSpec("tls", host, 0)], self._on_server,
            config=TransportConfig(tls=server),
        )
        self.client = SipEndpoint(
            [], self._on_client, config=TransportConfig(tls=client),
            on_send_error=self._on_error,
        )

    def _on_client(self, msg: Request | Response, peer: Peer) -> None:
        self.answers.append((msg, peer))
        self.changed.set()

    def _on_error(self, peer: Peer, data: bytes, exc: Exception) -> None:
        self.errors.append(exc)
        self.changed.set()

    def _on_server(self, msg: Request | Response, peer: Peer) -> None:
        self.got.append((msg, peer))
        self.changed.set()
        if isinstance(msg, Request):
            self.server.send(bytes(build_response(msg, 200, to_tag="t")), peer)

    async def __aenter__(self) -> _Pair:
        await self.server.start()
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        await self.server.close()

    @property
    def target(self) -> Peer:
        return Peer("tls", self.host, self.server.local("tls").port)

    async def wait(self, cond: object, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while not cond():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


@LOOPS
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_requests_and_answers_share_one_verified_tls_connection(
    certs: CertFiles, run: Callable[[Coroutine[Any, Any, None]], None], host: str
) -> None:
    async def main() -> None:
        async with _Pair(_server_tls(certs), TlsConfig(ca=str(certs.ca)), host) as pair:
            for call_id in ("a", "b", "c"):
                pair.client.send(sipp_invite(call_id), pair.target)
            await pair.wait(lambda: len(pair.answers) == 3)
            assert [m.call_id for m, _ in pair.answers] == ["a", "b", "c"]
            assert all(isinstance(m, Response) and m.status == 200 for m, _ in pair.answers)
            # Both sides see the other as a TLS peer, over a single connection.
            assert {p.transport for _, p in pair.got} == {"tls"}
            assert {p.transport for _, p in pair.answers} == {"tls"}
            assert pair.server.tcp_connections == 1
            assert pair.server.counters.tcp_accepted == 1
            assert pair.server.counters.tls_handshakes == 1
            assert pair.client.counters.tls_failures == 0

    run(main())


@LOOPS
@pytest.mark.parametrize("case", ["wrong CA", "name not in the certificate"])
def test_a_certificate_that_does_not_verify_is_refused_counted_and_reported(
    certs: CertFiles, other_ca: CertFiles, tmp_path: Path, case: str,
    caplog: pytest.LogCaptureFixture, run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    if case == "wrong CA":
        server, client = _server_tls(certs), TlsConfig(ca=str(other_ca.ca))
    else:
        named = make_certs(tmp_path / "named", ("sip.example.invalid",))
        server, client = _server_tls(named), TlsConfig(ca=str(named.ca))

    async def main() -> None:
        async with _Pair(server, client) as pair:
            pair.client.send(sipp_invite("x"), pair.target)
            await pair.wait(lambda: pair.errors)
            assert pair.got == []
            assert pair.client.counters.tls_failures == 1
            assert pair.client.counters.send_errors == 1
            assert "certificate verify failed" in str(pair.errors[0])
            await asyncio.sleep(0.1)  # the listener's side of the failed handshake
            assert pair.server.counters.tls_handshakes == 1
            assert pair.server.counters.tcp_accepted == 0

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a refused peer"


@LOOPS
def test_mutual_tls_accepts_a_client_certificate_and_refuses_a_client_without_one(
    certs: CertFiles, caplog: pytest.LogCaptureFixture,
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        with_cert = TlsConfig(ca=str(certs.ca), client_cert=str(certs.client_cert),
                              client_key=str(certs.client_key))
        async with _Pair(_server_tls(certs, mutual=True), with_cert) as pair:
            pair.client.send(sipp_invite("m"), pair.target)
            await pair.wait(lambda: pair.answers)
            assert pair.answers[0][0].call_id == "m"
        async with _Pair(_server_tls(certs, mutual=True), TlsConfig(ca=str(certs.ca))) as pair:
            pair.client.send(sipp_invite("n"), pair.target)
            # TLS 1.3: the client's handshake ends before the server checks its (absent)
            # certificate; the server then closes the connection without reading anything.
            await asyncio.sleep(0.5)
            assert pair.got == []
            assert pair.answers == []
            assert pair.server.tcp_connections == 0
            assert pair.server.counters.tls_handshakes == 1
            assert pair.server.counters.tcp_accepted == 0  # the handshake failed: counted

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert not [r for r in caplog.records if r.exc_info]


def test_unusable_files_are_errors_naming_the_field(certs: CertFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError) as err:
        check(TlsConfig(cert=str(tmp_path / "missing.pem"), key=str(certs.server_key)),
              listening=True)
    assert err.value.field == "cert"
    assert "sipha certs" in str(err.value)
    with pytest.raises(TlsConfigError) as err:
        check(TlsConfig(cert=str(certs.server_cert), key=str(certs.client_key)), listening=True)
    assert err.value.field == "cert"  # a key that does not match the certificate
    with pytest.raises(TlsConfigError) as err:
        check(TlsConfig(ca=str(certs.server_key)), listening=False)
    assert err.value.field == "ca"
    with pytest.raises(TlsConfigError) as err:
        check(TlsConfig(), listening=True)
    assert err.value.field == "cert"
    with pytest.raises(TlsConfigError) as err:
        check(TlsConfig(cert=str(certs.server_cert), key=str(certs.server_key),
                        require_client_cert=True), listening=True)
    assert err.value.field == "ca"
    check(_server_tls(certs, mutual=True), listening=True)


def test_tls_traffic_never_goes_out_on_a_plain_connection_to_the_same_address(
    certs: CertFiles,
) -> None:
    async def main() -> None:
        got: list[Request | Response] = []
        errors: list[Exception] = []
        arrived = asyncio.Event()

        def on_message(msg: Request | Response, peer: Peer) -> None:
            got.append(msg)
            arrived.set()

        server = SipEndpoint([ListenSpec("tcp", "127.0.0.1", 0)], on_message)
        client = SipEndpoint([], lambda m, p: None, config=TransportConfig(
            tls=TlsConfig(ca=str(certs.ca))), on_send_error=lambda p, d, e: errors.append(e))
        await server.start()
        await client.start()
        try:
            port = server.local("tcp").port
            client.send(sipp_invite("plain"), Peer("tcp", "127.0.0.1", port))
            async with asyncio.timeout(5):
                await arrived.wait()
            client.send(sipp_invite("secret"), Peer("tls", "127.0.0.1", port))
            assert len(errors) == 1
            assert "plain TCP connection" in str(errors[0])
            await asyncio.sleep(0.1)
            assert [m.call_id for m in got] == ["plain"]
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_a_peer_that_keeps_failing_is_logged_once_and_counted_each_time(
    certs: CertFiles, other_ca: CertFiles, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with _Pair(_server_tls(certs), TlsConfig(ca=str(other_ca.ca))) as pair:
            for n in range(3):
                pair.client.send(sipp_invite(f"x{n}"), pair.target)
                await pair.wait(lambda n=n: len(pair.errors) == n + 1)
            assert pair.client.counters.tls_failures == 3

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
