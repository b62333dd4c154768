"""Signed tokens in branches: round trip and forgery resistance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.branch import MAX_TOKEN_LENGTH, make_branch, read_branch_token
from sipha.sip.headers import is_token
from sipha.sip.message import Response, build_request, build_response
from sipha.sip.parser import parse_message

SECRET = b"cluster-secret"


def test_round_trip() -> None:
    branch = make_branch("s3", b"txn-1", SECRET)
    assert branch.startswith("z9hG4bK")
    assert is_token(branch)
    assert read_branch_token(branch, SECRET) == "s3"


def test_round_trip_through_a_response_via() -> None:
    branch = make_branch("7", b"txn", SECRET)
    request = build_request(
        "OPTIONS",
        "sip:s@h",
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch={branch}"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:s@h>"),
            ("Call-ID", "c"),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    response = parse_message(bytes(build_response(request, 200, to_tag="x")))
    assert isinstance(response, Response)
    assert read_branch_token(response.via.branch, SECRET) == "7"


def test_same_input_same_branch_different_input_or_token_different_branch() -> None:
    assert make_branch("1", b"a", SECRET) == make_branch("1", b"a", SECRET)
    assert make_branch("1", b"a", SECRET) != make_branch("1", b"b", SECRET)
    assert make_branch("1", b"a", SECRET) != make_branch("2", b"a", SECRET)


def test_tampered_token_rejected() -> None:
    branch = make_branch("s1", b"txn", SECRET)
    forged = branch.replace(".s1.", ".s2.")
    assert forged != branch
    assert read_branch_token(forged, SECRET) is None


def test_tampered_uniq_or_mac_rejected() -> None:
    branch = make_branch("s1", b"txn", SECRET)
    i = len("z9hG4bK")
    flipped_uniq = branch[:i] + ("0" if branch[i] != "0" else "1") + branch[i + 1 :]
    flipped_mac = branch[:-1] + ("0" if branch[-1] != "0" else "1")
    assert read_branch_token(flipped_uniq, SECRET) is None
    assert read_branch_token(flipped_mac, SECRET) is None


def test_wrong_secret_rejected() -> None:
    assert read_branch_token(make_branch("s1", b"txn", SECRET), b"other") is None


@pytest.mark.parametrize(
    "branch",
    [
        None,
        "",
        "z9hG4bK",
        "z9hG4bK-12345-1-0",
        "abc.def.ghi",
        "z9hG4bKa.b.c",
        "z9hG4bK..",
        "z9hG4bK" + "0" * 16 + ".x." + "é" * 16,
        "z9hG4bK" + "0" * 16 + ".x.y." + "0" * 16,
    ],
)
def test_foreign_branches_read_as_none(branch: str | None) -> None:
    assert read_branch_token(branch, SECRET) is None


@pytest.mark.parametrize("token", ["", "a.b", "a b", "x" * (MAX_TOKEN_LENGTH + 1), "é"])
def test_bad_tokens_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        make_branch(token, b"x", SECRET)


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_branch("1", b"x", b"")
    with pytest.raises(ValueError, match="secret"):
        read_branch_token("z9hG4bKx", b"")


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_!%*+`'~",
        min_size=1,
        max_size=MAX_TOKEN_LENGTH,
    ),
    digest_input=st.binary(max_size=64),
    secret=st.binary(min_size=1, max_size=100),
    junk=st.text(max_size=60),
)
def test_token_property(token: str, digest_input: bytes, secret: bytes, junk: str) -> None:
    branch = make_branch(token, digest_input, secret)
    assert is_token(branch)
    assert read_branch_token(branch, secret) == token
    # Arbitrary text never raises and never verifies.
    assert read_branch_token(junk, secret) is None
    assert read_branch_token("z9hG4bK" + junk, secret) is None
