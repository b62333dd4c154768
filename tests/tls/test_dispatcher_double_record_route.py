"""The dispatcher's Record-Route when a call changes transport (RFC 3261 §16.6 step 4, RFC
5658): a phone over TLS in front of servers on UDP gets two, so each side reaches the
dispatcher over its own transport; either side's in-dialog requests have both removed."""

from __future__ import annotations

import random

from sipha.dispatcher.flows import write_flow_token
from sipha.dispatcher.router import Router, RouterSettings
from sipha.dispatcher.servers import parse_server
from sipha.sip import Request, build_response, parse_message
from sipha.transport import Peer

PHONE = Peer("tls", "127.0.0.9", 40001)  # the phone's connection to our TLS listener
FLOW = write_flow_token(PHONE, b"k" * 16)


class Connections:
    """The endpoint's view of the phones' connections (edge.py asks it)."""

    def __init__(self) -> None:
        self.open = {PHONE}

    def alive(self, peer: Peer) -> bool:
        return peer in self.open


def _router(flows: Connections | None = None) -> Router:
    r = Router(RouterSettings(algorithm="rr"), advertise=("127.0.0.1", 5060),
               secret=b"k" * 16, rng=random.Random(1), flows=flows or Connections())
    r.listen_ports = {"udp": 5060, "tls": 5061}
    r.add_server(parse_server("sip:127.0.0.1:5071;probe=off"))
    return r


def _request(method: str, *, to_tag: str = "", routes: tuple[str, ...] = (),
             ruri: str = "sip:service@127.0.0.1:5061;transport=tls",
             via: str = "SIP/2.0/TLS 127.0.0.9:5061;branch=z9hG4bKp1") -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    route_lines = "".join(f"Route: {r}\r\n" for r in routes)
    data = (
        f"{method} {ruri} SIP/2.0\r\nVia: {via}\r\n{route_lines}"
        "From: <sip:alice@127.0.0.1>;tag=f1\r\n"
        f"To: <sip:service@127.0.0.1>{tag}\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        "Contact: <sip:alice@127.0.0.9:5061;transport=tls>\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_tls_in_udp_out_record_routes_twice_and_in_dialog_requests_pop_both() -> None:
    connections = Connections()
    r = _router(connections)
    [out] = r.on_request(_request("INVITE"), PHONE, now=0.0)
    fwd = parse_message(out.data)
    assert out.peer == Peer("udp", "127.0.0.1", 5071)
    server_side, phone_side = fwd.get_all("record-route")
    assert server_side == f"<sip:ds1-{FLOW}@127.0.0.1:5060;lr>"
    assert phone_side == f"<sip:ds1-{FLOW}@127.0.0.1:5061;transport=tls;lr>"
    ok = build_response(fwd, 200, to_tag="s1")
    [back] = r.on_response(parse_message(bytes(ok)), out.peer, now=0.01)  # type: ignore[arg-type]
    assert back.peer == PHONE  # over the phone's TLS connection
    # The phone's BYE: its route set is the Record-Routes reversed.
    bye = _request("BYE", to_tag="s1", routes=(phone_side, server_side),
                   ruri="sip:service@127.0.0.1:5071",
                   via="SIP/2.0/TLS 127.0.0.9:5061;branch=z9hG4bKp2")
    [to_server] = r.on_request(bye, PHONE, now=1.0)
    assert to_server.peer == Peer("udp", "127.0.0.1", 5071)
    assert parse_message(to_server.data).get("route") is None
    # The server's BYE the other way: both removed, out over the phone's TLS connection (its
    # flow, edge.py) ...
    def server_bye(n: int) -> Request:
        return _request("BYE", to_tag="f1", routes=(server_side, phone_side),
                        ruri="sip:alice@127.0.0.9:5061;transport=tls",
                        via=f"SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKs{n}")

    [to_phone] = r.on_request(server_bye(1), Peer("udp", "127.0.0.1", 5071), now=2.0)
    assert to_phone.peer == PHONE
    sent = parse_message(to_phone.data)
    assert sent.get("route") is None
    assert sent.via.transport == "TLS"
    # ... and once that connection is gone, to the phone's contact (the remote target).
    connections.open.clear()
    [to_phone] = r.on_request(server_bye(2), Peer("udp", "127.0.0.1", 5071), now=3.0)
    assert to_phone.peer == Peer("tls", "127.0.0.9", 5061)


def test_same_transport_keeps_one_record_route_and_a_foreign_ds_route_is_not_ours() -> None:
    r = _router()
    udp_phone = Peer("udp", "127.0.0.9", 5099)
    [out] = r.on_request(_request("INVITE", via="SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKu"),
                         udp_phone, now=0.0)
    flow = write_flow_token(udp_phone, b"k" * 16)
    assert parse_message(out.data).get_all("record-route") == [
        f"<sip:ds1-{flow}@127.0.0.1:5060;lr>"
    ]
    # Another node's route on our host but not our port is left in place.
    other = "<sip:ds1@127.0.0.1:7777;transport=tls;lr>"
    bye = _request("BYE", to_tag="s1", routes=(other,),
                   via="SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKu2")
    [fwd] = r.on_request(bye, udp_phone, now=1.0)
    assert parse_message(fwd.data).get("route") == other
