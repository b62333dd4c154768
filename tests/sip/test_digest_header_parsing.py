"""Digest header values: the auth-param scanner, serialization, and the error contract."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.auth import (
    Algorithm,
    DigestChallenge,
    DigestCredentials,
    parse_challenge,
    parse_credentials,
)
from sipha.sip.errors import SipParseError

CREDS = (
    'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc3261_style_credentials_parse() -> None:
    creds = parse_credentials(CREDS)
    assert creds == DigestCredentials(
        username="bob",
        realm="biloxi.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="sip:bob@biloxi.com",
        response="6629fae49393a05397450978507c4ef1",
        algorithm=Algorithm.MD5,
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop="auth",
        nc=1,
    )


def test_scheme_and_names_are_case_insensitive_and_whitespace_and_empty_items_tolerated() -> None:
    challenge = parse_challenge(
        '  dIgEsT  REALM = "atlanta.com" ,, Nonce="n1",\tALGORITHM = sha-256-SESS , '
        'stale=true, qop="Auth, auth-int,", charset=UTF-8, domain="sip:a sip:b",'
    )
    assert challenge == DigestChallenge(
        realm="atlanta.com",
        nonce="n1",
        algorithm=Algorithm.SHA256_SESS,
        qop=("auth", "auth-int"),
        stale=True,
        domain="sip:a sip:b",
    )


@pytest.mark.parametrize(("raw", "stale"), [("TRUE", True), ("false", False), ("yes", False)])
def test_stale_is_true_only_for_true(raw: str, stale: bool) -> None:
    assert parse_challenge(f'Digest realm="r", nonce="n", stale={raw}').stale is stale


def test_quoted_pairs_are_unescaped_and_round_trip() -> None:
    challenge = parse_challenge(r'Digest realm="a \"quoted\" \\ realm, with comma", nonce="n"')
    assert challenge.realm == 'a "quoted" \\ realm, with comma'
    assert parse_challenge(str(challenge)) == challenge


def test_quoted_qop_and_uppercase_response_in_credentials_are_accepted() -> None:
    creds = parse_credentials(
        CREDS.replace("qop=auth", 'qop="auth"').replace("6629fae4", "6629FAE4")
    )
    assert creds.qop == "auth"
    assert creds.response == "6629fae49393a05397450978507c4ef1"


def test_missing_algorithm_means_md5_and_unknown_is_kept_verbatim() -> None:
    assert parse_challenge('Digest realm="r", nonce="n"').algorithm is Algorithm.MD5
    assert parse_challenge('Digest realm="r", nonce="n", algorithm=AKAv1-MD5').algorithm == (
        "AKAv1-MD5"
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        'Basic realm="r", nonce="n"',
        'Digestrealm="r", nonce="n"',
        'Digest nonce="n"',  # realm missing
        'Digest realm="r"',  # nonce missing
        'Digest realm="r", nonce="n", realm="s"',  # repeated
        'Digest realm="r" nonce="n"',  # no comma
        'Digest realm="r, nonce="n"',  # unterminated
        'Digest realm="r\\',  # escape at the end
        'Digest realm=, nonce="n"',  # empty value
        'Digest realm, nonce="n"',
        'Digest ="r"',
        'Digest realm="r\r\n", nonce="n"',  # control characters
        'Digest realm="r", nonce="n", algorithm="MD5 x"',
        'Digest realm="r", nonce="n", qop="auth;x"',
    ],
)
def test_malformed_challenges_raise_sip_parse_error(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_challenge(value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('username="bob", ', ""),
        ('uri="sip:bob@biloxi.com", ', ""),
        ('response="6629fae49393a05397450978507c4ef1"', 'response="xyz"'),
        ("nc=00000001", "nc=000000001"),
        ("nc=00000001", "nc=0x1"),
        ('cnonce="0a4f113b", ', ""),  # qop without cnonce
        ("nc=00000001, ", ""),  # qop without nc
    ],
)
def test_malformed_credentials_raise_sip_parse_error(old: str, new: str) -> None:
    value = CREDS.replace(old, new)
    assert value != CREDS
    with pytest.raises(SipParseError):
        parse_credentials(value)


def test_algorithm_parse() -> None:
    assert Algorithm.parse("sha-256") is Algorithm.SHA256
    assert Algorithm.parse("MD5-SESS") is Algorithm.MD5_SESS
    assert str(Algorithm.SHA256_SESS) == "SHA-256-sess"
    assert Algorithm.SHA256_SESS.is_session
    assert Algorithm.SHA256_SESS.hash_name == "sha256"
    assert not Algorithm.MD5.is_session
    with pytest.raises(SipParseError):
        Algorithm.parse("SHA-1")


def test_serializing_unwritable_values_is_misuse() -> None:
    with pytest.raises(ValueError, match="control"):
        str(DigestChallenge("r\r\nVia: x", "n"))
    with pytest.raises(ValueError, match="token"):
        str(DigestChallenge("r", "n", algorithm="MD5, evil=1"))
    with pytest.raises(ValueError, match="range"):
        str(DigestCredentials("u", "r", "n", "sip:x", "00", nc=2**32))


_HEADERISH = st.text(
    alphabet=st.sampled_from(
        list('Digest realm=nonce"\\, \t=qopauth-intalgorithmMD5nc0xé\r\n\x00')
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=120), _HEADERISH, _HEADERISH.map(lambda s: "Digest " + s)))
def test_arbitrary_text_raises_only_sip_parse_error(text: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        with contextlib.suppress(SipParseError):
            parse(text)


# Anything writable: no surrogates, no control characters except HTAB.
_value = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs", "Cc"]), st.just("\t")),
    max_size=20,
)
_algorithm = st.one_of(st.sampled_from(list(Algorithm)), st.just("SHA-512-256"))


@settings(max_examples=200, deadline=None)
@given(
    realm=_value,
    nonce=_value,
    opaque=st.none() | _value,
    algorithm=_algorithm,
    qop=st.lists(st.sampled_from(["auth", "auth-int", "auth-conf"]), unique=True).map(tuple),
    stale=st.booleans(),
    domain=st.none() | _value,
)
def test_challenge_round_trips(
    realm: str,
    nonce: str,
    opaque: str | None,
    algorithm: Algorithm | str,
    qop: tuple[str, ...],
    stale: bool,
    domain: str | None,
) -> None:
    challenge = DigestChallenge(realm, nonce, opaque, algorithm, qop, stale, domain)
    assert parse_challenge(str(challenge)) == challenge


@settings(max_examples=200, deadline=None)
@given(
    fields=st.tuples(_value, _value, _value, _value),
    response=st.text(alphabet="0123456789abcdef", min_size=1, max_size=64),
    algorithm=_algorithm,
    opaque=st.none() | _value,
    qop=st.none() | st.sampled_from(["auth", "auth-int"]),
    cnonce=_value,
    nc=st.integers(min_value=0, max_value=0xFFFFFFFF),
)
def test_credentials_round_trip(
    fields: tuple[str, str, str, str],
    response: str,
    algorithm: Algorithm | str,
    opaque: str | None,
    qop: str | None,
    cnonce: str,
    nc: int,
) -> None:
    username, realm, nonce, uri = fields
    creds = DigestCredentials(
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm,
        cnonce=cnonce if qop else None,
        opaque=opaque,
        qop=qop,
        nc=nc if qop else None,
    )
    assert parse_credentials(str(creds)) == creds
