"""Route processing (RFC 3261 §16.4, RFC 3327) and loops (§16.3 step 4) over raw sockets:
a Route naming an alias of the server (the dispatcher, the service address) is spent, not
followed; a request bounced back unchanged is detected, not forwarded again; a strict
router's Request-URI is undone; a registered Path is the way to the user."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.sip import Request
from tests.server.helpers import add_user, server
from tests.server.outside import Recorder, answer, final, raw_request, requests_in


@pytest.fixture
def ua() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


class Reflector:
    """A next hop that sends every datagram back to the server unchanged: a proxy that does
    not remove the Route naming itself (the loop of issue 13). Counts the requests."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.server = ("127.0.0.1", server_port)
        self.bounced = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            # Responses too: the server's 482 comes here (rport), addressed to the server.
            self.bounced += not data.startswith(b"SIP/2.0")
            self.sock.sendto(data, self.server)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_a_request_bounced_back_unchanged_is_a_loop_not_a_ping_pong(
    tmp_path: Path, ua: socket.socket
) -> None:
    me = ua.getsockname()[1]
    # Trusted: the request must pass authorization for the loop check to be what stops it.
    with server(tmp_path, extra=("--trusted", "127.0.0.1")) as srv:
        reflector = Reflector(srv.port)
        try:
            far = f"127.0.0.1:{reflector.port}"
            ua.sendto(raw_request(
                "BYE", f"sip:x@{far}", via_port=me, call_id="loop", from_uri="sip:a@x",
                to="<sip:x@y>;tag=t", headers=[f"Route: <sip:{far};lr>"],
            ).encode(), ("127.0.0.1", srv.port))
            assert final(ua).status == 482
            # Once out, once back: then 482 (today: ~70 round trips until Max-Forwards ran out).
            assert reflector.bounced == 1
            assert srv.status()["security"]["loop"] == 1  # type: ignore[index]
        finally:
            reflector.close()
        # A To tag and a Route naming the server itself (another spelling of its address):
        # the Route is spent and the request answered once, not sent to itself again.
        ua.sendto(raw_request(
            "NOTIFY", f"sip:x@127.0.0.1:{srv.port}", via_port=me, call_id="self",
            from_uri="sip:a@x", to="<sip:x@y>;tag=t",
            headers=[f"Route: <sip:localhost:{srv.port};lr>"],
        ).encode(), ("127.0.0.1", srv.port))
        assert final(ua).status == 404
        assert srv.status()["requests"]["NOTIFY"] == 1  # type: ignore[index]


def test_a_route_naming_an_alias_is_spent_not_followed(tmp_path: Path, ua: socket.socket) -> None:
    """baresip's REGISTER through the dispatcher (issue 13): Route names the dispatcher."""
    me = ua.getsockname()[1]
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "bob", "pw")
    with Recorder() as dispatcher:
        alias = f"127.0.0.1:{dispatcher.port}"
        with server(tmp_path, store=store, extra=("--alias", alias)) as srv:
            ua.sendto(raw_request(
                "REGISTER", "sip:sipha.local", via_port=me, call_id="reg", from_uri="sip:bob@x",
                to="<sip:bob@sipha.local>",
                headers=[f"Route: <sip:{alias};transport=udp;lr>",
                         "Contact: <sip:bob@127.0.0.1:7000>"],
            ).encode(), ("127.0.0.1", srv.port))
            assert final(ua).status == 401  # the registrar's challenge
        assert dispatcher.drain() == []


def test_strict_router_request_uri_is_undone_and_path_is_followed(
    tmp_path: Path, ua: socket.socket
) -> None:
    me = ua.getsockname()[1]
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "bob", "pw")
    with Recorder() as edge, Recorder() as outside, \
            server(tmp_path, store=store, extra=("--trusted", "127.0.0.1")) as srv:
        # A REGISTER relayed by an edge proxy that added a Path; the phone's Contact is a
        # private address the server could never reach itself.
        path = f"<sip:127.0.0.1:{edge.port};lr;ob>"
        headers = ["Contact: <sip:bob@10.255.0.7:5060>", f"Path: {path}", "Supported: path"]
        auth: list[str] = []
        for cseq in (1, 2):
            ua.sendto(raw_request(
                "REGISTER", "sip:sipha.local", via_port=me, call_id="reg", cseq=cseq,
                from_uri="sip:bob@x", to="<sip:bob@sipha.local>", headers=headers + auth,
            ).encode(), ("127.0.0.1", srv.port))
            ok = final(ua)
            if ok.status == 401:  # a registrar always authenticates, trusted peers too
                auth = ["Authorization: " + answer(ok, method="REGISTER", uri="sip:sipha.local",
                                                   user="bob", password="pw",
                                                   header="www-authenticate")]
        assert ok.status == 200
        assert ok.get_all("path") == [path]  # RFC 3327 §5.3: echoed to a UA that supports it
        ruri = f"sip:bob@127.0.0.1:{srv.port}"
        ua.sendto(raw_request("MESSAGE", ruri, via_port=me, call_id="m", from_uri="sip:a@x",
                              to=f"<{ruri}>", body="via the edge").encode(),
                  ("127.0.0.1", srv.port))
        got = requests_in(edge.drain())
        assert got, "the MESSAGE did not go through the Path"
        message = got[0]
        assert message.ruri == "sip:bob@10.255.0.7:5060"
        assert message.get_all("route") == [path]
        # A strict router put our Record-Route in the Request-URI and the target in Route:
        # the last Route becomes the Request-URI again (§16.4).
        target = f"sip:carol@127.0.0.1:{outside.port}"
        ua.sendto(raw_request(
            "INFO", f"sip:127.0.0.1:{srv.port};lr", via_port=me, call_id="strict",
            from_uri="sip:a@x", to="<sip:c@y>;tag=t", headers=[f"Route: <{target}>"],
        ).encode(), ("127.0.0.1", srv.port))
        info = requests_in(outside.drain())
        assert info
        assert isinstance(info[0], Request)
        assert (info[0].method, info[0].ruri, info[0].get("route")) == ("INFO", target, None)
