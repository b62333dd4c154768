"""A corpus of malformed SIP messages with the verdict for each.

Each entry: (name, bytes, expected status of the SipParseError, whether a 400 can be built from
what was salvaged). The transport tests send the same corpus over UDP and TCP.
"""

from __future__ import annotations

from tests.messages import sipp_invite
from tests.sip.rfc4475 import INVALID as RFC4475_INVALID

_BASE = sipp_invite()


def _sub(old: bytes, new: bytes) -> bytes:
    assert old in _BASE, old
    return _BASE.replace(old, new, 1)


CL = b"Content-Length: 129"
assert CL in _BASE

# (name, data, status, answerable)
CORPUS: list[tuple[str, bytes, int, bool]] = [
    ("empty", b"", 400, False),
    ("only-crlf", b"\r\n\r\n", 400, False),
    ("no-header-end", _BASE.split(b"\r\n\r\n")[0], 400, False),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, False),
    ("http-request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 505, False),
    ("bad-version", _sub(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"), 505, True),
    ("request-line-extra-space", _sub(b"INVITE sip:", b"INVITE  sip:"), 400, False),
    ("request-uri-without-scheme", _sub(b"INVITE sip:service@", b"INVITE service@"), 400, True),
    ("bad-method-token", _sub(b"INVITE sip:", b"INV(ITE sip:"), 400, False),
    ("missing-via", _sub(b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n", b""),
     400, False),
    ("missing-from", _sub(b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001\r\n", b""),
     400, False),
    ("missing-to", _sub(b"To: service <sip:service@127.0.0.1:5060>\r\n", b""), 400, False),
    ("missing-call-id", _sub(b"Call-ID: 1-12345@127.0.0.1\r\n", b""), 400, False),
    ("missing-cseq", _sub(b"CSeq: 1 INVITE\r\n", b""), 400, False),
    ("cseq-not-a-number", _sub(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), 400, True),
    ("cseq-negative", _sub(b"CSeq: 1 INVITE", b"CSeq: -1 INVITE"), 400, True),
    ("cseq-too-big", _sub(b"CSeq: 1 INVITE", b"CSeq: 4294967296 INVITE"), 400, True),
    ("cseq-method-mismatch", _sub(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), 400, True),
    ("cseq-no-method", _sub(b"CSeq: 1 INVITE", b"CSeq: 1"), 400, True),
    ("content-length-negative", _sub(CL, b"Content-Length: -5"), 400, True),
    ("content-length-not-a-number", _sub(CL, b"Content-Length: ten"), 400, True),
    ("content-length-beyond-body", _sub(CL, b"Content-Length: 5000"), 400, True),
    ("content-length-huge", _sub(CL, b"Content-Length: 99999999999999999999"), 400, True),
    ("header-without-colon", _sub(b"Subject: Performance Test", b"Subject Performance Test"),
     400, True),
    ("header-name-with-space", _sub(b"Subject: Perf", b"Sub ject: Perf"), 400, True),
    ("continuation-first", _sub(b"\r\nVia: SIP", b"\r\n Via: SIP"), 400, False),
    ("nul-byte", _sub(b"Subject: Performance", b"Subject: Perf\x00ormance"), 400, True),
    ("non-utf8", _sub(b"Subject: Performance", b"Subject: Perf\xff\xfeormance"), 400, True),
    ("bare-lf-inside", _sub(b"Subject: Performance", b"Subject: Perf\normance"), 400, True),
    ("huge-header", _sub(b"Subject: Performance", b"Subject: " + b"x" * 20_000), 400, True),
    ("oversized-message", _sub(b"Subject: Performance", b"Subject: " + b"x" * 70_000), 513, False),
    ("thousands-of-via-lines",
     _sub(b"Max-Forwards: 70\r\n",
          b"Max-Forwards: 70\r\n" + b"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" * 1500),
     400, True),
    # The damage sits in a mandatory header: nothing trustworthy to answer with.
    ("nul-byte-in-call-id", _sub(b"Call-ID: 1-", b"Call-ID: \x001-"), 400, False),
    ("non-utf8-in-via", _sub(b"Via: SIP/2.0/UDP 127.0.0.1", b"Via: SIP/2.0/UDP 127.0.0.\xff"),
     400, False),
    ("status-code-too-short", b"SIP/2.0 20 OK\r\nVia: x\r\n\r\n", 400, False),
    ("status-code-out-of-range", b"SIP/2.0 099 Weird\r\nVia: x\r\n\r\n", 400, False),
]

# RFC 4475 §3.1.2's invalid messages that the parser rejects (the others: rfc4475.py).
CORPUS.extend(RFC4475_INVALID)

# Accepted at parse time; the broken value raises SipParseError only when it is read.
LAZY: list[tuple[str, bytes, str]] = [
    ("unterminated-quote-in-from", _sub(b"From: sipp <", b'From: "sipp <'), "from_"),
    ("bad-uri-in-to", _sub(b"To: service <sip:service@127.0.0.1:5060>",
                           b"To: service <sip:service@127.0.0.1:99999>"), "to"),
    ("bad-via", _sub(b"Via: SIP/2.0/UDP 127.0.0.1:5061;", b"Via: SIP/2.0 127.0.0.1:5061;"),
     "via"),
    ("max-forwards-not-a-number", _sub(b"Max-Forwards: 70", b"Max-Forwards: lots"),
     "max_forwards"),
    ("bad-request-uri-port", _sub(b"INVITE sip:service@127.0.0.1:5060",
                                  b"INVITE sip:service@127.0.0.1:port"), "uri"),
    ("unterminated-angle-contact", _sub(b"Contact: sip:sipp", b"Contact: <sip:sipp"),
     "contacts"),
]
