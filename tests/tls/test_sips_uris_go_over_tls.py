"""RFC 5630 §3.1.3: a SIPS URI is reached over TLS whatever its parameters say, on port 5061
by default (RFC 3261 §19.1.2); ``;transport=tls`` on a sip: URI asks for TLS too."""

from __future__ import annotations

import pytest

from sipha.dispatcher.servers import parse_server
from sipha.server.local import Local, destination
from sipha.sip.uri import parse_uri
from sipha.transport import ListenSpec, Peer


@pytest.mark.parametrize(
    ("uri", "peer"),
    [
        ("sips:alice@127.0.0.1", Peer("tls", "127.0.0.1", 5061)),
        ("sips:alice@127.0.0.1:5071;transport=udp", Peer("tls", "127.0.0.1", 5071)),
        ("sip:alice@127.0.0.1;transport=tls", Peer("tls", "127.0.0.1", 5061)),
        ("sip:alice@[::1]:5062;transport=TLS", Peer("tls", "::1", 5062)),
        ("sip:alice@127.0.0.1", Peer("udp", "127.0.0.1", 5060)),
    ],
)
def test_the_server_next_hop_for_a_uri(uri: str, peer: Peer) -> None:
    assert destination(parse_uri(uri)) == peer


def test_the_server_names_its_tls_listener_in_via_record_route_and_contact() -> None:
    local = Local([ListenSpec("udp", "127.0.0.1", 5060), ListenSpec("tls", "127.0.0.1", 5061)],
                  "sipha.local")
    assert local.via("tls", "z9hG4bKx").startswith("SIP/2.0/TLS 127.0.0.1:5061;")
    assert local.record_route("tls") == "<sip:127.0.0.1:5061;transport=tls;lr>"
    assert local.contact("bob", "tls") == "<sip:bob@127.0.0.1:5061;transport=tls>"
    assert local.record_route("udp") == "<sip:127.0.0.1:5060;lr>"


@pytest.mark.parametrize(
    ("uri", "transport", "port"),
    [("sips:10.0.0.5", "tls", 5061), ("sip:10.0.0.5;transport=tls", "tls", 5061),
     ("sip:10.0.0.5:5071;transport=tls", "tls", 5071), ("sip:10.0.0.5", "udp", 5060)],
)
def test_a_dispatcher_server_uri_names_its_transport(uri: str, transport: str, port: int) -> None:
    spec = parse_server(uri)
    assert (spec.transport, spec.port) == (transport, port)


def test_a_dispatcher_server_uri_with_another_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be udp, tcp or tls"):
        parse_server("sip:10.0.0.5;transport=sctp")
