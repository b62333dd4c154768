"""The dispatcher as the phones' edge, on virtual time: Path on REGISTER, requests from a server
through it over the phone's flow (430 when a TCP flow is gone), Record-Route towards the
callee, a phone's own Route naming us spent, strict routing undone, a dead server's
Record-Route moved to the rescuing one, a TCP phone's dialogs following its new connection,
Flow-Timer on an outbound registration."""

from __future__ import annotations

import random

from sipha.dispatcher.flows import read_flow_token, write_flow_token
from sipha.dispatcher.health import HealthState
from sipha.dispatcher.router import Router, RouterSettings, Send
from sipha.dispatcher.servers import parse_server
from sipha.sip import Request, Response, build_response, parse_message
from sipha.sip.address import parse_name_addr
from sipha.transport import Peer

SECRET = b"k" * 16
US = "127.0.0.1:5060"
NAT = Peer("udp", "198.51.100.7", 40123)  # the phone's public mapping; its Contact is private
TCP_PHONE = Peer("tcp", "127.0.0.9", 41000)
SERVER = Peer("udp", "127.0.0.1", 5071)


class Connections:
    def __init__(self, *open_: Peer) -> None:
        self.open = set(open_)

    def alive(self, peer: Peer) -> bool:
        return peer in self.open


def make_router(flows: Connections | None = None, servers: int = 1) -> Router:
    r = Router(RouterSettings(algorithm="rr", flow_timer=7), advertise=("127.0.0.1", 5060),
               secret=SECRET, rng=random.Random(1), flows=flows or Connections(TCP_PHONE))
    for i in range(servers):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    return r


def request(method: str, ruri: str, *, via: str, headers: tuple[str, ...] = (),
            to_tag: str = "", call: str = "c1") -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    lines = [
        f"{method} {ruri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
        "From: <sip:alice@sipha.local>;tag=f1", f"To: <sip:bob@sipha.local>{tag}",
        f"Call-ID: {call}", f"CSeq: 1 {method}", *headers, "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def sent(send: Send) -> Request:
    msg = parse_message(send.data)
    assert isinstance(msg, Request)
    return msg


def register_through(r: Router, phone: Peer, contact: str) -> str:
    """A phone's REGISTER through the edge; returns the Path the server sees."""
    t = phone.transport.upper()
    msg = request("REGISTER", "sip:sipha.local", via=f"SIP/2.0/{t} 10.0.0.5:5060;branch=z9hG4bKr1",
                  headers=(f"Route: <sip:{US};lr>", f"Contact: {contact}"))
    [out] = r.on_request(msg, phone, now=0.0)
    assert out.peer == SERVER
    fwd = sent(out)
    assert fwd.get("route") is None  # the phone's outbound-proxy Route is spent here
    [path] = fwd.get_all("path")
    return path


def test_register_gets_a_path_naming_the_service_address_and_the_flow() -> None:
    r = make_router()
    path = register_through(r, NAT, "<sip:bob@10.0.0.5:5060>")
    uri = parse_name_addr(path).uri
    assert f"{uri.host}:{uri.port}" == US  # type: ignore[union-attr]
    assert uri.params == {"lr": None}  # type: ignore[union-attr]
    assert read_flow_token(uri.user[3:], SECRET) == NAT  # type: ignore[union-attr,index]
    outbound = register_through(r, NAT, '<sip:bob@10.0.0.5>;reg-id=1;+sip.instance="<urn:x>"')
    assert outbound.endswith(";lr;ob>")


def test_invite_from_a_server_through_the_path_goes_to_the_phones_public_address() -> None:
    r = make_router()
    path = register_through(r, NAT, "<sip:bob@10.0.0.5:5060>")
    invite = request("INVITE", "sip:bob@10.0.0.5:5060",
                     via="SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKs1",
                     headers=(f"Route: {path}", "Record-Route: <sip:127.0.0.1:5071;lr>",
                              "Contact: <sip:alice@127.0.0.1:5099>"))
    [out] = r.on_request(invite, SERVER, now=1.0)
    assert out.peer == NAT  # not the private Contact
    fwd = sent(out)
    assert fwd.get("route") is None
    assert fwd.ruri == "sip:bob@10.0.0.5:5060"
    # Our Record-Route on top names the server by token and the callee's flow.
    top = fwd.get_all("record-route")[0]
    own = r.edge.stamp.own_route(top)
    assert own is not None
    assert own.token == r.servers()[0].token
    assert read_flow_token(own.flow, SECRET) == NAT
    # The callee's 200 goes back to the server statelessly, by the server's Via.
    ok = parse_message(bytes(build_response(fwd, 200, to_tag="b1")))
    assert isinstance(ok, Response)
    [back] = r.on_response(ok, NAT, now=1.1)
    assert back.peer == SERVER
    # The callee's BYE with its route set reaches the server; the server's BYE the phone.
    bye = request("BYE", "sip:alice@127.0.0.1:5099", to_tag="b1",
                  via="SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKb1",
                  headers=(f"Route: {top}", "Route: <sip:127.0.0.1:5071;lr>"))
    [up] = r.on_request(bye, NAT, now=2.0)
    assert up.peer == SERVER
    assert sent(up).get("route") == "<sip:127.0.0.1:5071;lr>"
    down = request("BYE", "sip:bob@10.0.0.5:5060", to_tag="b1",
                   via="SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKs2", headers=(f"Route: {top}",))
    [to_phone] = r.on_request(down, SERVER, now=3.0)
    assert to_phone.peer == NAT


def test_a_gone_tcp_flow_is_answered_430_at_once_and_a_live_one_is_used() -> None:
    flows = Connections(TCP_PHONE)
    r = make_router(flows)
    path = register_through(r, TCP_PHONE, "<sip:bob@10.0.0.5;transport=tcp>")

    def invite(n: int) -> Request:
        return request("INVITE", "sip:bob@10.0.0.5;transport=tcp",
                       via=f"SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKs{n}",
                       headers=(f"Route: {path}",), call=f"c{n}")

    [out] = r.on_request(invite(1), SERVER, now=1.0)
    assert out.peer == TCP_PHONE
    assert sent(out).via.transport == "TCP"
    flows.open.clear()
    [answer] = r.on_request(invite(2), SERVER, now=2.0)
    assert answer.peer == SERVER
    assert parse_message(answer.data).status == 430  # type: ignore[union-attr]
    assert r.stats.flow_failed == 1


def test_a_path_presented_by_a_stranger_does_not_steer_us() -> None:
    r = make_router()
    path = register_through(r, NAT, "<sip:bob@10.0.0.5:5060>")
    evil = request("INVITE", "sip:bob@10.0.0.5:5060",
                   via="SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKe1",
                   headers=(f"Route: {path}",))
    [out] = r.on_request(evil, Peer("udp", "203.0.113.9", 5060), now=1.0)
    assert out.peer == SERVER  # to a server like any caller's request, not to the flow
    forged = path.replace(path[10:14], "aaaa")
    invite = request("INVITE", "sip:bob@10.0.0.5:5060",
                     via="SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKs9",
                     headers=(f"Route: {forged}",))
    [answer] = r.on_request(invite, SERVER, now=2.0)
    assert parse_message(answer.data).status == 430  # type: ignore[union-attr]


def test_strict_router_request_uri_holding_our_route_is_undone() -> None:
    r = make_router()
    rr = r.edge.stamp.route(r.servers()[0].token, "udp", write_flow_token(NAT, SECRET))
    ruri = rr[1:-1]
    bye = request("BYE", ruri, to_tag="b1", via="SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKq",
                  headers=("Route: <sip:bob@192.0.2.1:5060>",))
    [out] = r.on_request(bye, NAT, now=0.0)
    assert out.peer == SERVER
    fwd = sent(out)
    assert fwd.ruri == "sip:bob@192.0.2.1:5060"
    assert fwd.get("route") is None


def test_a_dead_servers_record_route_moves_to_the_server_that_takes_the_dialog() -> None:
    r = make_router(servers=2)
    dead, alive = r.servers()
    r.set_state(dead, HealthState.INACTIVE, 0.0, "killed")
    rr = r.edge.stamp.route(dead.token, "udp", write_flow_token(NAT, SECRET))
    bye = request("BYE", "sip:alice@127.0.0.1:5099", to_tag="b1",
                  via="SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKd",
                  headers=(f"Route: {rr}", "Route: <sip:127.0.0.1:5071;lr;ftag=f1;sphd=x>",
                           "Route: <sip:ds1-abc@127.0.0.1:5060;lr>"))
    [out] = r.on_request(bye, NAT, now=1.0)
    assert out.peer == alive.peer
    routes = sent(out).get_all("route")
    assert routes == ["<sip:127.0.0.1:5072;lr;ftag=f1;sphd=x>",
                      "<sip:ds1-abc@127.0.0.1:5060;lr>"]
    assert r.stats.dialogs_rescued == 1


def test_a_tcp_phones_dialog_follows_its_new_connection_once_it_registered() -> None:
    old = TCP_PHONE
    new = Peer("tcp", "127.0.0.9", 41999)
    flows = Connections(new)  # the old connection died with the old active
    r = make_router(flows)
    rr = r.edge.stamp.route(r.servers()[0].token, "tcp", write_flow_token(old, SECRET))

    def bye(n: int) -> Request:
        # The phone's Contact names its old connection's port (baresip over TCP).
        return request("BYE", "sip:bob-1@127.0.0.9:41000;transport=tcp", to_tag="b1",
                       via=f"SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKt{n}",
                       headers=(f"Route: {rr}",))

    assert r.on_request(bye(1), SERVER, now=1.0) == []  # dropped: the server retransmits
    # The phone registers over its new connection; the registrar's 2xx teaches us its flow.
    reg = request("REGISTER", "sip:sipha.local", via="SIP/2.0/TCP 127.0.0.9:5060;branch=z9hG4bKn",
                  headers=("Contact: <sip:bob-1@127.0.0.9:5060;transport=tcp>",))
    [out] = r.on_request(reg, new, now=2.0)
    ok = build_response(sent(out), 200, to_tag="r1",
                        headers=[("Contact", "<sip:bob-1@127.0.0.9:5060;transport=tcp>;expires=4")])
    [back] = r.on_response(parse_message(bytes(ok)), SERVER, now=2.1)  # type: ignore[arg-type]
    assert back.peer == new
    [to_phone] = r.on_request(bye(2), SERVER, now=3.0)
    assert to_phone.peer == new


def test_flow_timer_on_the_2xx_of_an_outbound_registration_only() -> None:
    r = make_router()
    contact = '<sip:bob@10.0.0.5>;reg-id=1;+sip.instance="<urn:x>"'
    for require, expected in ((("Require", "outbound"),), "7"), ((), None):
        msg = request("REGISTER", "sip:sipha.local", call=f"r{expected}",
                      via=f"SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK{expected}",
                      headers=(f"Contact: {contact}",))
        [out] = r.on_request(msg, NAT, now=0.0)
        ok = build_response(sent(out), 200, to_tag="r", headers=list(require))
        [back] = r.on_response(parse_message(bytes(ok)), SERVER, now=0.1)  # type: ignore[arg-type]
        assert back.peer == NAT
        assert parse_message(back.data).get("flow-timer") == expected
