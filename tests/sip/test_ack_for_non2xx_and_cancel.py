"""The ACK for a non-2xx final (RFC 3261 §17.1.1.3) and CANCEL (§9.1), field by field."""

from __future__ import annotations

import pytest

from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, build_request
from sipha.sip.parser import parse_message
from sipha.sip.transaction import (
    build_ack_for_non2xx,
    build_cancel,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from tests.sip.transaction_helpers import response, sipp_request

ROUTES = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


def _common_checks(derived: Request, invite: Request, method: str) -> None:
    assert derived.method == method
    assert derived.ruri == invite.ruri
    assert derived.call_id == invite.call_id
    assert derived.get("from") == invite.get("from")
    assert derived.cseq.seq == invite.cseq.seq
    assert derived.cseq.method == method
    # Only the top Via, verbatim: same branch so the peer matches the INVITE transaction.
    assert derived.get_all("via") == [invite.get_all("via")[0]]
    assert derived.via.branch == invite.via.branch
    assert derived.get_all("route") == list(ROUTES)
    assert derived.max_forwards == 70
    assert derived.body == b""
    assert derived.content_length == 0
    for absent in ("contact", "content-type", "subject"):
        assert not derived.has(absent)


def test_ack_for_non_2xx_fields() -> None:
    invite = sipp_request(routes=ROUTES)
    busy = response(invite, 486, to_tag="uas-77")
    ack = build_ack_for_non2xx(invite, busy)
    _common_checks(ack, invite, "ACK")
    # To comes from the response, with the tag the UAS chose.
    assert ack.get("to") == busy.get("to")
    assert ack.to_tag == "uas-77"
    # It is part of the INVITE transaction on the server side (§17.2.3).
    assert server_key(ack) == server_key(invite)
    # And it survives a round trip through the parser unchanged.
    assert bytes(parse_message(bytes(ack))) == bytes(ack)


def test_cancel_fields() -> None:
    invite = sipp_request(routes=ROUTES, cseq=7)
    cancel = build_cancel(invite)
    _common_checks(cancel, invite, "CANCEL")
    assert cancel.get("to") == invite.get("to")
    assert cancel.to_tag is None
    assert cancel.cseq.seq == 7
    # A transaction of its own on both sides, that still finds the INVITE (§9.2).
    assert server_key(cancel) != server_key(invite)
    assert invite_key_for_cancel(cancel) == server_key(invite)
    assert client_key(cancel) != client_key(invite)
    assert client_key(cancel).branch == client_key(invite).branch


def test_without_routes_there_are_none() -> None:
    invite = sipp_request()
    assert build_cancel(invite).get_all("route") == []
    assert build_ack_for_non2xx(invite, response(invite, 404)).get_all("route") == []


def test_invite_missing_headers_raises_parse_error_only() -> None:
    bare = build_request("INVITE", "sip:a@b", [("Call-ID", "x"), ("CSeq", "1 INVITE")])
    with pytest.raises(SipParseError):
        build_cancel(bare)
