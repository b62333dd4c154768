"""The digest checks a cluster needs beyond RFC 2617's: authenticate() leaves the nonce-count
to a shared store (so it never records anything itself), the digest uri must be the
Request-URI, a nonce tells how long its count must be kept, and a per-request qop (auth-int
for REGISTER) is offered and required."""

from __future__ import annotations

import pytest

from sipha.sip.auth import (
    AuthResult,
    DigestCredentials,
    DigestVerifier,
    NonceAuthority,
    build_credentials,
    compute_ha1,
)

SECRET = b"0123456789abcdef-cluster-secret"
REALM = "sip.example.com"
URI = "sip:bob@sip.example.com"
T0 = 1_700_000_000.0


def _verifier() -> DigestVerifier:
    return DigestVerifier(NonceAuthority(SECRET, lifetime=300.0), REALM)


def _creds(v: DigestVerifier, *, uri: str = URI, qop: str | None = None,
           body: bytes = b"", offered: tuple[str, ...] | None = None) -> DigestCredentials:
    challenge = v.challenge(T0, salt=b"s", qop=offered)
    return build_credentials(challenge, method="MESSAGE", uri=uri, username="alice",
                             password="pw", cnonce="cn", qop=qop, body=body)


def _ha1(v: DigestVerifier) -> str:
    return compute_ha1("alice", v.realm, "pw")


def test_authenticate_leaves_the_count_to_the_caller() -> None:
    v = _verifier()
    creds = _creds(v)
    for _ in range(3):  # the same nc again and again: the store decides, not this process
        assert v.authenticate(creds, method="MESSAGE", ha1=_ha1(v), now=T0 + 1,
                              request_uri=URI) is AuthResult.OK
    assert v.tracked_nonces == 0
    # verify() keeps the per-process check for callers without a store.
    assert v.verify(creds, method="MESSAGE", ha1=_ha1(v), now=T0 + 1) is AuthResult.OK
    assert v.verify(creds, method="MESSAGE", ha1=_ha1(v), now=T0 + 1) is AuthResult.REPLAY


def test_the_digest_uri_must_be_the_request_uri() -> None:
    v = _verifier()
    creds = _creds(v)
    other = "sip:+19005551234@sip.example.com"
    assert v.authenticate(creds, method="MESSAGE", ha1=_ha1(v), now=T0,
                          request_uri=other) is AuthResult.URI_MISMATCH
    assert v.verify(creds, method="MESSAGE", ha1=_ha1(v), now=T0,
                    request_uri=other) is AuthResult.URI_MISMATCH


def test_a_nonce_says_until_when_its_count_matters() -> None:
    authority = NonceAuthority(SECRET, lifetime=300.0)
    nonce = authority.make_nonce(T0, b"salt")
    assert authority.expires_at(nonce) == pytest.approx(T0 + 300.0)
    assert authority.expires_at(nonce[:-2] + "AA") is None
    assert NonceAuthority(b"another-secret-16b").expires_at(nonce) is None
    assert authority.expires_at("") is None
    assert authority.expires_at("!" * 10_000) is None


def test_auth_int_offered_and_required_per_request() -> None:
    v = _verifier()
    body = b"Contact list"
    creds = _creds(v, qop="auth-int", body=body, offered=("auth-int",))
    assert creds.qop == "auth-int"
    ok = v.authenticate(creds, method="MESSAGE", ha1=_ha1(v), now=T0, body=body,
                        qop=("auth-int",))
    assert ok is AuthResult.OK
    # The body changed on the way: refused.
    assert v.authenticate(creds, method="MESSAGE", ha1=_ha1(v), now=T0, body=b"other",
                          qop=("auth-int",)) is AuthResult.BAD_RESPONSE
    # Plain auth where auth-int is required: refused.
    plain = _creds(v)
    assert v.authenticate(plain, method="MESSAGE", ha1=_ha1(v), now=T0,
                          qop=("auth-int",)) is AuthResult.BAD_RESPONSE
    with pytest.raises(ValueError, match="qop"):
        v.challenge(T0, qop=("auth-conf",))
