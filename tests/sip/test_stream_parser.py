"""StreamParser: Content-Length framing on TCP and bounds against hostile peers."""

from __future__ import annotations

import pytest

from sipha.sip import Limits, SipParseError, StreamParser
from tests.messages import sipp_invite


def test_two_messages_in_one_read() -> None:
    p = StreamParser()
    p.feed(sipp_invite("one") + sipp_invite("two"))
    assert p.next_message().call_id == "one"  # type: ignore[union-attr]
    assert p.next_message().call_id == "two"  # type: ignore[union-attr]
    assert p.next_message() is None


def test_crlf_keepalives_between_messages_are_skipped() -> None:
    p = StreamParser()
    p.feed(b"\r\n\r\n" + sipp_invite("one") + b"\r\n\r\n")
    assert p.next_message().call_id == "one"  # type: ignore[union-attr]
    assert p.next_message() is None
    assert p.keepalives >= 1


def test_never_ending_header_breaks_the_stream() -> None:
    p = StreamParser(limits=Limits(max_message_size=4096))
    p.feed(b"INVITE sip:a@b SIP/2.0\r\nX-Long: ")
    for _ in range(10):
        p.feed(b"y" * 1000)
        try:
            assert p.next_message() is None
        except SipParseError:
            break
    assert p.broken is not None
    with pytest.raises(SipParseError):
        p.next_message()


def test_malformed_but_framed_message_is_skipped_and_the_stream_goes_on() -> None:
    bad = sipp_invite("bad").replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    p = StreamParser()
    p.feed(bad + sipp_invite("good"))
    with pytest.raises(SipParseError):
        p.next_message()
    assert p.broken is None
    assert p.next_message().call_id == "good"  # type: ignore[union-attr]


def test_bad_content_length_breaks_framing() -> None:
    p = StreamParser()
    p.feed(sipp_invite().replace(b"Content-Length: 129", b"Content-Length: x"))
    with pytest.raises(SipParseError):
        p.next_message()
    assert p.broken is not None
