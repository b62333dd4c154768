"""The malformed-message corpus: each message gets its verdict, and nothing but SipParseError."""

from __future__ import annotations

import pytest

from sipha.sip import SipParseError, parse_message
from tests.sip.malformed_corpus import CORPUS, LAZY

_IDS = [c[0] for c in CORPUS]


@pytest.mark.parametrize(("name", "data", "status", "answerable"), CORPUS, ids=_IDS)
def test_rejected_with_its_status(name: str, data: bytes, status: int, answerable: bool) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    err = info.value
    assert err.reason
    assert err.status == status, (name, err.reason)
    partial = err.partial
    assert (partial is not None and partial.answerable) == answerable, (name, err.reason, partial)


@pytest.mark.parametrize(("name", "data", "attr"), LAZY, ids=[c[0] for c in LAZY])
def test_lazily_rejected_on_access(name: str, data: bytes, attr: str) -> None:
    m = parse_message(data)
    assert m.call_id == "1-12345@127.0.0.1"
    with pytest.raises(SipParseError):
        getattr(m, attr)


def test_answerable_error_keeps_what_a_400_needs() -> None:
    data = dict((c[0], c[1]) for c in CORPUS)["cseq-method-mismatch"]
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    p = info.value.partial
    assert p is not None
    assert p.method == "INVITE"
    assert p.vias == ("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0",)
    assert p.call_id == "1-12345@127.0.0.1"
    assert p.cseq == "1 BYE"
    assert p.to == "service <sip:service@127.0.0.1:5060>"
