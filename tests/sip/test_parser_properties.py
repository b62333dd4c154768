"""Property tests: generated messages round-trip; mutations raise nothing but SipParseError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipha.sip import Request, Response, SipParseError, StreamParser, build_request, parse_message
from tests.messages import sipp_invite, sipp_ok

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
_host = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _token.filter(lambda s: s[0].isalnum()), st.just("com")),
    st.builds(lambda *n: ".".join(map(str, n)), *[st.integers(0, 255)] * 4),
)
_port = st.integers(1, 65535)
_methods = st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"])
_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=30,
).map(str.strip).filter(bool)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(_methods)
    user = draw(_token)
    host = draw(_host)
    headers = [
        ("Via", f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP']))} {draw(_host)}:{draw(_port)}"
                f";branch=z9hG4bK{draw(_token)}"),
        ("From", f"<sip:{draw(_token)}@{draw(_host)}>;tag={draw(_token)}"),
        ("To", f"<sip:{user}@{host}>"),
        ("Call-ID", f"{draw(_token)}@{draw(_host)}"),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    for _ in range(draw(st.integers(0, 4))):
        headers.append((f"X-{draw(_token)}", draw(_value)))
    body = draw(st.binary(max_size=200))
    return build_request(method, f"sip:{user}@{host}:{draw(_port)}", headers, body)


@given(requests())
@SETTINGS
def test_generated_requests_round_trip(req: Request) -> None:
    again = parse_message(bytes(req))
    assert again == req
    assert isinstance(again, Request)
    assert again.method == req.method
    assert again.body == req.body
    assert again.cseq == req.cseq


def _mutations() -> st.SearchStrategy[bytes]:
    seeds = st.sampled_from([sipp_invite(), sipp_ok()])

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(seeds))
        for _ in range(draw(st.integers(1, 8))):
            kind = draw(st.integers(0, 3))
            pos = draw(st.integers(0, len(data)))
            if kind == 0 and data:  # flip a byte
                data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
            elif kind == 1:  # insert bytes
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif kind == 2:  # delete a span
                del data[pos : pos + draw(st.integers(1, 20))]
            else:  # truncate
                del data[pos:]
        return bytes(data)

    return mutate()


def _exercise(m: Request | Response) -> None:
    # Every lazy accessor must also keep to the one error contract.
    for attr in ("call_id", "cseq", "via", "vias", "from_", "to", "contacts", "routes",
                 "record_routes", "max_forwards", "expires", "content_length"):
        with contextlib.suppress(SipParseError):
            getattr(m, attr)
    if isinstance(m, Request):
        with contextlib.suppress(SipParseError):
            _ = m.uri
    bytes(m)


@given(_mutations())
@SETTINGS
def test_mutated_messages_raise_only_sip_parse_error(data: bytes) -> None:
    try:
        m = parse_message(data)
    except SipParseError:
        return
    _exercise(m)


@given(st.binary(max_size=600))
@SETTINGS
def test_random_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        _exercise(parse_message(data))


@given(st.lists(st.integers(1, 300), min_size=1, max_size=10))
@SETTINGS
def test_stream_parser_frames_regardless_of_chunking(cuts: list[int]) -> None:
    stream = sipp_invite("a@h") + b"\r\n\r\n" + sipp_ok("b@h") + sipp_invite("c@h")
    parser = StreamParser()
    got: list[str] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        parser.feed(stream[pos : pos + cut])
        pos += cut
        while (m := parser.next_message()) is not None:
            got.append(m.call_id)
    parser.feed(stream[pos:])
    while (m := parser.next_message()) is not None:
        got.append(m.call_id)
    assert got == ["a@h", "b@h", "c@h"]
    assert parser.buffered == 0
