"""Credentials cannot be replayed across the cluster (issue 14): the nonce-count goes through
the shared store, the digest uri must be the Request-URI, and REGISTER can require auth-int.
Two server processes on one store stand for the cluster."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.sip import Response
from tests.messages import SDP
from tests.server.helpers import add_user, server
from tests.server.outside import answer, final, raw_request
from tests.store.helpers import run_with


@pytest.fixture
def ua() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.db'}"
    base: str = request.getfixturevalue("redis_url")
    return f"{base}?prefix=rp{uuid.uuid4().hex[:10]}:"


def test_a_captured_invite_is_accepted_once_in_the_cluster(
    tmp_path: Path, ua: socket.socket, shared_store: str
) -> None:
    store = shared_store
    add_user(store, "alice", "pw")
    me = ua.getsockname()[1]
    with server(tmp_path, store=store, extra=("--auth-invite",), name="a") as a, \
            server(tmp_path, store=store, extra=("--auth-invite",), name="b") as b:
        ruri = "sip:service@sipha.local"

        def invite(port: int, call_id: str, uri: str, auth: str | None, branch: str) -> Response:
            headers = [f"Proxy-Authorization: {auth}"] if auth else []
            ua.sendto(raw_request("INVITE", uri, via_port=me, call_id=call_id, cseq=2,
                                  from_uri="sip:alice@sipha.local", to=f"<{uri}>",
                                  headers=headers, body=SDP, branch=branch).encode(),
                      ("127.0.0.1", port))
            return final(ua)

        challenge = invite(a.port, "c1", ruri, None, "z9hG4bKc1a")
        assert challenge.status == 407
        auth = answer(challenge, method="INVITE", uri=ruri, user="alice", password="pw")
        assert invite(a.port, "c1", ruri, auth, "z9hG4bKc1b").status == 200
        # The same request, captured and replayed to the other server: challenged.
        assert invite(b.port, "c1", ruri, auth, "z9hG4bKc1b").status == 407
        # ... and to the first one with a new Call-ID: challenged (the nonce-count is spent).
        assert invite(a.port, "c2", ruri, auth, "z9hG4bKc2").status == 407
        # The credentials for another Request-URI: refused (the digest uri is not it).
        other = "sip:service2@sipha.local"
        assert invite(b.port, "c3", other, auth, "z9hG4bKc3").status == 403
        assert a.status()["calls"]["answered"] == 1  # type: ignore[index]
        assert b.status()["calls"]["answered"] == 0  # type: ignore[index]
        assert b.status()["security"] == {"replay": 1, "bad_credentials": 1}


def test_a_replayed_register_changes_no_binding(tmp_path: Path, ua: socket.socket) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "bob", "pw")
    me = ua.getsockname()[1]
    with server(tmp_path, store=store, name="a") as a, \
            server(tmp_path, store=store, name="b") as b:
        ruri = "sip:sipha.local"

        def register(port: int, cseq: int, contact: str, auth: str | None,
                     expires: int = 300) -> Response:
            headers = [f"Contact: {contact}", f"Expires: {expires}"]
            if auth:
                headers.append(f"Authorization: {auth}")
            ua.sendto(raw_request("REGISTER", ruri, via_port=me, call_id="reg", cseq=cseq,
                                  from_uri="sip:bob@sipha.local", to="<sip:bob@sipha.local>",
                                  headers=headers).encode(), ("127.0.0.1", port))
            return final(ua)

        challenge = register(a.port, 1, "<sip:bob@127.0.0.1:7000>", None)
        auth = answer(challenge, method="REGISTER", uri=ruri, user="bob", password="pw",
                      header="www-authenticate")
        ok = register(a.port, 2, "<sip:bob@127.0.0.1:7000>", auth)
        assert ok.status == 200
        # Captured and replayed with the attacker's Contact, or Contact: * to wipe the
        # victim's bindings, to either server, with a higher CSeq: challenged every time.
        for n, (srv, contact, expires) in enumerate([
            (b, "<sip:evil@127.0.0.1:6666>", 300), (a, "<sip:evil@127.0.0.1:6666>", 300),
            (b, "*", 0), (a, "*", 0),
        ]):
            assert register(srv.port, 10 + n, contact, auth, expires).status == 401
    # The victim's binding is still the only one.
    bindings = run_with(store, lambda st: st.get_bindings("bob@sipha.local", time.time()))
    assert [b.contact for b in bindings] == ["sip:bob@127.0.0.1:7000"]


def test_register_can_require_auth_int(tmp_path: Path, ua: socket.socket) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "carol", "pw")
    me = ua.getsockname()[1]
    with server(tmp_path, store=store, config="auth_int_register = true\n") as srv:
        ruri = "sip:sipha.local"
        ua.sendto(raw_request("REGISTER", ruri, via_port=me, call_id="r", cseq=1,
                              from_uri="sip:carol@sipha.local", to="<sip:carol@sipha.local>",
                              headers=["Contact: <sip:carol@127.0.0.1:7100>"]).encode(),
                  ("127.0.0.1", srv.port))
        challenge = final(ua)
        assert 'qop="auth-int"' in (challenge.get("www-authenticate") or "")
        auth = answer(challenge, method="REGISTER", uri=ruri, user="carol", password="pw",
                      header="www-authenticate")
        assert "qop=auth-int" in auth
        ua.sendto(raw_request("REGISTER", ruri, via_port=me, call_id="r", cseq=2,
                              from_uri="sip:carol@sipha.local", to="<sip:carol@sipha.local>",
                              headers=["Contact: <sip:carol@127.0.0.1:7100>",
                                       f"Authorization: {auth}"]).encode(),
                  ("127.0.0.1", srv.port))
        assert final(ua).status == 200
