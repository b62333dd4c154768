"""name-addr / addr-spec values (From, To, Contact, Route) and Contact lists."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.address import (
    NameAddr,
    parse_contact_list,
    parse_name_addr,
    parse_name_addr_list,
)
from sipha.sip.errors import SipParseError
from sipha.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri

FAST = settings(max_examples=200, deadline=None)


def test_quoted_display_name_with_escapes() -> None:
    # RFC 4475 §3.1.1.1: From: "J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8
    addr = parse_name_addr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8')
    assert addr.display_name == 'J Rosenberg \\"'
    assert addr.uri == SipUri(user="jdrosen", host="example.com")
    assert addr.tag == "98asjd8"
    assert addr.bracketed
    assert str(addr) == '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'


def test_token_display_name_and_no_space_before_bracket() -> None:
    # RFC 4475 §3.1.1.2: From: caller<sip:caller@example.com>;tag=323
    addr = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert addr.display_name == "caller"
    assert addr.tag == "323"
    multi = parse_name_addr("Bob   B.  Jones <sip:b@c>")
    assert multi.display_name == "Bob B. Jones"


def test_bare_brackets() -> None:
    addr = parse_name_addr("<sip:x@y>")
    assert addr == NameAddr(SipUri(user="x", host="y"))
    assert addr.display_name is None
    assert addr.tag is None
    assert str(addr) == "<sip:x@y>"


def test_empty_quoted_display_name_is_kept() -> None:
    addr = parse_name_addr('"" <sip:x@y>')
    assert addr.display_name == ""
    assert str(addr) == '"" <sip:x@y>'


def test_addr_spec_params_belong_to_the_header() -> None:
    # RFC 3261 §20.10: without <>, ;params after the URI are header params.
    addr = parse_name_addr("sip:a@b;tag=x;lr")
    assert addr.uri == SipUri(user="a", host="b")
    assert addr.params == {"tag": "x", "lr": None}
    assert not addr.bracketed
    assert str(addr) == "<sip:a@b>;tag=x;lr"
    assert str(parse_name_addr("sip:a@b")) == "sip:a@b"


def test_bracketed_uri_params_stay_in_the_uri() -> None:
    addr = parse_name_addr("<sip:a@b;transport=tcp;lr>;tag=1")
    assert isinstance(addr.uri, SipUri)
    assert addr.uri.params == {"transport": "tcp", "lr": None}
    assert addr.params == {"tag": "1"}


def test_weird_but_valid_spacing() -> None:
    # RFC 4475 §3.1.1.2 (wsinv): whitespace around ';' and '='.
    addr = parse_name_addr(
        '  "Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\t'
        "newvalue ; secondparam ; q = 0.33  "
    )
    assert addr.display_name == 'Quoted string ""'
    assert addr.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert addr.q == pytest.approx(0.33)


def test_other_uri_schemes() -> None:
    assert parse_name_addr("<tel:+1-555-0100>").uri == TelUri("+1-555-0100")
    assert parse_name_addr("<name:user@example.com>").uri == AbsoluteUri("name", "user@example.com")
    assert parse_name_addr("tel:+1;tag=3").params == {"tag": "3"}


def test_uri_headers_inside_brackets() -> None:
    # RFC 4475 §3.1.1.3 style: escaped header in a Contact URI.
    addr = parse_name_addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")
    assert isinstance(addr.uri, SipUri)
    assert addr.uri.headers == {"Route": "<sip:sip.example.com>"}


def test_display_name_with_percent_is_not_unescaped() -> None:
    # RFC 4475 §3.1.1.3: To: "%Z%45" <sip:resource@example.com>
    assert parse_name_addr('"%Z%45" <sip:resource@example.com>').display_name == "%Z%45"


def test_non_ascii_unquoted_display_name_is_tolerated() -> None:
    assert parse_name_addr("Jürgen <sip:j@x>").display_name == "Jürgen"


def test_with_tag() -> None:
    addr = parse_name_addr("sip:bob@biloxi.com")
    tagged = addr.with_tag("a6c85cf")
    assert str(tagged) == "<sip:bob@biloxi.com>;tag=a6c85cf"
    assert addr.tag is None


def test_str_brackets_uris_that_need_them() -> None:
    uri = parse_uri("sip:a@b;lr")
    assert str(NameAddr(uri, bracketed=False)) == "<sip:a@b;lr>"
    assert str(NameAddr(uri, display_name="A")) == '"A" <sip:a@b;lr>'


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"Mr. J. User <sip:j.user@example.com>',  # RFC 4475 §3.1.2.? unterminated quote
        "<sip:user@example.com",
        "sip:user@example.com>",
        '"A" sip:a@b',
        '"A" x <sip:a@b>',
        "Bob; Jones <sip:b@c>",
        "Bob@home <sip:b@c>",
        "<sip:a@b> junk",
        "<sip:a@b>;",
        "<sip:a@b>;tag=",
        "<>",
        "< sip:a@b >",
        "<sip:a@b:99999>",
        "sip:a@b c",
        "notauri",
        "*",
    ],
)
def test_rejects_malformed(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(value)


# --- Contact ----------------------------------------------------------------------------------


def test_contact_star() -> None:
    assert parse_contact_list(" * ") == "*"


def test_contact_list_with_commas_in_quotes() -> None:
    contacts = parse_contact_list(
        '"Doe, John" <sip:j@x>;expires=60;q=0.5, sip:k@y;expires=0, <sip:z@w>;q=1.000'
    )
    assert contacts != "*"
    assert [c.display_name for c in contacts] == ["Doe, John", None, None]
    assert [c.expires for c in contacts] == [60, 0, None]
    assert [c.q for c in contacts] == [0.5, None, 1.0]


@pytest.mark.parametrize("value", ["", " , ", "*, <sip:a@b>", "<sip:a@b>, *", "<sip:a@b>,,<x"])
def test_contact_list_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_contact_list(value)


@pytest.mark.parametrize("param", ["expires", "expires=-1", "expires=x", "expires=4294967296"])
def test_contact_bad_expires_raises(param: str) -> None:
    addr = parse_name_addr(f"<sip:a@b>;{param}")
    with pytest.raises(SipParseError):
        _ = addr.expires


@pytest.mark.parametrize("value", ["q", "q=2", "q=1.5", "q=0.1234", "q=.5", "q=0.x", "q=-0"])
def test_contact_bad_q_raises(value: str) -> None:
    addr = parse_name_addr(f"<sip:a@b>;{value}")
    with pytest.raises(SipParseError):
        _ = addr.q


@pytest.mark.parametrize(("value", "q"), [("0", 0.0), ("1", 1.0), ("0.", 0.0), ("0.001", 0.001)])
def test_contact_q_values(value: str, q: float) -> None:
    assert parse_name_addr(f"<sip:a@b>;q={value}").q == q


def test_route_list() -> None:
    routes = parse_name_addr_list("<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    assert [str(r.uri) for r in routes] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert all(isinstance(r.uri, SipUri) and r.uri.lr for r in routes)


# --- properties ------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
simple_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=6),
    host=st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
    port=st.none() | st.integers(1, 65535),
    params=st.dictionaries(st.text(_ALNUM, min_size=1, max_size=4), st.none(), max_size=2),
)
display_names = st.none() | st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12
)
header_params = st.dictionaries(
    st.text(_ALNUM + "-.!%*_+`'~", min_size=1, max_size=6),
    st.none() | st.text(st.characters(exclude_characters="\r\n"), max_size=6),
    max_size=3,
)
name_addrs = st.builds(
    NameAddr,
    uri=simple_uris,
    display_name=display_names,
    params=header_params,
    bracketed=st.booleans(),
)


@FAST
@given(name_addrs)
def test_name_addr_round_trip(addr: NameAddr) -> None:
    parsed = parse_name_addr(str(addr))
    assert parsed == addr
    assert str(parse_name_addr(str(parsed))) == str(parsed)


@FAST
@given(st.lists(name_addrs, min_size=1, max_size=4))
def test_contact_list_round_trip(addrs: list[NameAddr]) -> None:
    assert parse_contact_list(", ".join(map(str, addrs))) == addrs


@FAST
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_contact_list(text)


@FAST
@given(st.text('"<>;:=, \\@sipab.*', max_size=40))
def test_address_shaped_text_raises_only_parse_error(text: str) -> None:
    try:
        result = parse_contact_list(text)
    except SipParseError:
        return
    if result != "*":
        for addr in result:
            assert parse_name_addr(str(addr)) == addr
