"""Stateless nonces: verifiable by any node sharing the secret, stale after the lifetime."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sipha.sip.auth import NonceAuthority, NonceStatus

SECRET = b"k" * 32
T0 = 1_700_000_000.0


def test_fresh_nonce_is_valid_until_its_lifetime_then_stale() -> None:
    authority = NonceAuthority(SECRET, lifetime=30.0)
    nonce = authority.make_nonce(T0)
    assert authority.check_nonce(nonce, T0) is NonceStatus.VALID
    assert authority.check_nonce(nonce, T0 + 29.9) is NonceStatus.VALID
    assert authority.check_nonce(nonce, T0 + 30.1) is NonceStatus.STALE
    assert authority.check_nonce(nonce, T0 + 86_400) is NonceStatus.STALE


def test_nonce_is_url_safe_and_salt_makes_it_unique() -> None:
    authority = NonceAuthority(SECRET)
    a = authority.make_nonce(T0, b"a")
    b = authority.make_nonce(T0, b"b")
    assert a != b
    assert authority.make_nonce(T0, b"a") == a  # deterministic: no hidden randomness
    for nonce in (a, b, authority.make_nonce(T0, b"\xff" * 32)):
        assert set(nonce) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_other_secret_and_tampering_are_invalid() -> None:
    authority = NonceAuthority(SECRET)
    stranger = NonceAuthority(b"s" * 32)
    nonce = authority.make_nonce(T0, b"salt")
    assert stranger.check_nonce(nonce, T0) is NonceStatus.INVALID
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)))
    for index in (0, 7, 8, len(raw) - 1):  # timestamp, salt and MAC bytes
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        assert authority.check_nonce(forged, T0) is NonceStatus.INVALID


def test_non_canonical_spelling_of_a_valid_nonce_is_invalid() -> None:
    authority = NonceAuthority(SECRET)
    nonce = authority.make_nonce(T0)  # 24 bytes: 32 chars, no padding needed
    assert authority.check_nonce(nonce + "==", T0) is NonceStatus.INVALID
    nonce_with_pad = authority.make_nonce(T0, b"x")  # 25 bytes: the last char has spare bits
    last = nonce_with_pad[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    variant = nonce_with_pad[:-1] + sibling
    assert base64.urlsafe_b64decode(variant + "==") == base64.urlsafe_b64decode(
        nonce_with_pad + "=="
    )
    assert authority.check_nonce(variant, T0) is NonceStatus.INVALID


def test_small_future_skew_is_tolerated_large_is_not() -> None:
    authority = NonceAuthority(SECRET, max_skew=5.0)
    nonce = authority.make_nonce(T0 + 3.0)
    assert authority.check_nonce(nonce, T0) is NonceStatus.VALID
    assert authority.check_nonce(authority.make_nonce(T0 + 60.0), T0) is NonceStatus.INVALID


def test_misuse_raises_value_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        NonceAuthority(b"short")
    with pytest.raises(ValueError, match="lifetime"):
        NonceAuthority(SECRET, lifetime=0)
    authority = NonceAuthority(SECRET)
    with pytest.raises(ValueError, match="salt"):
        authority.make_nonce(T0, b"x" * 33)
    with pytest.raises(ValueError, match="timestamp"):
        authority.make_nonce(-1.0)
    with pytest.raises(ValueError, match="timestamp"):
        authority.make_nonce(float("nan"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_string_is_classified_without_raising(text: str) -> None:
    assert NonceAuthority(SECRET).check_nonce(text, T0) is NonceStatus.INVALID


@settings(max_examples=200, deadline=None)
@given(
    now=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    salt=st.binary(max_size=32),
    age=st.floats(min_value=0, max_value=1000, allow_nan=False),
)
def test_every_minted_nonce_checks_by_age(now: float, salt: bytes, age: float) -> None:
    authority = NonceAuthority(SECRET, lifetime=300.0)
    nonce = authority.make_nonce(now, salt)
    # Microsecond truncation makes the exact boundary fuzzy; the boundary is tested above.
    assume(not 299.0 < age <= 301.0)
    expected = NonceStatus.VALID if age <= 299.0 else NonceStatus.STALE
    assert authority.check_nonce(nonce, now + age) is expected
