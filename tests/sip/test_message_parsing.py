"""parse_message: what a node reads from well-formed messages, and byte-exact round trips."""

from __future__ import annotations

import pytest

from sipha.sip import Request, Response, SipParseError, parse_message
from tests.messages import SDP, sipp_invite, sipp_ok


def test_invite_start_line_and_mandatory_headers() -> None:
    m = parse_message(sipp_invite())
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert m.ruri == "sip:service@127.0.0.1:5060"
    assert m.call_id == "1-12345@127.0.0.1"
    assert (m.cseq.seq, m.cseq.method) == (1, "INVITE")
    assert m.via.branch == "z9hG4bK-12345-1-0"
    assert m.via.transport == "UDP"
    assert m.from_tag == "12345SIPpTag001"
    assert m.to_tag is None
    assert m.max_forwards == 70
    assert m.body == SDP.encode()


def test_response_status_and_method_from_cseq() -> None:
    m = parse_message(sipp_ok())
    assert isinstance(m, Response)
    assert (m.status, m.reason, m.method) == (200, "OK", "INVITE")
    assert m.to_tag == "67890SIPpTag011"


@pytest.mark.parametrize("make", [sipp_invite, sipp_ok])
def test_untouched_message_serializes_byte_for_byte(make: object) -> None:
    data = make()  # type: ignore[operator]
    assert bytes(parse_message(data)) == data


def test_compact_names_and_case_insensitive_lookup() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\n"
        b"v: SIP/2.0/UDP h:5060;branch=z9hG4bK1\r\n"
        b"f: <sip:x@y>;tag=1\r\n"
        b"t: <sip:a@b>\r\n"
        b"i: abc\r\n"
        b"CSEQ: 7 OPTIONS\r\n"
        b"m: <sip:x@h>\r\n"
        b"l: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert m.get("Call-ID") == m.get("i") == m.get("CALL-id") == "abc"
    assert m.get("Contact") == "<sip:x@h>"
    assert m.get("content-length") == "0"
    assert m.has("From")
    assert "f" in m
    assert bytes(m) == data


def test_multi_valued_headers_comma_separated_or_repeated() -> None:
    data = (
        b"BYE sip:a@b SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP p1:5060;branch=z9hG4bK1, SIP/2.0/TCP p2;branch=z9hG4bK2\r\n"
        b"Via: SIP/2.0/UDP h:5060;branch=z9hG4bK3\r\n"
        b"Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
        b"Route: <sip:p3;lr>\r\n"
        b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert [v.branch for v in m.vias] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
    assert m.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert [str(r.uri) for r in m.routes] == ["sip:p1;lr", "sip:p2;lr", "sip:p3;lr"]


def test_folded_header_is_unfolded_on_read_and_kept_on_write() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        b"Subject: I know you're there,\r\n  pick up the phone\r\n\tand talk to me!\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert m.get("subject") == "I know you're there, pick up the phone and talk to me!"
    m.decrement_max_forwards()
    assert b"there,\r\n  pick up the phone\r\n\tand talk" in bytes(m)


def test_quoted_display_name_with_escapes() -> None:
    data = sipp_invite().replace(
        b"From: sipp <", b'From: "Jo \\"the\\" Caller, Esq." <'
    )
    data = data.replace(b"Content-Length", b"X: 1\r\nContent-Length")
    m = parse_message(data)
    assert m.from_.display_name == 'Jo "the" Caller, Esq.'
    assert m.from_tag == "12345SIPpTag001"


def test_extra_datagram_bytes_beyond_content_length_are_discarded() -> None:
    data = sipp_invite()
    m = parse_message(data + b"garbage")
    assert m.body == SDP.encode()
    assert bytes(m) == data


def test_missing_content_length_on_udp_takes_the_rest() -> None:
    data = sipp_invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    assert parse_message(data).body == SDP.encode()


def test_missing_content_length_on_a_stream_is_an_error() -> None:
    data = sipp_invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    with pytest.raises(SipParseError):
        parse_message(data, stream=True)


def test_leading_crlf_is_ignored() -> None:
    data = sipp_invite()
    assert parse_message(b"\r\n\r\n" + data) == parse_message(data)


def test_ipv6_via_and_request_uri() -> None:
    data = (
        b"OPTIONS sip:[2001:db8::10]:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP [2001:db8::9:1]:5061;branch=z9hG4bKabc;rport\r\n"
        b"From: <sip:x@[2001:db8::9:1]>;tag=1\r\nTo: <sip:[2001:db8::10]>\r\nCall-ID: c\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert isinstance(m, Request)
    assert m.via.sent_by == ("[2001:db8::9:1]", 5061) or m.via.sent_by == ("2001:db8::9:1", 5061)
    assert m.uri.port == 5070  # type: ignore[union-attr]
