"""No open relay (issue 14): the attacks of toll fraud, each against a real server process,
with a recorder standing for the outside host. Requests nobody authorised are refused (403),
challenged (407) or dropped, and the outside host receives nothing; what is authorised (a
trusted peer, a dialog the cluster created, an authenticated user) still goes through."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.sip import Request, build_response
from tests.messages import SDP
from tests.server.helpers import Server, SipClient, add_user, server
from tests.server.outside import Recorder, answer, final, raw_request, requests_in

METHODS = ("INVITE", "BYE", "MESSAGE", "NOTIFY", "REFER", "OPTIONS", "SUBSCRIBE")


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _send(sock: socket.socket, srv: Server, text: str) -> None:
    sock.sendto(text.encode(), ("127.0.0.1", srv.port))


def _users(tmp_path: Path) -> str:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "alice", "alicepw")
    add_user(store, "bob", "bobpw")
    return store


def test_preloaded_route_and_foreign_request_uri_reach_no_outside_host(
    tmp_path: Path, attacker: socket.socket
) -> None:
    me = attacker.getsockname()[1]
    with server(tmp_path, store=_users(tmp_path)) as srv, Recorder() as outside:
        far = f"127.0.0.1:{outside.port}"
        for i, method in enumerate(METHODS):
            # A pre-loaded Route to the outside host, from nobody (toll fraud).
            _send(attacker, srv, raw_request(
                method, "sip:+19005551234@premium.invalid", via_port=me, call_id=f"pre{i}",
                from_uri=f"sip:mallory@127.0.0.1:{me}", to="<sip:+19005551234@premium.invalid>",
                headers=[f"Route: <sip:{far};lr>"], body=SDP if method == "INVITE" else "",
            ))
            assert final(attacker).status == 403, method
            # A To tag and a Request-URI naming the outside host: no dialog of ours.
            _send(attacker, srv, raw_request(
                method, f"sip:+19005551234@{far}", via_port=me, call_id=f"dlg{i}",
                from_uri=f"sip:mallory@127.0.0.1:{me}", to=f"<sip:x@{far}>;tag=t1",
            ))
            assert final(attacker).status == 403, method
        # A From claiming a local user gets a challenge instead: it may be one.
        _send(attacker, srv, raw_request(
            "INVITE", "sip:+19005551234@premium.invalid", via_port=me, call_id="local",
            from_uri="sip:alice@sipha.local", to="<sip:+19005551234@premium.invalid>",
            headers=[f"Route: <sip:{far};lr>"],
        ))
        assert final(attacker).status == 407
        assert outside.drain() == []
        assert srv.status()["security"]["relay_forbidden"] == 2 * len(METHODS)  # type: ignore[index]


def test_requests_to_a_registered_user_need_the_from_users_credentials(
    tmp_path: Path, attacker: socket.socket
) -> None:
    me = attacker.getsockname()[1]
    with server(tmp_path, store=_users(tmp_path)) as srv, Recorder() as bob, \
            SipClient(0) as registrar_client:
        registrar_client.server = ("127.0.0.1", srv.port)
        contact = f"<sip:bob@127.0.0.1:{bob.port}>"
        assert registrar_client.register("bob", "bobpw", contact=contact).status == 200
        ruri = f"sip:bob@127.0.0.1:{srv.port}"
        for i, method in enumerate(("MESSAGE", "SUBSCRIBE", "INVITE", "NOTIFY", "REFER")):
            # Spoofed From, no credentials: challenged, not delivered.
            _send(attacker, srv, raw_request(
                method, ruri, via_port=me, call_id=f"spoof{i}", from_uri="sip:alice@sipha.local",
                to=f"<{ruri}>", body="hi" if method == "MESSAGE" else "",
            ))
            assert final(attacker).status == 407, method
        # Alice's own credentials with a From naming somebody else: 403.
        text = raw_request("MESSAGE", ruri, via_port=me, call_id="m1",
                           from_uri="sip:carol@sipha.local", to=f"<{ruri}>")
        _send(attacker, srv, text)
        challenge = final(attacker)
        auth = answer(challenge, method="MESSAGE", uri=ruri, user="alice", password="alicepw")
        _send(attacker, srv, raw_request(
            "MESSAGE", ruri, via_port=me, call_id="m1", cseq=2, from_uri="sip:carol@sipha.local",
            to=f"<{ruri}>", headers=[f"Proxy-Authorization: {auth}"],
        ))
        assert final(attacker).status == 403
        assert bob.drain() == []
        # Alice as herself: delivered.
        _send(attacker, srv, raw_request("MESSAGE", ruri, via_port=me, call_id="m2",
                                          from_uri="sip:alice@sipha.local", to=f"<{ruri}>"))
        challenge = final(attacker)
        assert challenge.status == 407
        auth = answer(challenge, method="MESSAGE", uri=ruri, user="alice", password="alicepw")
        _send(attacker, srv, raw_request(
            "MESSAGE", ruri, via_port=me, call_id="m2", cseq=2, from_uri="sip:alice@sipha.local",
            to=f"<{ruri}>", headers=[f"Proxy-Authorization: {auth}"], body="hello bob",
        ))
        delivered = requests_in(bob.drain())  # with retransmissions: bob does not answer
        assert {(r.method, r.body) for r in delivered} == {("MESSAGE", b"hello bob")}


def test_a_trusted_peer_is_forwarded_and_a_dialog_token_opens_its_dialog_only(
    tmp_path: Path, attacker: socket.socket
) -> None:
    me = attacker.getsockname()[1]
    store = _users(tmp_path)
    with Recorder() as outside:
        far = f"127.0.0.1:{outside.port}"
        with server(tmp_path, store=store, extra=("--trusted", "127.0.0.1"), name="t") as srv:
            _send(attacker, srv, raw_request(
                "MESSAGE", f"sip:gw@{far}", via_port=me, call_id="trusted",
                from_uri=f"sip:pbx@127.0.0.1:{me}", to=f"<sip:gw@{far}>",
                headers=[f"Route: <sip:{far};lr>"],
            ))
            relayed = requests_in(outside.drain())
            assert {r.method for r in relayed} == {"MESSAGE"}
        # Not trusted, auth off: calls to local users go through with a signed Record-Route;
        # the in-dialog BYE presenting it is forwarded, a forged token is not.
        with server(tmp_path, store=store, extra=("--auth", "off"), name="o") as srv, \
                SipClient(srv.port) as callee:
            assert callee.register("bob", "bobpw").status == 200
            ruri = f"sip:bob@127.0.0.1:{srv.port}"
            _send(attacker, srv, raw_request(
                "INVITE", ruri, via_port=me, call_id="call", from_uri=f"sip:x@127.0.0.1:{me}",
                to=f"<{ruri}>", body=SDP,
            ))
            invite = callee.recv()
            assert isinstance(invite, Request)
            (rr,) = invite.get_all("record-route")
            callee.send(bytes(build_response(invite, 200, to_tag="callee",
                                             headers=[("Record-Route", rr)])))
            assert final(attacker).status == 200
            route = rr
            contact = f"sip:bob@127.0.0.1:{callee.port}"
            for token_ok, cseq in ((False, 2), (True, 3)):
                value = route if token_ok else route.replace(";sphd=", ";sphd=0")
                _send(attacker, srv, raw_request(
                    "BYE", contact, via_port=me, call_id="call", cseq=cseq,
                    from_uri=f"sip:x@127.0.0.1:{me}", to=f"<{ruri}>;tag=callee",
                    headers=[f"Route: {value}"],
                ))
                if not token_ok:
                    assert final(attacker).status == 403
            bye = callee.recv()
            assert isinstance(bye, Request)
            assert bye.method == "BYE"


def test_a_forged_stray_response_is_dropped_not_reflected(
    tmp_path: Path, attacker: socket.socket
) -> None:
    with server(tmp_path) as srv, Recorder() as victim:
        # A 200 whose top Via claims to be the server's, with a branch it never made: a
        # stateless forward would send it to the next Via, the victim.
        text = "\r\n".join([
            "SIP/2.0 200 OK",
            f"Via: SIP/2.0/UDP 127.0.0.1:{srv.port};branch=z9hG4bKforged.1234",
            f"Via: SIP/2.0/UDP 127.0.0.1:{victim.port};branch=z9hG4bKvictim",
            "From: <sip:a@x>;tag=1", "To: <sip:b@y>;tag=2", "Call-ID: forged",
            "CSeq: 1 INVITE", "Content-Length: 0",
        ]) + "\r\n\r\n"
        for _ in range(5):
            _send(attacker, srv, text)
        assert victim.drain() == []
        assert srv.status()["security"] == {"forged_response": 5}


def test_through_the_edge_the_client_is_judged_not_the_dispatcher(
    tmp_path: Path, attacker: socket.socket
) -> None:
    """The dispatcher forwards everybody's requests: the server judges the client it stamped
    in the Via below its own, so the cluster is no open relay through its front door."""
    edge = attacker  # stands for the dispatcher: an alias of the server
    edge_port = edge.getsockname()[1]
    with Recorder() as outside, server(
        tmp_path, store=_users(tmp_path),
        extra=("--alias", f"127.0.0.1:{edge_port}", "--trusted", "127.0.0.1"),
    ) as srv:
        far = f"127.0.0.1:{outside.port}"

        def relayed(client_via: str, call_id: str) -> str:
            return raw_request(
                "INVITE", "sip:+19005551234@premium.invalid", via_port=edge_port,
                call_id=call_id, from_uri="sip:mallory@evil.example",
                to="<sip:+19005551234@premium.invalid>",
                headers=[f"Via: {client_via}", f"Route: <sip:{far};lr>"],
            )

        # From an outside client (the dispatcher stamped its real address as received).
        _send(edge, srv, relayed(
            "SIP/2.0/UDP 10.1.2.3:5060;received=198.51.100.7;rport=4000;branch=z9hG4bKc1", "e1"))
        assert final(edge).status == 403
        assert outside.drain() == []
        # From a trusted client behind the same dispatcher: forwarded.
        _send(edge, srv, relayed("SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc2", "e2"))
        assert {r.method for r in requests_in(outside.drain())} == {"INVITE"}
