"""Via values: parsing, serialization, rport/received stamping (RFC 3261 §18.2.1, RFC 3581)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.errors import SipParseError
from sipha.sip.via import MAGIC_COOKIE, Via, parse_via, parse_via_list

FAST = settings(max_examples=200, deadline=None)


def test_typical_via() -> None:
    via = parse_via("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport")
    assert via.protocol == "SIP/2.0"
    assert via.transport == "UDP"
    assert via.host == "pc33.atlanta.com"
    assert via.port == 5066
    assert via.sent_by == ("pc33.atlanta.com", 5066)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.has_magic_cookie
    assert via.has_rport
    assert via.rport is None
    assert via.received is None
    assert via.ttl is None
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport"


def test_weird_spacing_rfc4475() -> None:
    # RFC 4475 §3.1.1.2 (wsinv), after unfolding: LWS around '/' and ':' is allowed.
    via = parse_via("SIP  /   2.0 /UDP    192.0.2.2;rport;branch=390skdjuw")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "192.0.2.2",
        None,
    )
    assert not via.has_magic_cookie
    spaced = parse_via("SIP / 2.0 / tcp first.example.com : 4000 ; ttl = 16 ;maddr=224.2.0.1")
    assert (spaced.transport, spaced.host, spaced.port, spaced.ttl) == (
        "TCP",
        "first.example.com",
        4000,
        16,
    )
    assert spaced.maddr == "224.2.0.1"


def test_lowercase_protocol_is_uppercased() -> None:
    via = parse_via("sip/2.0/wss df7jal23ls0d.invalid;branch=z9hG4bKx")
    assert (via.protocol, via.transport) == ("SIP/2.0", "WSS")


def test_ipv6_via_rfc5118() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::9:1]:5070;received=2001:db8::9:255;branch=z9hG4bKas3")
    assert via.host == "[2001:db8::9:1]"
    assert via.port == 5070
    assert via.received == "2001:db8::9:255"
    # RFC 5118 §4.5: a bracketed received is seen in the wild and accepted.
    assert parse_via("SIP/2.0/UDP [::1];received=[::2]").received == "[::2]"


def test_rport_with_value_and_extension_params() -> None:
    via = parse_via('SIP/2.0/TCP h;rport=5070;X-Ext="a;b";alias')
    assert via.rport == 5070
    assert via.has_rport
    assert via.params == {"rport": "5070", "x-ext": "a;b", "alias": None}
    assert str(via) == 'SIP/2.0/TCP h;rport=5070;x-ext="a;b";alias'


def test_via_list() -> None:
    vias = parse_via_list(
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5061;branch=z9hG4bK2"
        ' ,SIP/2.0/TLS c;x="p,q"'
    )
    assert [v.host for v in vias] == ["a.example.com", "b.example.com", "c"]
    assert vias[2].params == {"x": "p,q"}


def test_magic_cookie() -> None:
    assert MAGIC_COOKIE == "z9hG4bK"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP host:0",
        "SIP/2.0/UDP host:65536",
        "SIP/2.0/UDP host:abc",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP [::1]x",
        "SIP/2.0/UDP 2001:db8::1",
        "SIP/2.0/U;DP host",
        "SIP//UDP host",
        "SIP/2.0/UDP 192.0.2.15;;",  # RFC 4475 §3.1.2.? empty params
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP host;ttl",
        "SIP/2.0/UDP host;rport=0",
        "SIP/2.0/UDP host;rport=x",
        "SIP/2.0/UDP host;received=example.com",
        "SIP/2.0/UDP host;received",
        "SIP/2.0/UDP host;received=fe80::1%eth0",
        "SIP/2.0/UDP host;maddr",
        "SIP/2.0/UDP host;maddr=-bad-",
        'SIP/2.0/UDP host;x="unterminated',
        "SIP/2.0/UDP ho st",
    ],
)
def test_rejects_malformed(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_via(value)


@pytest.mark.parametrize("value", ["", " , ", "SIP/2.0/UDP 192.0.2.15;;,;,,"])
def test_via_list_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_via_list(value)


# --- received / rport stamping ----------------------------------------------------------------


def test_received_added_when_host_differs() -> None:
    via = parse_via("SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bK1")
    assert via.with_received("192.0.2.4") == (
        "SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bK1;received=192.0.2.4"
    )


def test_received_not_added_when_host_is_the_source() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1")
    assert via.with_received("192.0.2.4", 5060) == "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1"
    v6 = parse_via("SIP/2.0/UDP [2001:db8:0::1];branch=z9hG4bK1")
    assert v6.with_received("2001:db8::1") == str(v6)


def test_empty_rport_is_filled_and_forces_received() -> None:
    # RFC 3581 §4: fill rport and add received even when it equals sent-by.
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKnashds8")
    assert via.with_received("192.0.2.1", 9988) == (
        "SIP/2.0/UDP 192.0.2.1:5060;rport=9988;branch=z9hG4bKnashds8;received=192.0.2.1"
    )


def test_rport_with_value_is_left_alone() -> None:
    via = parse_via("SIP/2.0/UDP h.example.com;rport=1234;received=10.0.0.9;branch=z9hG4bK1")
    assert via.with_received("192.0.2.1", 9988) == (
        "SIP/2.0/UDP h.example.com;rport=1234;received=192.0.2.1;branch=z9hG4bK1"
    )


def test_no_rport_requested_means_no_rport() -> None:
    via = parse_via("SIP/2.0/UDP h.example.com;branch=z9hG4bK1")
    assert "rport" not in via.with_received("192.0.2.1", 9988)


def test_with_params_keeps_positions() -> None:
    via = parse_via("SIP/2.0/UDP h;branch=z9hG4bK1;x=1")
    assert str(via.with_params(branch="z9hG4bK2", y=None)) == "SIP/2.0/UDP h;branch=z9hG4bK2;x=1;y"


# --- properties ------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
hosts = (
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda a: f"[{a}]")
)
ext_params = st.dictionaries(
    st.text(_ALNUM + "-.!%*_+`'~", min_size=1, max_size=6).filter(
        lambda n: n not in {"ttl", "rport", "received", "maddr", "branch"}
    ),
    st.none() | st.text(st.characters(exclude_characters="\r\n"), max_size=6),
    max_size=3,
)
vias = st.builds(
    lambda transport, host, port, branch, rport, ext: Via(
        transport,
        host,
        port,
        {**({"branch": MAGIC_COOKIE + branch} if branch else {}), **rport, **ext},
    ),
    st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]),
    hosts,
    st.none() | st.integers(1, 65535),
    st.text(_ALNUM + "-.", max_size=10),
    st.sampled_from([{}, {"rport": None}, {"rport": "5060"}]),
    ext_params,
)


@FAST
@given(vias)
def test_via_round_trip(via: Via) -> None:
    parsed = parse_via(str(via))
    assert parsed == via
    assert str(parsed) == str(via)


@FAST
@given(st.lists(vias, min_size=1, max_size=4))
def test_via_list_round_trip(items: list[Via]) -> None:
    assert parse_via_list(",".join(map(str, items))) == items


@FAST
@given(vias, st.ip_addresses().map(str), st.integers(1, 65535))
def test_with_received_output_parses(via: Via, source: str, port: int) -> None:
    stamped = parse_via(via.with_received(source, port))
    assert stamped.sent_by == via.sent_by
    assert stamped.branch == via.branch
    if via.has_rport and via.rport is None:
        assert stamped.rport == port
        assert stamped.received == source


@FAST
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_via_list(text)


@FAST
@given(st.text('SIP/2.0UDP ;:=,[]rport1."', max_size=40))
def test_via_shaped_text_raises_only_parse_error(text: str) -> None:
    try:
        result = parse_via_list(text)
    except SipParseError:
        return
    for via in result:
        assert parse_via(str(via)) == via
