"""Digest authentication: RFC test vectors, client/server round trips and every refusal."""

from __future__ import annotations

import itertools

import pytest

from sipha.sip.auth import (
    Algorithm,
    AuthResult,
    DigestChallenge,
    DigestCredentials,
    DigestVerifier,
    NonceAuthority,
    build_credentials,
    compute_ha1,
    compute_response,
    parse_challenge,
    parse_credentials,
)
from sipha.sip.errors import SipParseError

SECRET = b"0123456789abcdef-cluster-secret"
REALM = "sip.example.com"
URI = "sip:alice@sip.example.com"
T0 = 1_700_000_000.0


def _verifier(**kwargs: object) -> DigestVerifier:
    return DigestVerifier(NonceAuthority(SECRET, lifetime=300.0), REALM, **kwargs)  # type: ignore[arg-type]


def test_rfc2617_section_3_5_example() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    creds = build_credentials(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
        nc=1,
    )
    assert creds.response == "6629fae49393a05397450978507c4ef1"
    assert creds.qop == "auth"
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "nc=00000001" in str(creds)
    assert parse_credentials(str(creds)) == creds


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (Algorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (Algorithm.SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_example(algorithm: Algorithm, expected: str) -> None:
    challenge = parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f"algorithm={algorithm}, "
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    assert challenge.algorithm is algorithm
    assert challenge.qop == ("auth", "auth-int")
    creds = build_credentials(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert creds.response == expected


def test_ha1_is_hex_of_the_algorithms_hash_and_shared_by_sess_variants() -> None:
    assert compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"  # RFC 2617 §3.5 HA1
    )
    md5 = compute_ha1("u", "r", "p", Algorithm.MD5)
    sha = compute_ha1("u", "r", "p", Algorithm.SHA256)
    assert len(md5) == 32
    assert len(sha) == 64
    assert compute_ha1("u", "r", "p", Algorithm.MD5_SESS) == md5
    assert compute_ha1("u", "r", "p", Algorithm.SHA256_SESS) == sha


QOP_MODES: list[tuple[str, ...]] = [(), ("auth",), ("auth-int",), ("auth", "auth-int")]


@pytest.mark.parametrize(("algorithm", "qop"), list(itertools.product(list(Algorithm), QOP_MODES)))
@pytest.mark.parametrize("use_ha1", [False, True])
def test_client_answer_verifies_on_server(
    algorithm: Algorithm, qop: tuple[str, ...], use_ha1: bool
) -> None:
    verifier = _verifier(qop=qop)
    challenge = parse_challenge(str(verifier.challenge(T0, algorithm=algorithm, salt=b"s1")))
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    secret = (
        {"ha1": compute_ha1("alice", REALM, "pw", algorithm)} if use_ha1 else {"password": "pw"}
    )
    creds = build_credentials(
        challenge,
        method="INVITE",
        uri=URI,
        username="alice",
        cnonce="abc123",
        body=body,
        **secret,  # type: ignore[arg-type]
    )
    wire = parse_credentials(str(creds))
    assert wire == creds
    assert wire.qop == (qop[0] if qop else None)
    stored = compute_ha1("alice", REALM, "pw", algorithm)
    assert verifier.verify(wire, method="INVITE", ha1=stored, now=T0 + 1, body=body) is (
        AuthResult.OK
    )


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_wrong_password_is_refused(algorithm: Algorithm) -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0, algorithm=algorithm)
    creds = build_credentials(
        challenge, method="REGISTER", uri=URI, username="alice", password="guess", cnonce="c"
    )
    stored = compute_ha1("alice", REALM, "right", algorithm)
    result = verifier.verify(creds, method="REGISTER", ha1=stored, now=T0)
    assert result is AuthResult.BAD_RESPONSE


def _answer(
    challenge: DigestChallenge, *, nc: int = 1, method: str = "REGISTER", body: bytes = b""
) -> DigestCredentials:
    return build_credentials(
        challenge,
        method=method,
        uri=URI,
        username="alice",
        password="pw",
        cnonce="c0ffee",
        nc=nc,
        body=body,
    )


HA1 = compute_ha1("alice", REALM, "pw")


def test_expired_nonce_with_right_password_is_stale_and_wrong_password_is_not() -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0)
    creds = _answer(challenge)
    assert verifier.verify(creds, method="REGISTER", ha1=HA1, now=T0 + 300.0) is AuthResult.OK
    late = _answer(challenge, nc=2)
    assert verifier.verify(late, method="REGISTER", ha1=HA1, now=T0 + 301.0) is AuthResult.STALE
    bad = compute_ha1("alice", REALM, "nope")
    assert verifier.verify(late, method="REGISTER", ha1=bad, now=T0 + 301.0) is (
        AuthResult.BAD_RESPONSE
    )
    # The UA's retry after the stale re-challenge goes through.
    fresh = verifier.challenge(T0 + 301.0, stale=True)
    assert fresh.stale
    assert parse_challenge(str(fresh)).stale
    assert verifier.verify(_answer(fresh), method="REGISTER", ha1=HA1, now=T0 + 302.0) is (
        AuthResult.OK
    )


def test_forged_nonce_is_bad_nonce_even_with_right_response() -> None:
    verifier = _verifier()
    other = DigestVerifier(NonceAuthority(b"another-secret-16bytes"), REALM)
    for nonce_source in (other.challenge(T0), DigestChallenge(REALM, "dcd98b7102dd2f0e8b11d0f6")):
        creds = _answer(nonce_source)
        assert verifier.verify(creds, method="REGISTER", ha1=HA1, now=T0) is AuthResult.BAD_NONCE


def test_sibling_node_sharing_the_secret_accepts_the_nonce() -> None:
    node_a = _verifier()
    node_b = _verifier()
    creds = _answer(node_a.challenge(T0, salt=b"rnd"))
    assert node_b.verify(creds, method="REGISTER", ha1=HA1, now=T0 + 2) is AuthResult.OK


def test_replayed_or_decreasing_nonce_count_is_replay() -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0)
    first = _answer(challenge, nc=1)
    assert verifier.verify(first, method="REGISTER", ha1=HA1, now=T0) is AuthResult.OK
    assert verifier.verify(first, method="REGISTER", ha1=HA1, now=T0 + 1) is AuthResult.REPLAY
    third = _answer(challenge, nc=3)
    assert verifier.verify(third, method="REGISTER", ha1=HA1, now=T0 + 2) is AuthResult.OK
    second = _answer(challenge, nc=2)
    assert verifier.verify(second, method="REGISTER", ha1=HA1, now=T0 + 3) is AuthResult.REPLAY


def test_bad_response_does_not_advance_the_nonce_count() -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0)
    forged = _answer(challenge, nc=50)
    wrong = compute_ha1("alice", REALM, "x")
    assert verifier.verify(forged, method="REGISTER", ha1=wrong, now=T0) is (
        AuthResult.BAD_RESPONSE
    )
    assert verifier.tracked_nonces == 0
    assert verifier.verify(_answer(challenge, nc=1), method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.OK
    )


def test_replay_table_is_bounded_lru() -> None:
    verifier = _verifier(replay_window=2)
    challenges = [verifier.challenge(T0, salt=bytes([i])) for i in range(3)]
    for ch in challenges[:2]:
        assert verifier.verify(_answer(ch), method="REGISTER", ha1=HA1, now=T0) is AuthResult.OK
    # Touch the oldest so the middle one becomes least recently used.
    assert verifier.verify(_answer(challenges[0], nc=2), method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.OK
    )
    assert verifier.verify(_answer(challenges[2]), method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.OK
    )
    assert verifier.tracked_nonces == 2
    # Evicted nonce: its history is gone (documented exposure, bounded by the lifetime).
    assert verifier.verify(_answer(challenges[1]), method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.OK
    )
    # Still tracked: refused.
    assert verifier.verify(_answer(challenges[2]), method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.REPLAY
    )


def test_realm_mismatch() -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0)
    other_realm = DigestChallenge("evil.example.com", challenge.nonce, qop=("auth",))
    creds = _answer(other_realm)
    assert verifier.verify(creds, method="REGISTER", ha1=HA1, now=T0) is AuthResult.REALM_MISMATCH


def test_unknown_or_refused_algorithm_is_unsupported() -> None:
    verifier = _verifier(algorithms=[Algorithm.SHA256])
    nonce = verifier.challenge(T0, algorithm=Algorithm.SHA256).nonce
    md5 = _answer(DigestChallenge(REALM, nonce, qop=("auth",)))
    assert verifier.verify(md5, method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.UNSUPPORTED_ALGORITHM
    )
    header = str(md5).replace("algorithm=MD5", "algorithm=SHA-512-256")
    unknown = parse_credentials(header)
    assert unknown.algorithm == "SHA-512-256"
    assert verifier.verify(unknown, method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.UNSUPPORTED_ALGORITHM
    )
    with pytest.raises(ValueError, match="not accepted"):
        verifier.challenge(T0, algorithm=Algorithm.MD5)


def test_response_for_another_method_or_body_is_refused() -> None:
    verifier = _verifier(qop=("auth-int",))
    challenge = verifier.challenge(T0)
    creds = _answer(challenge, method="INVITE", body=b"sdp-1")
    assert verifier.verify(creds, method="BYE", ha1=HA1, now=T0, body=b"sdp-1") is (
        AuthResult.BAD_RESPONSE
    )
    assert verifier.verify(creds, method="INVITE", ha1=HA1, now=T0, body=b"sdp-2") is (
        AuthResult.BAD_RESPONSE
    )
    assert verifier.verify(creds, method="INVITE", ha1=HA1, now=T0, body=b"sdp-1") is (
        AuthResult.OK
    )


def test_qop_offered_must_be_used_and_unoffered_qop_is_refused() -> None:
    with_qop = _verifier()
    no_qop_challenge = DigestChallenge(REALM, with_qop.challenge(T0).nonce)
    downgraded = _answer(no_qop_challenge)
    assert downgraded.qop is None
    assert downgraded.nc is None
    assert with_qop.verify(downgraded, method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.BAD_RESPONSE
    )
    auth_only = _verifier(qop=("auth",))
    int_creds = _answer(DigestChallenge(REALM, auth_only.challenge(T0).nonce, qop=("auth-int",)))
    assert auth_only.verify(int_creds, method="REGISTER", ha1=HA1, now=T0) is (
        AuthResult.BAD_RESPONSE
    )
    rfc2069 = _verifier(qop=())
    upgraded = _answer(DigestChallenge(REALM, rfc2069.challenge(T0).nonce, qop=("auth",)))
    assert rfc2069.verify(upgraded, method="REGISTER", ha1=HA1, now=T0) is AuthResult.BAD_RESPONSE


def test_hand_built_inconsistent_credentials_never_raise() -> None:
    verifier = _verifier()
    nonce = verifier.challenge(T0).nonce
    cases = [
        DigestCredentials("alice", REALM, nonce, URI, "00", qop="auth"),  # no nc, no cnonce
        DigestCredentials("alice", REALM, nonce, URI, "é", qop="auth", nc=1, cnonce="c"),
        DigestCredentials("alice", REALM, nonce, URI, "00", Algorithm.MD5_SESS),  # no cnonce
    ]
    for creds in cases:
        assert verifier.verify(creds, method="REGISTER", ha1=HA1, now=T0) is (
            AuthResult.BAD_RESPONSE
        )


def test_sess_algorithm_binds_the_cnonce() -> None:
    verifier = _verifier()
    challenge = verifier.challenge(T0, algorithm=Algorithm.MD5_SESS)
    creds = _answer(challenge)
    swapped = DigestCredentials(
        creds.username,
        creds.realm,
        creds.nonce,
        creds.uri,
        creds.response,
        creds.algorithm,
        cnonce="other",
        qop=creds.qop,
        nc=creds.nc,
    )
    assert verifier.verify(swapped, method="REGISTER", ha1=HA1, now=T0) is AuthResult.BAD_RESPONSE


def test_rfc2069_sess_without_qop_still_sends_cnonce() -> None:
    challenge = DigestChallenge(REALM, "n", algorithm=Algorithm.SHA256_SESS)
    creds = _answer(challenge)
    assert creds.qop is None
    assert creds.cnonce == "c0ffee"
    assert creds.response == compute_response(
        algorithm=Algorithm.SHA256_SESS,
        ha1=compute_ha1("alice", REALM, "pw", Algorithm.SHA256),
        nonce="n",
        method="REGISTER",
        uri=URI,
        qop=None,
        nc=None,
        cnonce="c0ffee",
    )


def test_build_credentials_refuses_unanswerable_challenges_and_misuse() -> None:
    unknown_alg = parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-512-256')
    assert not unknown_alg.is_supported
    with pytest.raises(SipParseError):
        _answer(unknown_alg)
    conf_only = parse_challenge('Digest realm="r", nonce="n", qop="auth-conf"')
    assert not conf_only.is_supported
    with pytest.raises(SipParseError):
        _answer(conf_only)
    ok = DigestChallenge("r", "n", qop=("auth", "auth-int"))
    with pytest.raises(ValueError, match="exactly one"):
        build_credentials(ok, method="M", uri="u", username="a", cnonce="c")
    with pytest.raises(ValueError, match="exactly one"):
        build_credentials(ok, method="M", uri="u", username="a", password="p", ha1="0", cnonce="c")
    with pytest.raises(ValueError, match="out of range"):
        build_credentials(ok, method="M", uri="u", username="a", password="p", cnonce="c", nc=0)
    with pytest.raises(ValueError, match="not offered"):
        build_credentials(
            DigestChallenge("r", "n", qop=("auth",)),
            method="M",
            uri="u",
            username="a",
            password="p",
            cnonce="c",
            qop="auth-int",
        )
    forced = build_credentials(
        ok, method="M", uri="u", username="a", password="p", cnonce="c", qop="auth-int"
    )
    assert forced.qop == "auth-int"


def test_verifier_construction_misuse() -> None:
    authority = NonceAuthority(SECRET)
    with pytest.raises(ValueError, match="replay_window"):
        DigestVerifier(authority, REALM, replay_window=0)
    with pytest.raises(ValueError, match="qop"):
        DigestVerifier(authority, REALM, qop=("auth-conf",))
