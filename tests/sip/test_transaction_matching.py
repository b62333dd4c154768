"""Matching requests and responses to transactions (RFC 3261 §17.1.3, §17.2.3, §9.2)."""

from __future__ import annotations

from sipha.sip.transaction import (
    TransactionKey,
    build_ack_for_non2xx,
    build_cancel,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from tests.sip.transaction_helpers import response, sipp_request


def test_server_key_of_rfc3261_request() -> None:
    invite = sipp_request()
    assert server_key(invite) == TransactionKey("INVITE", "z9hG4bK-3456-1-0", ("10.0.0.1", 5061))
    assert server_key(invite).is_rfc3261
    assert server_key(sipp_request()) == server_key(invite)  # a retransmission


def test_ack_matches_invite_but_cancel_has_its_own_key() -> None:
    invite = sipp_request()
    ack = build_ack_for_non2xx(invite, response(invite, 486))
    assert server_key(ack) == server_key(invite)
    cancel = build_cancel(invite)
    assert server_key(cancel).method == "CANCEL"
    assert server_key(cancel) != server_key(invite)
    assert invite_key_for_cancel(cancel) == server_key(invite)


def test_sent_by_is_part_of_the_server_key() -> None:
    a = sipp_request()
    b = sipp_request()
    b.set_top_via("SIP/2.0/UDP 10.0.0.7:5061;branch=z9hG4bK-3456-1-0")
    assert server_key(a) != server_key(b)


def test_default_port_and_host_case_are_normalized() -> None:
    a = sipp_request()
    a.set_top_via("SIP/2.0/UDP Host.Example.com;branch=z9hG4bKx")
    b = sipp_request()
    b.set_top_via("SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKx")
    assert server_key(a) == server_key(b)
    c = sipp_request()
    c.set_top_via("SIP/2.0/TLS host.example.com;branch=z9hG4bKx")
    assert server_key(c).sent_by == ("host.example.com", 5061)


def test_method_separates_transactions_with_the_same_branch() -> None:
    assert server_key(sipp_request("OPTIONS")) != server_key(sipp_request())


def test_rfc2543_fallback_without_magic_cookie() -> None:
    invite = sipp_request(branch="1234-legacy")
    key = server_key(invite)
    assert not key.is_rfc3261
    assert key.sent_by is None
    assert server_key(sipp_request(branch="1234-legacy")) == key
    # The ACK of our non-2xx carries our To tag but matches all the same.
    ack = build_ack_for_non2xx(invite, response(invite, 404, to_tag="ours"))
    assert server_key(ack) == key
    # A new request in the call (new CSeq) does not.
    assert server_key(sipp_request(branch="1234-legacy", cseq=2)) != key
    no_branch = sipp_request()
    no_branch.set_top_via("SIP/2.0/UDP 10.0.0.1:5061")
    assert server_key(no_branch).branch is None
    assert not server_key(no_branch).is_rfc3261


def test_client_key_matches_request_and_its_responses() -> None:
    invite = sipp_request()
    assert client_key(invite) == TransactionKey("INVITE", "z9hG4bK-3456-1-0")
    assert client_key(response(invite, 180)) == client_key(invite)
    cancel = build_cancel(invite)
    assert client_key(response(cancel, 200)) == client_key(cancel) != client_key(invite)
