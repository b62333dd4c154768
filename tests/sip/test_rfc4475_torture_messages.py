"""RFC 4475's torture messages: the valid ones parse and every header a node reads reads;
the invalid ones are rejected (at parse time: ``malformed_corpus.CORPUS`` holds them with
their status; when the damaged header is read: below)."""

from __future__ import annotations

import pytest

from sipha.sip import Request, Response, SipParseError, parse_message
from tests.sip.rfc4475 import BADDATE, DBLREQ, INTMETH, INVALID, INVALID_LAZY, VALID, WSINV

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


def test_esc02_percent_that_is_no_escape_is_an_unknown_method_and_header() -> None:
    msg = parse_message(VALID["esc02"])
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R"  # not REGISTER: the method is not unescaped
    assert msg.cseq.method == msg.method
    contacts = msg.contacts
    assert contacts != "*"
    assert [c.uri.host for c in contacts] == ["host1.example.com", "host3.example.com"]
    assert msg.get("c%6fntact") == "<sip:alias2@host2.example.com>"


def test_longreq_every_via_form_reads() -> None:
    msg = parse_message(VALID["longreq"])
    assert isinstance(msg, Request)
    hosts = [v.host for v in msg.vias]
    assert hosts == [f"sip{n}.example.com" for n in range(33, 0, -1)] + ["host.example.com"]
    assert msg.vias[-1].branch is not None
    assert msg.vias[-1].branch.startswith("verylong")
    assert msg.from_tag is not None
    assert len(msg.from_tag) > 150
    assert msg.to.uri.port == 6000  # type: ignore[union-attr]
    assert len(msg.body) == 150


def test_dblreq_the_first_message_of_a_datagram_counts_the_rest_is_discarded() -> None:
    msg = parse_message(DBLREQ)
    assert isinstance(msg, Request)
    assert (msg.method, msg.call_id, msg.body) == (
        "REGISTER", "dblreq.0ha0isndaksdj99sdfafnl3lk233412", b""
    )


def test_mpart01_binary_body_is_carried_octet_for_octet() -> None:
    msg = parse_message(VALID["mpart01"])
    assert isinstance(msg, Request)
    assert bytes(range(256)) in msg.body
    assert len(msg.body) == int(msg.get("content-length") or 0)


def test_baddate_a_date_nobody_reads_is_ignored() -> None:
    msg = parse_message(BADDATE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.cseq.seq, len(msg.body)) == ("INVITE", 1392934, 150)


def test_escruri_is_refused_with_400_and_a_question_mark_in_a_user_part_is_not() -> None:
    data = dict((c[0], c[1]) for c in INVALID)["rfc4475-escruri"]
    with pytest.raises(SipParseError, match="escaped headers") as info:
        parse_message(data)
    assert info.value.status == 400
    assert info.value.partial is not None
    assert info.value.partial.answerable
    # intmeth's user part has a '?': that is no header, the message stays valid.
    assert "?" in INTMETH.split(b" ")[1].decode()
    parse_message(INTMETH)
