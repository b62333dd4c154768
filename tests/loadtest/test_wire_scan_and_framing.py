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
