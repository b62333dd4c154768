"""The lean scanner reads what the engines need; the TCP framer the load generator shares with
the transport (``StreamParser.next_frame``) cuts streams anywhere, and a stream whose framing
is lost raises only ``SipParseError`` (never the ValueError of the framer it replaced)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.wire import scan
from sipha.sip import SipParseError, StreamParser

MSG = (
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\nf: <sip:a@x>;tag=1\r\n"
    b"t: \"B\" <sip:b@x;transport=udp>;tag=zz;foo=bar\r\ni: abc@x\r\nCSeq: 7 INVITE\r\n"
    b"m: <sip:b@10.0.0.9:5070>\r\nRecord-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\n"
    b"l: 4\r\n\r\nbody"
)


def test_scan_reads_compact_forms_tags_and_route_headers() -> None:
    s = scan(MSG)
    assert s.status == 200
    assert s.call_id == b"abc@x"
    assert (s.cseq_num, s.cseq_method) == (7, b"INVITE")
    assert s.to_tag == b"zz"
    assert s.from_tag == b"1"
    assert len(s.vias) == 2
    assert s.contact_uri() == "sip:b@10.0.0.9:5070"
    assert s.record_routes == [b"<sip:p1;lr>", b"<sip:p2;lr>"]
    assert s.body == b"body"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_framer_returns_each_message_whatever_the_chunking(data: st.DataObject) -> None:
    stream = b"\r\n\r\n" + MSG + MSG + b"\r\n" + MSG
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    framer = StreamParser()
    out: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        framer.feed(stream[prev:cut])
        while (frame := framer.next_frame()) is not None:
            out.append(frame)
        prev = cut
    assert out == [MSG, MSG, MSG]


@pytest.mark.parametrize("head", [
    b"SIP/2.0 200 OK\r\nl: -1\r\n\r\n",
    b"SIP/2.0 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: " + b"x" * 70_000,
])
def test_a_stream_whose_framing_is_lost_raises_only_sip_parse_error(head: bytes) -> None:
    framer = StreamParser()
    framer.feed(MSG + head)
    assert framer.next_frame() == MSG
    with pytest.raises(SipParseError):
        framer.next_frame()
    assert framer.broken is not None


def test_scan_never_raises_on_garbage() -> None:
    for junk in (b"", b"\x00\xff", b"INVITE", b"SIP/2.0 abc\r\nCSeq: x y\r\n\r\n"):
        s = scan(junk)
        assert s.cseq_num == -1 or s.status == 0


# -- the scanner against its plain twin -----------------------------------------------------------
# `scan` looks header names up as written before lowercasing them (its hot path); this is the
# straightforward version it replaced, which lowercases every name.  They must agree on any input.

_TWIN_COMPACT = {b"i": b"call-id", b"v": b"via", b"f": b"from", b"t": b"to", b"m": b"contact",
                 b"l": b"content-length", b"c": b"content-type"}


def _scan_twin(data: bytes) -> tuple[object, ...]:
    status, method, call_id, cseq_num, cseq_method = 0, b"", b"", -1, b""
    from_ = to = contact = challenge = proxy_challenge = expires = body = b""
    vias: list[bytes] = []
    rrs: list[bytes] = []
    head_end = data.find(b"\r\n\r\n")
    head = data if head_end < 0 else data[:head_end]
    if head_end >= 0:
        body = data[head_end + 4:]
    lines = head.split(b"\r\n")
    if lines[0].startswith(b"SIP/2.0 "):
        if lines[0][8:11].isdigit():
            status = int(lines[0][8:11])
    else:
        method = lines[0].split(b" ", 1)[0]
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].rstrip().lower()
        value = line[colon + 1:].strip()
        if len(name) == 1:
            name = _TWIN_COMPACT.get(name, name)
        if name == b"via":
            vias.append(value)
        elif name == b"call-id":
            call_id = value
        elif name == b"cseq":
            parts = value.split()
            if len(parts) == 2 and parts[0].isdigit():
                cseq_num, cseq_method = int(parts[0]), parts[1]
        elif name == b"from":
            from_ = value
        elif name == b"to":
            to = value
        elif name == b"contact":
            contact = contact or value
        elif name == b"record-route":
            rrs.append(value)
        elif name == b"www-authenticate":
            challenge = value
        elif name == b"proxy-authenticate":
            proxy_challenge = value
        elif name == b"expires":
            expires = value
    return (status, method, call_id, cseq_num, cseq_method, from_, to, vias, contact, rrs,
            challenge, proxy_challenge, expires, body)


def _fields(data: bytes) -> tuple[object, ...]:
    s = scan(data)
    return (s.status, s.method, s.call_id, s.cseq_num, s.cseq_method, s.from_, s.to, s.vias,
            s.contact, s.record_routes, s.challenge, s.proxy_challenge, s.expires, s.body)


_NAMES = [b"Via", b"v", b"V", b"Call-ID", b"call-id", b"CALL-ID", b"i", b"I", b"CSeq", b"cseq",
          b"From", b"f", b"To", b"t", b"T", b"Contact", b"m", b"Record-Route", b"record-route",
          b"WWW-Authenticate", b"Www-Authenticate", b"Proxy-Authenticate", b"Expires",
          b"Max-Forwards", b"l", b"c", b"Route", b"X-Odd", b"Via ", b" Via", b"To\t", b"",
          b"e", b"Content-Length"]


@settings(max_examples=300, deadline=None)
@given(
    first=st.sampled_from([b"SIP/2.0 200 OK", b"SIP/2.0 18x", b"INVITE sip:a@b SIP/2.0", b""]),
    headers=st.lists(
        st.tuples(st.sampled_from(_NAMES), st.sampled_from([b":", b" :", b""]),
                  st.sampled_from([b" 7 INVITE", b"x", b" <sip:a@b>;tag=1 ", b"1 2 3", b""])),
        max_size=12,
    ),
    body=st.sampled_from([b"", b"\r\n\r\nv=0", b"\r\n\r\n"]),
)
def test_scan_agrees_with_its_plain_twin(
    first: bytes, headers: list[tuple[bytes, bytes, bytes]], body: bytes
) -> None:
    data = b"\r\n".join([first, *(n + c + v for n, c, v in headers)]) + body
    assert _fields(data) == _scan_twin(data)
