"""SIP/SIPS/tel/absolute URI parsing, serialization and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.errors import SipParseError
from sipha.sip.uri import AbsoluteUri, SipUri, TelUri, parse_host, parse_uri, uri_equal

FAST = settings(max_examples=200, deadline=None)


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


# --- positive cases ---------------------------------------------------------------------------


def test_full_sip_uri() -> None:
    uri = sip("sip:alice:secretword@atlanta.com;transport=TCP;lr?Subject=project%20x&x=")
    assert uri.scheme == "sip"
    assert uri.user == "alice"
    assert uri.password == "secretword"
    assert uri.host == "atlanta.com"
    assert uri.port is None
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.headers == {"Subject": "project x", "x": ""}
    assert uri.transport == "tcp"
    assert uri.lr
    assert uri.host_port == ("atlanta.com", None)


def test_rfc3261_examples() -> None:
    # RFC 3261 §19.1.3
    assert sip("sips:alice@atlanta.com?subject=project%20x&priority=urgent").scheme == "sips"
    phone = sip("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert (phone.user, phone.password, phone.params) == (
        "+1-212-555-1212",
        "1234",
        {"user": "phone"},
    )
    assert sip("sips:1212@gateway.com").user == "1212"
    assert sip("sip:alice@192.0.2.4").host == "192.0.2.4"
    assert sip("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com").headers == {
        "to": "alice@atlanta.com"
    }
    assert sip("sip:alice;day=tuesday@atlanta.com").user == "alice;day=tuesday"


def test_escaped_user_rfc4475() -> None:
    # RFC 4475 §3.1.1.1 / §3.1.1.3: escaped characters in the user part.
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert uri.host == "example.net"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"
    assert sip("sip:user;par=u%40example.net@example.com").user == "user;par=u@example.net"
    assert sip("sip:%61lice@atlanta.com").user == "alice"


def test_scheme_is_case_insensitive() -> None:
    uri = sip("SIP:ALICE@AtLanTa.CoM;Transport=udp")
    assert uri.scheme == "sip"
    assert uri.user == "ALICE"
    assert uri.params == {"transport": "udp"}


@pytest.mark.parametrize(
    ("text", "host", "port", "bare"),
    [
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070, "2001:db8::10"),
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None, "2001:db8::10:5070"),
        ("sip:user@[::1];transport=tcp", "[::1]", None, "::1"),
        ("sip:[::ffff:192.0.2.1]:5060", "[::ffff:192.0.2.1]", 5060, "::ffff:192.0.2.1"),
        ("sip:host.example.com.:1", "host.example.com.", 1, "host.example.com."),
        ("sip:10.0.0.1:65535", "10.0.0.1", 65535, "10.0.0.1"),
        ("sip:a-b.c9-d.example", "a-b.c9-d.example", None, "a-b.c9-d.example"),
        ("sip:123.example.com", "123.example.com", None, "123.example.com"),
    ],
)
def test_hosts_and_ports(text: str, host: str, port: int | None, bare: str) -> None:
    uri = sip(text)
    assert uri.host == host
    assert uri.port == port
    assert uri.host_port == (bare, port)


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;Phone-Context=example.com")
    assert uri == TelUri("+1-201-555-0123", {"phone-context": "example.com"})
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"
    assert uri.scheme == "tel"


def test_absolute_uri_for_unknown_scheme() -> None:
    # RFC 4475 §3.3.7: an unknown scheme in a URI is still a valid absoluteURI.
    uri = parse_uri("Name:user@example.com")
    assert uri == AbsoluteUri("name", "user@example.com")
    assert str(uri) == "name:user@example.com"
    assert parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6") == AbsoluteUri(
        "urn", "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    )


def test_serialization_escapes_what_it_must() -> None:
    uri = SipUri(
        user="a b@c",
        password="p:w",
        host="example.com",
        port=5061,
        params={"x": "1 2", "lr": None},
        headers={"Subject": "hi there&bye"},
    )
    assert str(uri) == "sip:a%20b%40c:p%3Aw@example.com:5061;x=1%202;lr?Subject=hi%20there%26bye"
    assert parse_uri(str(uri)) == uri


def test_serialization_brackets_bare_ipv6_host() -> None:
    assert str(SipUri(host="::1", port=5060)) == "sip:[::1]:5060"


def test_with_builds_a_new_uri() -> None:
    uri = sip("sip:bob@biloxi.com;transport=tcp")
    moved = uri.with_(host="192.0.2.1", port=5080)
    assert str(moved) == "sip:bob@192.0.2.1:5080;transport=tcp"
    assert uri.host == "biloxi.com"


def test_non_utf8_escape_round_trips() -> None:
    uri = sip("sip:%FF%00x@h")
    assert str(uri) == "sip:%FF%00x@h"


def test_uris_are_hashable() -> None:
    a = sip("sip:a@b;lr")
    assert {a, sip("sip:a@b;lr")} == {a}
    assert hash(parse_uri("tel:+1")) == hash(parse_uri("tel:+1"))


# --- negative cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        ":user@host",
        "1sip:host",
        "sip:@example.com",
        "sip:user@",
        "sip:user@host:",
        "sip:user@host:0",
        "sip:user@host:65536",
        "sip:user@host:5o60",
        "sip:2001:db8::10",  # RFC 4475 §3.1.2.? style: IPv6 without brackets
        "sip:[2001:db8:::192.0.2.1]",
        "sip:[2001:db8::10",
        "sip:[2001:db8::10]x",
        "sip:[fe80::1%25eth0]",
        "sip:[::1%eth0]",
        "sip:user@exa mple.com",
        "sip:user name@example.com",
        "sip:user@-bad.example.com",
        "sip:user@bad-.example.com",
        "sip:user@a..b",
        "sip:user@example.123",
        "sip:256.0.0.1",
        "sip:1.2.3",
        "sip:1.2.3.4.5",
        "sip:user%4@host",
        "sip:user%zz@host",
        "sip:user@host;",
        "sip:user@host;a=",
        "sip:user@host;a=b c",
        "sip:user@host?",
        "sip:user@host?subject",
        "sip:user@host?a=<b>",
        "sip:user@ho_st",
        'sip:us"er@host',
        "sip:user@host\r\n",
        "tel:",
        "tel:+1 555",
        "tel:+1;",
        "name:",
        "name:a b",
        "name:<x>",
        'http:x"y',
    ],
)
def test_rejects_malformed(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


@pytest.mark.parametrize("host", ["", "[", "[]", "a_b", "1.2.3.256", "x.-y", "[1::2::3]"])
def test_parse_host_rejects(host: str) -> None:
    with pytest.raises(SipParseError):
        parse_host(host)


# --- RFC 3261 §19.1.4 comparison --------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
        ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
        ("urn:x:y", "URN:x:y"),
    ],
)
def test_uri_equal(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sip:a@b", "sips:a@b"),
        ("sip:a@b", "tel:+1"),
        ("sip:a:x@b", "sip:a:y@b"),
        ("sip:a@b;maddr=1.2.3.4", "sip:a@b"),
        ("sip:a@b;lr", "sip:a@b;lr=on"),
    ],
)
def test_uri_not_equal(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))
    assert not uri_equal(parse_uri(b), parse_uri(a))


# --- properties ------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
hostnames = st.builds(
    lambda parts, top: ".".join([*parts, top]),
    st.lists(st.text(_ALNUM + "-", min_size=1, max_size=8).map(lambda s: f"a{s}z"), max_size=3),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = hostnames | ipv4 | ipv6
texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=10)
param_names = st.text(_ALNUM + "-_.!~*'()[]/:&+$% ", min_size=1, max_size=8).map(str.lower)

sip_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | texts,
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    params=st.dictionaries(param_names, st.none() | texts, max_size=4),
    headers=st.dictionaries(texts, st.text(st.characters(codec="utf-8"), max_size=8), max_size=3),
)
sip_uris_with_password = st.builds(
    lambda u, pw: u.with_(password=pw) if u.user is not None else u, sip_uris, st.none() | texts
)


@FAST
@given(sip_uris_with_password)
def test_sip_uri_round_trip(uri: SipUri) -> None:
    parsed = parse_uri(str(uri))
    assert parsed == uri
    assert uri_equal(parsed, uri)
    assert str(parsed) == str(uri)


@FAST
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipParseError:
        return
    assert parse_uri(str(uri)) == uri


@FAST
@given(st.text("sip:;@?&=%[]:.abAB019-", max_size=40).map(lambda s: "sip:" + s))
def test_sip_shaped_text_raises_only_parse_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipParseError:
        return
    assert isinstance(uri, SipUri)
    assert parse_uri(str(uri)) == uri
