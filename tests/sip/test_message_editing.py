"""Proxy edits touch only the lines they name; everything else stays byte for byte."""

from __future__ import annotations

import pytest

from sipha.sip import Request, SipParseError, build_request, build_response, parse_message
from tests.messages import sipp_invite


def _request(data: bytes) -> Request:
    m = parse_message(data)
    assert isinstance(m, Request)
    return m


def _untouched_lines(before: bytes, after: bytes, touched: set[str]) -> None:
    old = [ln for ln in before.split(b"\r\n") if ln.split(b":")[0].decode() not in touched]
    new = after.split(b"\r\n")
    for line in old:
        assert line in new, line


def test_proxy_edits_rewrite_only_touched_lines() -> None:
    data = sipp_invite()
    m = _request(data)
    assert m.decrement_max_forwards() == 69
    m.add_record_route("<sip:127.0.0.10;lr>")
    m.push_via("SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKproxy")
    out = bytes(m)
    _untouched_lines(data, out, {"Max-Forwards"})
    lines = out.split(b"\r\n")
    assert lines[1] == b"Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKproxy"
    assert lines[2] == b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0"
    assert b"Record-Route: <sip:127.0.0.10;lr>" in lines
    assert b"Max-Forwards: 69" in lines
    again = _request(out)
    assert [v.branch for v in again.vias] == ["z9hG4bKproxy", "z9hG4bK-12345-1-0"]
    assert again.body == m.body


def test_pop_via_from_a_comma_list_keeps_the_rest() -> None:
    data = sipp_invite().replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0",
        b"Via: SIP/2.0/UDP p:5060;branch=z9hG4bKtop, SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKb",
    )
    m = _request(data)
    assert m.pop_via() == "SIP/2.0/UDP p:5060;branch=z9hG4bKtop"
    assert m.via.branch == "z9hG4bKb"
    assert len(_request(bytes(m)).vias) == 1


def test_pop_route_and_set_uri() -> None:
    data = sipp_invite(extra="Route: <sip:lb;lr>\r\nRoute: <sip:s1;lr>\r\n")
    m = _request(data)
    assert m.pop_route() == "<sip:lb;lr>"
    assert m.get_all("route") == ["<sip:s1;lr>"]
    m.set_uri("sip:bob@10.0.0.1:5070")
    assert bytes(m).startswith(b"INVITE sip:bob@10.0.0.1:5070 SIP/2.0\r\n")


def test_received_and_rport_are_added_to_the_top_via() -> None:
    data = sipp_invite().replace(b"z9hG4bK-12345-1-0", b"z9hG4bK-12345-1-0;rport")
    m = _request(data)
    assert m.set_via_received("127.0.0.99", 40000)
    via = _request(bytes(m)).via
    assert via.received == "127.0.0.99"
    assert via.rport == 40000


def test_max_forwards_zero_cannot_be_decremented() -> None:
    m = _request(sipp_invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    with pytest.raises(SipParseError) as info:
        m.decrement_max_forwards()
    assert info.value.status == 483


def test_build_response_copies_the_dialog_headers_and_adds_a_to_tag() -> None:
    req = _request(sipp_invite())
    resp = build_response(req, 180, to_tag="srv1")
    assert resp.reason == "Ringing"
    again = parse_message(bytes(resp))
    assert again.to_tag == "srv1"
    assert again.call_id == req.call_id
    assert again.via.branch == req.via.branch
    assert again.get("content-length") == "0"


def test_build_request_round_trips() -> None:
    req = build_request(
        "OPTIONS",
        "sip:127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
            ("From", "<sip:probe@127.0.0.1>;tag=a"),
            ("To", "<sip:127.0.0.1:5070>"),
            ("Call-ID", "probe-1"),
            ("CSeq", "1 OPTIONS"),
            ("Max-Forwards", "70"),
        ],
    )
    assert parse_message(bytes(req)) == req


def test_set_body_updates_content_length() -> None:
    m = _request(sipp_invite())
    m.set_body(b"hello", "text/plain")
    again = _request(bytes(m))
    assert again.body == b"hello"
    assert again.content_length == 5
    assert again.get("content-type") == "text/plain"
