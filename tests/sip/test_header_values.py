"""Header names, comma lists, generic params, quoted strings, CSeq and integer values."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.errors import SipParseError
from sipha.sip.headers import (
    CANONICAL_NAMES,
    COMPACT_FORMS,
    MULTI_VALUED,
    CSeq,
    canonical_name,
    format_params,
    is_token,
    normalize_name,
    parse_cseq,
    parse_params,
    parse_uint,
    quote,
    split_comma,
    unquote,
)

FAST = settings(max_examples=200, deadline=None)
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("v", "via"),
        ("V", "via"),
        ("i", "call-id"),
        ("m", "contact"),
        ("l", "content-length"),
        ("k", "supported"),
        ("x", "session-expires"),
        ("Call-ID", "call-id"),
        ("X-Custom", "x-custom"),
        ("q", "q"),  # not a compact form: only lowercased
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("call-id", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("via", "Via"),
        ("v", "Via"),
        ("i", "Call-ID"),
        ("max-forwards", "Max-Forwards"),
        ("x-my-header", "X-My-Header"),
        ("p-asserted-identity", "P-Asserted-Identity"),
    ],
)
def test_canonical_name(raw: str, expected: str) -> None:
    assert canonical_name(raw) == expected


def test_compact_forms_expand_to_known_canonical_names() -> None:
    assert len(COMPACT_FORMS) == 20
    for full in COMPACT_FORMS.values():
        assert full in CANONICAL_NAMES
        assert full == full.lower()


def test_multi_valued_covers_lists_but_not_credentials() -> None:
    for name in ("via", "route", "record-route", "contact", "allow", "supported", "require"):
        assert name in MULTI_VALUED
    for name in ("authorization", "www-authenticate", "call-id", "cseq", "from", "to"):
        assert name not in MULTI_VALUED


def test_is_token() -> None:
    assert is_token("INVITE")
    assert is_token("z9hG4bK-1.x~")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token("a;b")
    assert not is_token("é")


# --- split_comma ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ("INVITE,ACK,,BYE", ["INVITE", "ACK", "BYE"]),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        ("<sip:a@b;x=1,2>, <sip:c@d>", ["<sip:a@b;x=1,2>", "<sip:c@d>"]),
        ('"a \\" , b" <sip:x@y>', ['"a \\" , b" <sip:x@y>']),
        ('<sip:a@b>;p="x,y", c', ['<sip:a@b>;p="x,y"', "c"]),
        ("  ", []),
        ("", []),
    ],
)
def test_split_comma(value: str, expected: list[str]) -> None:
    assert split_comma(value) == expected


@pytest.mark.parametrize("value", ['"unterminated, x', "<sip:a@b, c", '"esc \\"'])
def test_split_comma_rejects_unterminated(value: str) -> None:
    with pytest.raises(SipParseError):
        split_comma(value)


# --- params -----------------------------------------------------------------------------------


def test_parse_params_basic_order_and_case() -> None:
    params = parse_params(" ;Tag=AbC ; lr;Expires = 60 ;received=[2001:db8::1]")
    assert list(params.items()) == [
        ("tag", "AbC"),
        ("lr", None),
        ("expires", "60"),
        ("received", "[2001:db8::1]"),
    ]


def test_parse_params_quoted_values_are_unquoted() -> None:
    params = parse_params(';+sip.instance="<urn:uuid:1;2>";x="a \\"q\\" b" ; y=1')
    assert params == {"+sip.instance": "<urn:uuid:1;2>", "x": 'a "q" b', "y": "1"}


def test_parse_params_first_occurrence_wins() -> None:
    assert parse_params(";tag=a;TAG=b") == {"tag": "a"}


def test_parse_params_empty() -> None:
    assert parse_params("") == {}
    assert parse_params("  ") == {}


@pytest.mark.parametrize(
    "text",
    [
        "tag=x",  # no leading ';'
        ";",
        ";;a",
        ";a=",
        ";a b=c",
        ";a=b c",
        ";a=<x>",
        ';a="unterminated',
        ';a="x"junk',
        ';"q"=x',
        ";a=b;",
    ],
)
def test_parse_params_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_params(text)


@FAST
@given(
    st.dictionaries(
        tokens.map(str.lower),
        st.none() | tokens | st.text(st.characters(exclude_characters="\r\n"), max_size=10),
        max_size=5,
    )
)
def test_params_round_trip(params: dict[str, str | None]) -> None:
    assert parse_params(format_params(params)) == params


@FAST
@given(st.text(max_size=60))
def test_parse_params_arbitrary_text_raises_only_parse_error(text: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_params(text)


@FAST
@given(st.text(max_size=60))
def test_split_comma_arbitrary_text_raises_only_parse_error(text: str) -> None:
    try:
        parts = split_comma(text)
    except SipParseError:
        return
    assert all(p == p.strip(" \t") and p for p in parts)


# --- quoted strings -------------------------------------------------------------------------


def test_unquote_and_quote() -> None:
    assert unquote('"a\\"b\\\\c"') == 'a"b\\c'
    assert unquote('""') == ""
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert unquote('"\\q"') == "q"  # any quoted-pair stands for its character


@pytest.mark.parametrize("text", ["abc", '"abc', '"a"b', '"a\\', '"a\rb"', "", '"\\\n"'])
def test_unquote_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        unquote(text)


def test_quote_rejects_crlf() -> None:
    with pytest.raises(ValueError, match="CR/LF"):
        quote("a\r\nb")


@FAST
@given(st.text(st.characters(exclude_characters="\r\n"), max_size=30))
def test_quote_round_trip(text: str) -> None:
    assert unquote(quote(text)) == text


# --- CSeq and integers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4711 INVITE", CSeq(4711, "INVITE")),
        ("  0   OPTIONS ", CSeq(0, "OPTIONS")),
        ("2147483647 REGISTER", CSeq(2**31 - 1, "REGISTER")),
        ("1\tNEWMETHOD", CSeq(1, "NEWMETHOD")),
    ],
)
def test_parse_cseq(value: str, expected: CSeq) -> None:
    cseq = parse_cseq(value)
    assert cseq == expected
    assert parse_cseq(str(cseq)) == cseq


@pytest.mark.parametrize(
    "value",
    [
        "",
        "INVITE",
        "1",
        "-1 INVITE",
        "2147483648 INVITE",
        "36893488147419103232 REGISTER",  # RFC 4475 §3.1.2.4 style overflow
        "1 INVITE extra",
        "1 INV;ITE",
        "x1 INVITE",
        "١ INVITE",  # a non-ASCII digit
    ],
)
def test_parse_cseq_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_cseq(value)


def test_cseq_str() -> None:
    assert str(CSeq(8, "BYE")) == "8 BYE"


def test_parse_uint() -> None:
    assert parse_uint(" 70 ", name="Max-Forwards", maximum=255) == 70
    assert parse_uint("0", name="Max-Forwards", maximum=255) == 0
    assert parse_uint("0000255", name="Max-Forwards", maximum=255) == 255
    assert parse_uint("4294967295", name="Expires", maximum=2**32 - 1) == 2**32 - 1
    assert parse_uint("1" * 200, name="Expires", maximum=2**32 - 1, clamp=True) == 2**32 - 1
    assert parse_uint("4294967296", name="Expires", maximum=2**32 - 1, clamp=True) == 2**32 - 1


@pytest.mark.parametrize("value", ["", " ", "256", "-1", "+1", "1 2", "0x10", "1.0", "9" * 5000])
def test_parse_uint_rejects_and_names_header(value: str) -> None:
    with pytest.raises(SipParseError, match="Max-Forwards"):
        parse_uint(value, name="Max-Forwards", maximum=255)


@FAST
@given(st.text(max_size=30))
def test_cseq_arbitrary_text_raises_only_parse_error(text: str) -> None:
    try:
        cseq = parse_cseq(text)
    except SipParseError:
        return
    assert 0 <= cseq.seq < 2**31
    assert is_token(cseq.method)
