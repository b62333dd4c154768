"""A Route at an alias (the service address) is spent by the server only when it has no user
part (a phone's outbound-proxy setting); the dispatcher's own Record-Route and Path carry its
flow token in the user part and must reach the dispatcher again (issue 13)."""

from __future__ import annotations

from sipha.server.local import Local
from sipha.sip.uri import parse_uri
from sipha.transport import ListenSpec


def test_alias_routes_with_a_user_part_go_back_to_the_edge() -> None:
    local = Local([ListenSpec("udp", "127.0.0.1", 5071)], "sipha.local",
                  aliases=[("203.0.113.5", None)])
    assert local.is_own_route(parse_uri("sip:203.0.113.5:5060;lr"))
    assert local.is_own_route(parse_uri("sip:127.0.0.1:5071;lr;ftag=a;sphd=b"))
    assert not local.is_own_route(parse_uri("sip:ds1-abcd@203.0.113.5:5060;lr"))
    assert not local.is_own_route(parse_uri("sip:ds-abcd@203.0.113.5:5060;lr;ob"))
    # A Request-URI at the alias still names us (SIPp calling the service address).
    assert local.is_me(parse_uri("sip:service@203.0.113.5:5060"))
