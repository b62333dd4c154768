"""Shared test helpers: canonical messages as SIPp sends them."""

from __future__ import annotations

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def sipp_invite(call_id: str = "1-12345@127.0.0.1", extra: str = "", body: str = SDP) -> bytes:
    """The INVITE of SIPp's built-in uac scenario."""
    return (
        "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
        "From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
        "To: service <sip:service@127.0.0.1:5060>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: sip:sipp@127.0.0.1:5061\r\n"
        "Max-Forwards: 70\r\n"
        f"{extra}"
        "Subject: Performance Test\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body.encode())}\r\n"
        "\r\n" + body
    ).encode()


def sipp_ok(call_id: str = "1-12345@127.0.0.1") -> bytes:
    """A 200 OK with SDP as SIPp's uas answers."""
    return (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
        "From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n"
        "To: service <sip:service@127.0.0.1:5060>;tag=67890SIPpTag011\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n"
        "\r\n" + SDP
    ).encode()
