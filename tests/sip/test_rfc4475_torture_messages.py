"""RFC 4475's torture messages: the valid ones parse and every header a node reads reads;
the invalid ones are rejected (at parse time: ``malformed_corpus.CORPUS`` holds them with
their status; when the damaged header is read: below)."""

from __future__ import annotations

import pytest

from sipha.sip import Request, Response, SipParseError, parse_message
from tests.sip.rfc4475 import INTMETH, INVALID_LAZY, VALID, WSINV

_READ_BY_NODES = ("via", "vias", "from_", "to", "cseq", "call_id", "max_forwards", "routes")


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_parses_and_its_headers_read(name: str) -> None:
    msg = parse_message(VALID[name])
    for attr in _READ_BY_NODES:
        if hasattr(msg, attr):
            getattr(msg, attr)
    if isinstance(msg, Request):
        assert msg.uri is not None
        msg.contacts  # noqa: B018 - reading is the check
    assert bytes(msg) == VALID[name]


def test_wsinv_folded_cseq_and_via_read_as_written() -> None:
    msg = parse_message(WSINV)
    assert isinstance(msg, Request)
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    assert msg.max_forwards == 68
    assert [v.host for v in msg.vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert msg.vias[2].branch == "z9hG4bK30239"
    assert msg.to_tag == "1918181833n"
    assert msg.from_tag == "98asjd8"
    assert len(msg.body) == 150


def test_intmeth_escaped_nul_in_a_quoted_string_is_kept() -> None:
    msg = parse_message(INTMETH)
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.cseq.method == msg.method
    assert msg.via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.from_tag == "_token~1'+`*%!-."
    assert "\x00" in (msg.get("to") or "")


@pytest.mark.parametrize(
    "data",
    [
        # A NUL anywhere but escaped in a quoted string is still refused.
        INTMETH.replace(b'NUL:\\\x00', b"NUL:\x00"),
        INTMETH.replace(b"Max-Forwards: 255", b"Max-Forwards: 2\x0055"),
        INTMETH.replace(b"extensionHeader", b"extension\x00Header"),
        INTMETH.replace(b'"BEL:', b'BEL:'),  # the NUL's quoted-pair is no longer quoted
    ],
)
def test_a_nul_outside_a_quoted_pair_is_refused(data: bytes) -> None:
    with pytest.raises(SipParseError, match="NUL"):
        parse_message(data)


@pytest.mark.parametrize(("name", "data", "attr"), INVALID_LAZY, ids=[c[0] for c in INVALID_LAZY])
def test_invalid_message_rejected_when_the_damaged_header_is_read(
    name: str, data: bytes, attr: str
) -> None:
    msg = parse_message(data)
    assert isinstance(msg, Request | Response)
    with pytest.raises(SipParseError):
        getattr(msg, attr)
