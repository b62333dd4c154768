"""Differential tests: every fast path gives the exact path's answer whenever it answers.

The SIP core reads header names, CSeq, Via, URIs and display names through fast paths that
handle the common spelling and hand anything else to the exact grammar (see the theories of
operation in ``sipha.sip.parser``, ``via``, ``uri`` and ``address``). These properties feed
both paths generated and mutated input, including the spellings the fast paths must decline
(folding, white space, compact forms, escapes, non-ASCII case mappings, tight limits), and
require the same result or the same SipParseError status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sipha.sip import DEFAULT_LIMITS, Limits, Request, SipParseError, parse_message
from sipha.sip.address import _check_display_words, _check_display_words_exact
from sipha.sip.headers import _cseq_in_line, _parse_cseq_exact, parse_cseq, split_comma
from sipha.sip.parser import (
    _REQUEST_LINE,
    _fast_header_names,
    _request_line,
    _split_header_lines,
)
from sipha.sip.uri import SipUri, _parse_uri_exact, parse_uri
from sipha.sip.via import _DOTTED_QUAD, Via, _parse_via_exact, parse_via
from tests.messages import sipp_invite, sipp_ok

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
# Characters that sit on the edge of what the fast paths accept: separators, white space,
# Unicode digits, and letters whose lower case is (KELVIN SIGN -> "k") or is not ASCII.
_EDGE = ' \t:;=,"<>/[]@\u212a\u0130\u03a3\u0663\u00b2\xe9'


def _mostly(draw: st.DrawFn, common: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> str:
    # Mostly what the fast paths accept, so that they answer often enough to be compared.
    return draw(common if draw(st.integers(0, 9)) < 8 else odd)


def _mutate(draw: st.DrawFn, text: str, alphabet: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(chars)))
        kind = draw(st.integers(0, 2))
        if kind == 0 and chars:
            chars[min(pos, len(chars) - 1)] = draw(st.sampled_from(alphabet))
        elif kind == 1:
            chars.insert(pos, draw(st.sampled_from(alphabet)))
        else:
            del chars[pos : pos + draw(st.integers(1, 3))]
    return "".join(chars)


# -- header names ---------------------------------------------------------------------------

_LIMITS = st.sampled_from(
    [DEFAULT_LIMITS, Limits(max_headers=3), Limits(max_line_length=40), Limits(max_headers=1)]
)
_NAMES = st.one_of(
    st.sampled_from(["Via", "v", "V", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "l",
                     "Content-Length", "Max-Forwards", "m", "k", "\u212a"]),
    st.text(alphabet=_TOKEN, min_size=1, max_size=10),
)
_ODD_NAMES = st.one_of(
    st.sampled_from(["", "X-\u03a3", "\u0130", "Via ", " Via", "V\tia"]),
    st.text(alphabet=_TOKEN + _EDGE, max_size=10),
)
_VALUES = st.text(alphabet="abc 1:;,<>@\t\u00e9", max_size=50)


@st.composite
def _header_lines(draw: st.DrawFn) -> str:
    name = _mostly(draw, _NAMES, _ODD_NAMES)
    sep = _mostly(draw, st.just(":"), st.sampled_from([": ", " :", "\t:", ""]))
    line = f"{name}{sep}{draw(_VALUES)}"
    if draw(st.integers(0, 19)) == 0:
        line += "\r\n" + draw(st.sampled_from([" ", "\t"])) + draw(_VALUES)  # folded
    return line


@st.composite
def _heads(draw: st.DrawFn) -> str:
    start = draw(st.sampled_from(["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK"]))
    return "\r\n".join([start, *draw(st.lists(_header_lines(), max_size=8))])


def _check_names(head: str, limits: Limits) -> None:
    if "\x00" in head:
        return  # parse_message refuses it before reading names
    lines = head.split("\r\n")
    fast = _fast_header_names("\x00".join(lines), lines, limits)
    if fast is None:
        return
    folded = "\r\n " in head or "\r\n\t" in head
    names, exact_lines, err = _split_header_lines(lines[1:], limits, folded, len(head))
    assert err is None
    assert fast == names
    assert exact_lines == lines[1:]


@given(_heads(), _LIMITS)
@SETTINGS
@example("INVITE sip:a@b SIP/2.0\r\n\u212a: x\r\nVia: y", DEFAULT_LIMITS)
@example("INVITE sip:a@b SIP/2.0\r\nX-\u03a3: x", DEFAULT_LIMITS)
@example("INVITE sip:a@b SIP/2.0\r\nVia : x", DEFAULT_LIMITS)
@example("INVITE sip:a@b SIP/2.0\r\nVia: x\r\n y", DEFAULT_LIMITS)
@example("INVITE sip:a@b SIP/2.0", DEFAULT_LIMITS)
def test_header_names_fast_path_agrees_with_exact_path(head: str, limits: Limits) -> None:
    _check_names(head, limits)


@st.composite
def _mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([sipp_invite(), sipp_ok()])))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()) and data:
            data[min(pos, len(data) - 1)] = draw(st.sampled_from(b" \t:\r\nAz;,\x00\xff"))
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@given(_mutated_messages(), _LIMITS)
@SETTINGS
def test_header_names_fast_path_agrees_on_mutated_messages(data: bytes, limits: Limits) -> None:
    end = data.find(b"\r\n\r\n")
    try:
        head = data[: end if end >= 0 else len(data)].decode("utf-8")
    except UnicodeDecodeError:
        return
    _check_names(head, limits)


# -- request line ---------------------------------------------------------------------------


@st.composite
def _request_lines(draw: st.DrawFn) -> str:
    method = _mostly(draw, st.sampled_from(["INVITE", "ACK", "BYE", "x-Ext.1"]),
                     st.text(alphabet=_TOKEN + _EDGE, max_size=8))
    uri = _mostly(draw, st.sampled_from(["sip:a@b", "sip:service@127.0.0.1:5060", "tel:+1",
                                         "urn:x:y", "sip:\u00e9@h\t"]),
                  st.text(alphabet="sip:@ab\u00e9\u0663 \t", max_size=12))
    version = _mostly(draw, st.just("SIP/2.0"), st.sampled_from(["sip/2.0", "SIP/3.0", ""]))
    sep = _mostly(draw, st.just(" "), st.sampled_from(["  ", "\t", ""]))
    line = f"{method}{sep}{uri} {version}"
    if draw(st.integers(0, 4)) == 0:
        line = _mutate(draw, line, _TOKEN + _EDGE)
    return line


@given(_request_lines(), st.sampled_from([DEFAULT_LIMITS, Limits(max_line_length=20)]))
@SETTINGS
@example("INVITE sip:service@127.0.0.1:5060 SIP/2.0", DEFAULT_LIMITS)
@example("INVITE \u00e9x:y SIP/2.0", DEFAULT_LIMITS)
@example("INVITE sip:" + "a" * 30 + " SIP/2.0", Limits(max_line_length=20))
def test_request_line_fast_path_agrees_with_exact_path(start: str, limits: Limits) -> None:
    m = _REQUEST_LINE.fullmatch(start)
    if m is None or len(start) > limits.max_line_length:
        return  # parse_message calls _request_line alone
    assert _outcome(lambda: _request_line(start, b"", limits)) == (True, m.groups())


# -- CSeq -----------------------------------------------------------------------------------

_CSEQS = st.one_of(
    st.builds(
        lambda number, sep, method: f"{number}{sep}{method}",
        st.one_of(st.integers(0, 2**32).map(str), st.text(alphabet="0123456789\u0663\u00b2-+",
                                                             max_size=12)),
        st.sampled_from([" ", "  ", "\t", " \t", ""]),
        st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "x", ""]),
                  st.text(alphabet=_TOKEN + _EDGE, max_size=8)),
    ),
    st.text(alphabet="0123456789 INVITE\t" + _EDGE, max_size=16),
)


def _outcome(call: Callable[[], object]) -> tuple[bool, object]:
    """(True, result) or (False, the SipParseError status)."""
    try:
        return True, call()
    except SipParseError as err:
        return False, err.status


def _same_outcome(fast_call: Callable[[], object], exact_call: Callable[[], object]) -> None:
    assert _outcome(fast_call) == _outcome(exact_call)


@given(_CSEQS)
@SETTINGS
@example("1 INVITE")
@example("999999999 INVITE")
@example("2147483647 INVITE")
@example("2147483648 INVITE")
@example("007 ACK")
@example("\u0663 INVITE")
@example("1  INVITE")
@example("1\tINVITE")
def test_cseq_fast_path_agrees_with_exact_path(value: str) -> None:
    _same_outcome(lambda: parse_cseq(value), lambda: _parse_cseq_exact(value))
    for line in (f"CSeq: {value}", f"CSeq:{value}", f"cseq :\t{value} "):
        in_line = _cseq_in_line(line)
        if in_line is not None:
            assert in_line == _parse_cseq_exact(line[line.index(":") + 1 :].strip())
    try:
        cseq = parse_cseq(value)
    except SipParseError:
        return
    assert type(cseq.seq) is int
    assert type(cseq.method) is str


# -- Via ------------------------------------------------------------------------------------

_OCTET = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "255", "256"]))
_HOSTS = st.one_of(
    st.builds(lambda *o: ".".join(o), _OCTET, _OCTET, _OCTET, _OCTET),
    st.sampled_from(["pc33.atlanta.com", "h", "a-b.c", "-a.b", "a.b.", "1.2.3", "1.2.3.4.5",
                     "1.2.3.4a", "[::1]", "[2001:db8::9:1]", "[::1", "a_b", "9.com", ""]),
    st.text(alphabet="ab09-.", min_size=1, max_size=12),
)
_PARAM_NAMES = st.sampled_from(
    ["branch", "Branch", "BRANCH", "rport", "RPort", "received", "maddr", "ttl", "alias", "x", ""]
)
_PARAM_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["z9hG4bK776asdhds", "z9hG4bK-1", "5060", "1.2.3.4", "255", "abc"]),
    st.sampled_from(["", "0", "65536", "[::1]", "::1", "256", '"q;x"', "a b", "fe80::1%eth0"]),
)


@st.composite
def _vias(draw: st.DrawFn) -> str:
    prefix = _mostly(draw, st.just("SIP/2.0/"), st.sampled_from(["sip/2.0/", "SIP / 2.0 / ",
                                                                  "SIP/3.0/", "SIP/2.0 /"]))
    transport = _mostly(draw, st.sampled_from(["UDP", "udp", "TCP", "TLS", "SCTP", "WS"]),
                        st.sampled_from(["X", "ABCDE", "U_P", ""]))
    space = _mostly(draw, st.just(" "), st.sampled_from(["  ", "\t", " \t", ""]))
    host = _mostly(draw, st.sampled_from(["127.0.0.1", "192.0.2.255", "pc33.atlanta.com"]),
                   _HOSTS)
    port = draw(st.one_of(st.none(), st.integers(0, 70000).map(str),
                          st.sampled_from(["", "00000", "123456", "05060"])))
    sent_by = host if port is None else f"{host}:{port}"
    params = ""
    for name, value in draw(st.lists(st.tuples(_PARAM_NAMES, _PARAM_VALUES), max_size=3)):
        params += f";{name}" if value is None else f";{name}={value}"
    value = f"{prefix}{transport}{space}{sent_by}{params}"
    if draw(st.integers(0, 4)) == 0:
        value = _mutate(draw, value, _TOKEN + _EDGE)
    return value


def _check_via(value: str) -> None:
    fast = _outcome(lambda: parse_via(value))
    exact = _outcome(lambda: _parse_via_exact(value))
    assert fast == exact
    if fast[0]:
        assert isinstance(fast[1], Via)
        assert isinstance(exact[1], Via)
        assert list(fast[1].params.items()) == list(exact[1].params.items())
        assert str(fast[1]) == str(exact[1])
        assert hash(fast[1]) == hash(exact[1])


@given(_vias())
@SETTINGS
@example("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0")
@example("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0;rport")
@example("SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bK1")
@example("SIP/2.0/UDP 1.2.3.4.example.com;branch")
@example("SIP/2.0/UDP 256.1.1.1;rport=0")
@example("SIP/2.0/tcp host;Branch=a;branch=b;received=::1")
def test_via_fast_path_agrees_with_exact_path(value: str) -> None:
    _check_via(value)


def _stamped_reference(via: Via, received: str, rport: int) -> str:
    # RFC 3261 §18.2.1 / RFC 3581 §4 stamping as with_received first wrote it: a new Via,
    # serialized. Message.set_via_received now learns "unchanged" without serializing.
    params = dict(via.params)
    fill_rport = "rport" in params and params["rport"] is None
    if fill_rport:
        params["rport"] = str(rport)
    host = via.host[1:-1] if via.host.startswith("[") else via.host
    if fill_rport or host.lower() != received.lower():
        params["received"] = received
    return str(Via(via.transport, via.host, via.port, params, via.protocol))


@given(_vias(), st.sampled_from(["127.0.0.1", "192.0.2.255", "192.0.2.4", "10.0.0.9"]),
       st.integers(1, 65535))
@SETTINGS
@example("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1;rport", "127.0.0.1", 5061)
@example("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1;received=10.0.0.9", "10.0.0.9", 5061)
def test_set_via_received_matches_serializing_a_new_via(value: str, source: str,
                                                       port: int) -> None:
    ok, via = _outcome(lambda: parse_via(value))
    if not ok or ":" in value.partition(" ")[2].partition(";")[0].strip("[]:0123456789"):
        return  # unparsable, or an IPv6 host (compared by address, not by spelling)
    assert isinstance(via, Via)
    m = parse_message(sipp_invite().replace(
        b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0", value.encode()))
    before = bytes(m)
    expected = _stamped_reference(via, source, port)
    assert m.set_via_received(source, port) == (expected != str(via))
    assert m.via == parse_via(expected if expected != str(via) else value)
    assert (bytes(m) == before) == (expected == str(via))


# -- URIs and display names ----------------------------------------------------------------

_URI_CHARS = "abcAZ09-_.!~*'()&=+$,;?/:@%[]<> \t\u00e9"


@st.composite
def _uris(draw: st.DrawFn) -> str:
    scheme = _mostly(draw, st.sampled_from(["sip", "sips"]),
                     st.sampled_from(["SIP", "tel", "mailto", "sip2", ""]))
    user = _mostly(draw, st.one_of(st.none(), st.sampled_from(["alice", "service", "+1-555",
                                                                 "a.b_c!~*'()&=+$,"])),
                   st.sampled_from(["", "a%41", "a:pw", "a;b", "a?b", "a/b", "\u00e9"]))
    host = _mostly(draw, st.sampled_from(["127.0.0.1", "atlanta.com", "a-b.example.org"]),
                   _HOSTS)
    port = draw(st.one_of(st.none(), st.integers(0, 70000).map(str),
                          st.sampled_from(["", "00000", "123456"])))
    params = ""
    for name, value in draw(st.lists(st.tuples(
        st.sampled_from(["lr", "transport", "Transport", "maddr", "user", "x[1]", "a/b:c", "",
                         "n%41"]),
        st.one_of(st.none(), st.sampled_from(["udp", "UDP", "1.2.3.4", "phone", "", "a=b",
                                              "[::1]", "%41"]))), max_size=3)):
        params += f";{name}" if value is None else f";{name}={value}"
    tail = draw(st.sampled_from(["", "", "", "?subject=x", "?a=b&c=d", "?"]))
    text = f"{scheme}:" + (f"{user}@" if user is not None else "") + host
    text += (f":{port}" if port is not None else "") + params + tail
    if draw(st.integers(0, 4)) == 0:
        text = _mutate(draw, text, _URI_CHARS)
    return text


@given(_uris())
@SETTINGS
@example("sip:service@127.0.0.1:5060")
@example("sip:127.0.0.1:0")
@example("sip:a@h;lr;LR=x;transport=UDP")
@example("sips:a@1.2.3.4.example.com")
@example("sip:a@256.1.1.1")
def test_uri_fast_path_agrees_with_exact_path(text: str) -> None:
    fast = _outcome(lambda: parse_uri(text))
    exact = _outcome(lambda: _parse_uri_exact(text))
    assert fast == exact
    if fast[0]:
        assert type(fast[1]) is type(exact[1])
        assert str(fast[1]) == str(exact[1])
        if isinstance(fast[1], SipUri) and isinstance(exact[1], SipUri):
            assert list(fast[1].params.items()) == list(exact[1].params.items())


@given(st.one_of(st.sampled_from(["service ", "  sipp\t", "", " ", "Bob", "John  Doe"]),
                 st.text(alphabet=_TOKEN + _EDGE, max_size=12)))
@SETTINGS
def test_display_name_fast_path_agrees_with_exact_path(text: str) -> None:
    fast = _outcome(lambda: _check_display_words(text))
    assert fast == _outcome(lambda: _check_display_words_exact(text))


# -- whole messages -------------------------------------------------------------------------


@given(_mutated_messages())
@SETTINGS
def test_accessors_agree_with_exact_parsers_on_mutated_messages(data: bytes) -> None:
    _test_accessors(data)


def _test_accessors(data: bytes) -> None:
    # What a node reads from every message: each fast accessor against the exact parser.
    try:
        m = parse_message(data)
    except SipParseError:
        return
    _same_outcome(lambda: m.cseq, lambda: _parse_cseq_exact(m.get("cseq") or ""))
    first = m.get("via")
    if first is not None:

        def exact_top_via() -> Via:
            parts = split_comma(first) if "," in first else [first]
            if not parts:
                raise SipParseError("empty Via header")
            _check_via(parts[0])
            return _parse_via_exact(parts[0])

        assert _outcome(lambda: m.via) == _outcome(exact_top_via)
    if isinstance(m, Request):
        assert _outcome(lambda: m.uri) == _outcome(lambda: _parse_uri_exact(m.ruri))


@given(_vias(), st.sampled_from(["Via: ", "Via:", "v: ", "VIA :\t", "Via:  "]),
       st.sampled_from(["", " ", "\t", ", SIP/2.0/UDP h", " ,SIP/2.0/TCP h2:5"]),
       st.one_of(st.integers(0, 2**31).map(lambda n: f"{n} INVITE"),
                 st.sampled_from(["1  INVITE", "1\tINVITE", "01 INVITE", "1 INVITE "]), _CSEQS))
@SETTINGS
def test_accessors_agree_with_exact_parsers_on_generated_messages(
    via: str, prefix: str, suffix: str, cseq: str
) -> None:
    data = sipp_invite().replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0", f"{prefix}{via}{suffix}"
        .encode()).replace(b"CSeq: 1 INVITE", f"CSeq: {cseq}".encode())
    _test_accessors(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.lists(st.integers(0, 999), min_size=1, max_size=5).map(lambda xs: ".".join(map(str, xs))),
    st.text(alphabet="0123456789.", max_size=20),
    st.ip_addresses(v=4).map(str),
))
def test_dotted_quad_fast_check_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.IPv4Address(text)
        valid = True
    except ValueError:
        valid = False
    assert bool(_DOTTED_QUAD.fullmatch(text)) == valid
