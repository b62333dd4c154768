"""Stateless branch derivation (RFC 3261 §16.11) and Via matching (§17.2.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.sip.branch import (
    branch_digest_input,
    is_rfc3261_branch,
    request_matches_via,
    stateless_branch,
)
from sipha.sip.headers import is_token
from sipha.sip.message import Request, build_request
from sipha.sip.parser import parse_message
from tests.messages import sipp_invite

SECRET = b"cluster-secret"


def _request(
    method: str = "INVITE",
    *,
    via: str = "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0",
    seq: int = 1,
    call_id: str = "1-12345@127.0.0.1",
    from_tag: str = "12345SIPpTag001",
    to_tag: str | None = None,
    ruri: str = "sip:service@127.0.0.1:5060",
) -> Request:
    to = "<sip:service@127.0.0.1:5060>" + (f";tag={to_tag}" if to_tag else "")
    return build_request(
        method,
        ruri,
        [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", f"<sip:sipp@127.0.0.1:5061>;tag={from_tag}"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{seq} {method}"),
        ],
    )


def _cancel_and_ack(invite: Request) -> tuple[Request, Request]:
    """The CANCEL (§9.1) and the non-2xx ACK (§17.1.1.3) a UAC sends for ``invite``."""
    common = {
        "via": invite.get("via") or "",
        "seq": invite.cseq.seq,
        "call_id": invite.call_id,
        "from_tag": invite.from_tag or "",
        "ruri": invite.ruri,
    }
    cancel = _request("CANCEL", **common)  # type: ignore[arg-type]
    ack = _request("ACK", to_tag="uas-tag-from-486", **common)  # type: ignore[arg-type]
    return cancel, ack


def test_branch_has_magic_cookie_and_is_a_token() -> None:
    branch = stateless_branch(_request(), secret=SECRET)
    assert branch.startswith("z9hG4bK")
    assert len(branch) > len("z9hG4bK") + 16
    assert is_token(branch)


def test_retransmission_gets_same_branch() -> None:
    first = parse_message(sipp_invite())
    again = parse_message(sipp_invite())
    assert isinstance(first, Request)
    assert isinstance(again, Request)
    assert stateless_branch(first, secret=SECRET) == stateless_branch(again, secret=SECRET)


def test_received_stamp_does_not_change_branch() -> None:
    invite = _request(via="SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bK-1")
    before = stateless_branch(invite)
    invite.set_via_received("192.0.2.1", 40000)
    assert "received" in (invite.get("via") or "")
    assert stateless_branch(invite) == before


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0",  # RFC 3261 peer
        "SIP/2.0/UDP 127.0.0.1:5061",  # RFC 2543 peer: no branch at all
        "SIP/2.0/UDP 127.0.0.1:5061;branch=oldstyle1",
    ],
)
def test_cancel_and_non_2xx_ack_share_the_invite_branch(via: str) -> None:
    invite = _request(via=via)
    cancel, ack = _cancel_and_ack(invite)
    expected = stateless_branch(invite, secret=SECRET)
    assert stateless_branch(cancel, secret=SECRET) == expected
    assert stateless_branch(ack, secret=SECRET) == expected


def test_different_transactions_get_different_branches() -> None:
    base = stateless_branch(_request())
    others = [
        _request(via="SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-2-0"),
        _request(via="SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-12345-1-0"),
        _request(via="SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0"),
    ]
    assert len({base, *(stateless_branch(r) for r in others)}) == 4


def test_rfc2543_requests_differ_by_cseq_call_id_from_tag_and_ruri() -> None:
    old = "SIP/2.0/UDP 127.0.0.1:5061"
    branches = {
        stateless_branch(_request(via=old)),
        stateless_branch(_request(via=old, seq=2)),
        stateless_branch(_request(via=old, call_id="other")),
        stateless_branch(_request(via=old, from_tag="other")),
        stateless_branch(_request(via=old, ruri="sip:other@127.0.0.1")),
    }
    assert len(branches) == 5


def test_salt_and_secret_change_the_branch() -> None:
    invite = _request()
    plain = stateless_branch(invite, secret=SECRET)
    assert stateless_branch(invite, secret=SECRET, salt="1") != plain
    assert stateless_branch(invite, secret=SECRET, salt="1") != stateless_branch(
        invite, secret=SECRET, salt="2"
    )
    assert stateless_branch(invite, secret=b"other") != plain
    assert stateless_branch(invite, secret=b"x" * 100) != stateless_branch(
        invite, secret=b"y" * 100
    )


def test_digest_input_is_method_independent() -> None:
    invite = _request()
    cancel, _ = _cancel_and_ack(invite)
    assert branch_digest_input(invite, salt="s") == branch_digest_input(cancel, salt="s")


_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    branch=st.one_of(st.none(), _tokens, _tokens.map(lambda t: "z9hG4bK" + t)),
    host=st.sampled_from(["127.0.0.1", "proxy.example.com", "[2001:db8::1]"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    seq=st.integers(0, 2**31 - 2),
    call_id=_tokens,
    from_tag=_tokens,
    salt=st.text(max_size=4),
)
def test_branch_stability(
    branch: str | None,
    host: str,
    port: int | None,
    seq: int,
    call_id: str,
    from_tag: str,
    salt: str,
) -> None:
    via = f"SIP/2.0/UDP {host}" + (f":{port}" if port else "")
    if branch is not None:
        via += f";branch={branch}"
    invite = _request(via=via, seq=seq, call_id=call_id, from_tag=from_tag)
    result = stateless_branch(invite, secret=SECRET, salt=salt)
    assert result.startswith("z9hG4bK")
    assert is_token(result)
    reparsed = parse_message(bytes(invite))
    assert isinstance(reparsed, Request)
    assert stateless_branch(reparsed, secret=SECRET, salt=salt) == result
    cancel, ack = _cancel_and_ack(invite)
    assert stateless_branch(cancel, secret=SECRET, salt=salt) == result
    assert stateless_branch(ack, secret=SECRET, salt=salt) == result
    assert stateless_branch(invite, secret=SECRET, salt=salt + "x") != result
    if branch is None or not branch.startswith("z9hG4bK"):
        # RFC 2543: the CSeq number separates transactions.
        later = _request(via=via, seq=seq + 1, call_id=call_id, from_tag=from_tag)
        assert stateless_branch(later, secret=SECRET, salt=salt) != result


# -- §17.2.3 matching ----------------------------------------------------------------------------


def test_is_rfc3261_branch() -> None:
    assert is_rfc3261_branch("z9hG4bK-1")
    assert not is_rfc3261_branch("z9hg4bk-1")
    assert not is_rfc3261_branch("12345")
    assert not is_rfc3261_branch(None)


def test_request_matches_via() -> None:
    invite = _request(via="SIP/2.0/UDP Proxy.Example.com;branch=z9hG4bKabc")
    assert request_matches_via(invite, "z9hG4bKabc", ("proxy.example.com", 5060))
    assert request_matches_via(invite, "z9hG4bKabc", ("proxy.example.com", None))
    assert not request_matches_via(invite, "z9hG4bKabd", ("proxy.example.com", None))
    assert not request_matches_via(invite, "z9hG4bKabc", ("proxy.example.com", 5070))
    assert not request_matches_via(invite, "z9hG4bKabc", ("other.example.com", None))
    assert request_matches_via(invite, "z9hG4bKabc", ("proxy.example.com", None), method="INVITE")
    assert not request_matches_via(invite, "z9hG4bKabc", ("proxy.example.com", None), method="BYE")


def test_ack_matches_invite_transaction_but_cancel_does_not() -> None:
    invite = _request(via="SIP/2.0/TLS h:5061;branch=z9hG4bKabc")
    cancel, ack = _cancel_and_ack(invite)
    sent_by = ("h", None)  # TLS default port is 5061
    assert request_matches_via(ack, "z9hG4bKabc", sent_by, method="INVITE")
    assert not request_matches_via(cancel, "z9hG4bKabc", sent_by, method="INVITE")
    assert request_matches_via(cancel, "z9hG4bKabc", sent_by, method="CANCEL")


def test_rfc2543_branch_never_matches_by_branch() -> None:
    invite = _request(via="SIP/2.0/UDP h;branch=abc")
    assert not request_matches_via(invite, "abc", ("h", None))
