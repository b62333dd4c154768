"""Via header values (RFC 3261 §20.42, §18.2.1; RFC 3581 rport).

Theory of operation
-------------------
    via-parm = sent-protocol LWS sent-by *( SEMI via-params )
    sent-protocol = name SLASH version SLASH transport      (SLASH = SWS "/" SWS)
    sent-by = host [ COLON port ]                          (COLON = SWS ":" SWS)

The first ``;`` ends sent-by (no part before it may hold one), so a value is cut with
``partition(';')``, the head with ``split('/')`` and whitespace splits, and the tail goes to
the shared :func:`~sipha.sip.headers.parse_params`. Parameters with a meaning the transport
layer relies on (``ttl``, ``rport``, ``maddr``, ``received``) are checked while parsing, so
the properties below never raise.

Nodes parse the top Via of every message, so :func:`parse_via` first tries a fast path: one
linear regex for the shape nearly every sender writes (``SIP/2.0/UDP host:port;branch=...``,
no white space but the one space, token parameters) that also recognizes an IPv4 host, so
only other hosts need :func:`~sipha.sip.uri.parse_host`, and a leading ``branch``, so the
usual value needs no parameter loop. ``_via_in_line`` runs the same match over a whole
``Via:`` header line for :attr:`Message.via <sipha.sip.message.Message.via>`. Any other
shape goes to the exact path (``_parse_via_exact``), which accepts the whole grammar. The
two return equal Vias (same parameter order) and fail on the same values with the same
status; ``tests/sip/test_parser_fast_paths.py`` checks that on generated and mutated values.
The Via is still a frozen dataclass; the fast path fills its slots through their descriptors,
which costs half of what the generated ``__init__`` does.

rport is reported in two properties: ``has_rport`` (the parameter is present, with or without
a value) and ``rport`` (its port number, or ``None`` when absent *or* empty). A request whose
top Via has ``has_rport and rport is None`` asks for symmetric response routing (RFC 3581 §4).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sipha.sip.errors import SipParseError
from sipha.sip.headers import TOKEN_CHARS, format_params, parse_params, split_comma, split_lws
from sipha.sip.native import is_compiled, slot_setter
from sipha.sip.uri import _IPV4, add_matched_params, parse_host, parse_port

if TYPE_CHECKING:
    pass

__all__ = ["MAGIC_COOKIE", "Via", "parse_via", "parse_via_list"]

# RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this.
MAGIC_COOKIE: Final = "z9hG4bK"
_WS: Final = " \t"


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value. ``transport`` is upper-case; ``host`` keeps IPv6 brackets; ``params`` has
    lowercased names in order (flags map to ``None``).
    """

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        return self._format(self.params)

    def _format(self, params: dict[str, str | None]) -> str:
        # This Via serialized with other parameters, without building the other Via.
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {host}{port}{format_params(params)}"

    def __hash__(self) -> int:
        return hash((self.transport, self.host, self.port, self.params.get("branch")))

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (RFC 3261 §20.42), or ``None``."""
        return self.params.get("branch")

    @property
    def has_magic_cookie(self) -> bool:
        """True when the branch starts with ``z9hG4bK`` (RFC 3261 §17.2.3 matching applies)."""
        branch = self.params.get("branch")
        return branch is not None and branch.startswith(MAGIC_COOKIE)

    @property
    def received(self) -> str | None:
        """The ``received`` parameter, or ``None``."""
        return self.params.get("received")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or ``None``."""
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter (0..255, validated while parsing), or ``None``."""
        value = self.params.get("ttl")
        return None if value is None else int(value)

    @property
    def has_rport(self) -> bool:
        """True when ``rport`` is present, with or without a value (RFC 3581)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The ``rport`` port number; ``None`` when absent or present without a value."""
        value = self.params.get("rport")
        return None if value is None else int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """``(host, port or None)``; host keeps IPv6 brackets, as written."""
        return self.host, self.port

    def with_params(self, **updates: str | None) -> Via:
        """A copy with parameters set (a ``None`` value makes a flag); existing ones keep
        their position."""
        params = dict(self.params)
        params.update(updates)
        return Via(self.transport, self.host, self.port, params, self.protocol)

    def with_received(self, received: str, rport: int | None = None) -> str:
        """The serialized value a server stores on receiving this top Via from
        ``received``:``rport`` (the packet's source IP and port).

        RFC 3261 §18.2.1: add ``received`` when the sent-by host differs from the source IP.
        RFC 3581 §4: when ``rport`` was sent without a value, fill it with the source port and
        add ``received`` even when it equals the host. ``received`` is an IP address without
        brackets.
        """
        params = self._received_params(received, rport)
        return self._format(self.params if params is None else params)

    def _received_params(self, received: str, rport: int | None) -> dict[str, str | None] | None:
        """The parameters :meth:`with_received` writes, or None when they are this Via's own
        (then the value would not change: parameter lists serialize one-to-one)."""
        params = dict(self.params)
        fill_rport = rport is not None and "rport" in params and params["rport"] is None
        if fill_rport:
            params["rport"] = str(rport)
        if fill_rport or not _same_address(self.host, received):
            params["received"] = received
        return None if params == self.params else params


# An IPv4 address as ipaddress accepts it (no leading zeros, each octet 0-255); linear.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _same_address(host: str, ip: str) -> bool:
    host = host[1:-1] if host.startswith("[") else host
    ip = ip[1:-1] if ip.startswith("[") else ip
    if host.lower() == ip.lower():
        return True
    if ":" in host and ":" in ip:
        # IPv6 has many spellings of one address (RFC 5952).
        try:
            return ipaddress.IPv6Address(host) == ipaddress.IPv6Address(ip)
        except ValueError:
            return False
    return False


def _check_ip(value: str | None, name: str) -> None:
    if value is None:
        raise SipParseError(f"Via {name} without value")
    if _DOTTED_QUAD.fullmatch(value):
        return  # the usual received=, checked without building an address object
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise SipParseError(f"invalid Via {name} {value[:50]!r}") from None
    if "%" in text:
        raise SipParseError(f"invalid Via {name} {value[:50]!r}")


def _check_params(params: dict[str, str | None]) -> None:
    # Only the parameters the transport layer acts on; extensions stay opaque.
    if "ttl" in params:
        ttl = params["ttl"]
        if ttl is None or not ttl.isdigit() or not ttl.isascii() or len(ttl) > 3 or int(ttl) > 255:
            raise SipParseError("invalid Via ttl")
    if "rport" in params:
        rport = params["rport"]
        if rport is not None:
            parse_port(rport)
    if "received" in params:
        _check_ip(params["received"], "received")
    if "maddr" in params:
        maddr = params["maddr"]
        if maddr is None:
            raise SipParseError("Via maddr without value")
        parse_host(maddr)
    if "branch" in params and not params["branch"]:
        raise SipParseError("Via branch without value")


# The shape nearly every Via has: no spaces but the one before sent-by, token parameters.
# An IPv4 sent-by gets its own alternative, so the common host needs no second check, and a
# branch written first (as RFC 3261 senders do) its own group, so the common value needs no
# parameter loop. Every repeat is possessive or bounded, and every quantified group starts
# with a distinct literal (";" "=" ":"), so the match is linear.
_T = r"[A-Za-z0-9\-.!%*_+`'~]"
_COMMON = re.compile(
    r"SIP/2\.0/([A-Za-z]{2,4}) (?:(" + _IPV4.pattern + r")|([A-Za-z0-9\-.]++))"
    r"(?::([0-9]{1,5}))?(?:;branch=(" + _T + r"++))?((?:;" + _T + r"++(?:=" + _T + r"++)?)*+)"
)
# The same over a whole "Via: value" header line (name, colon, the white space unfolding
# strips), so that a message's top Via needs no slicing and stripping first.
_COMMON_LINE = re.compile(r"[^:]*+:[ \t]*+" + _COMMON.pattern + r"[ \t]*+")
_CHECKED = frozenset(("ttl", "rport", "received", "maddr"))

# A frozen dataclass's __init__ sets each field with object.__setattr__; storing through the
# slot descriptors does the same at about half the cost, and nodes parse a Via per message.
_COMPILED: Final = is_compiled(__file__)
_new_object: Final = object.__new__
_set_transport: Final = slot_setter(Via, "transport", compiled=_COMPILED)
_set_host: Final = slot_setter(Via, "host", compiled=_COMPILED)
_set_port: Final = slot_setter(Via, "port", compiled=_COMPILED)
_set_params: Final = slot_setter(Via, "params", compiled=_COMPILED)
_set_protocol: Final = slot_setter(Via, "protocol", compiled=_COMPILED)


def parse_via(value: str) -> Via:
    """Parse one Via value (``SIP/2.0/UDP host:port;branch=...``).

    Raises SipParseError when malformed, including bad ttl/rport/received/maddr parameters.
    """
    m = _COMMON.fullmatch(value)
    if m is None:
        return _parse_via_exact(value)
    return _via_of_match(m)


def _via_in_line(line: str) -> Via | None:
    """The Via of a header line holding one value of the common shape, else None (the
    caller then unfolds and splits the value and calls :func:`parse_via`)."""
    m = _COMMON_LINE.fullmatch(line)
    return None if m is None else _via_of_match(m)


def _via_of_match(m: re.Match[str]) -> Via:
    # The common shape, read from the match. What is left to check fails where the exact path
    # fails (test_parser_fast_paths), so the two never disagree.
    transport, ipv4, host, port_text, branch, tail = m.groups()
    if ipv4 is not None:
        host = ipv4
    else:
        parse_host(host)
    params: dict[str, str | None] = {} if branch is None else {"branch": branch}
    if tail:
        add_matched_params(params, tail)
        if not _CHECKED.isdisjoint(params):
            _check_params(params)
        if "branch" in params and not params["branch"]:
            raise SipParseError("Via branch without value")
    port: int | None = None
    if port_text:
        port = int(port_text)
        if not 0 < port < 65536:
            port = parse_port(port_text)  # raises, with the exact path's message
    if _COMPILED:
        return Via(transport.upper(), host, port, params, "SIP/2.0")
    via: Via = _new_object(Via)
    _set_transport(via, transport.upper())
    _set_host(via, host)
    _set_port(via, port)
    _set_params(via, params)
    _set_protocol(via, "SIP/2.0")
    return via


def _parse_via_exact(value: str) -> Via:
    # The general grammar: white space around "/" and ":", IPv6, quoted parameters.
    head, semi, tail = value.partition(";")
    pieces = head.split("/", 2)
    if len(pieces) != 3:
        raise SipParseError(f"invalid Via sent-protocol in {value[:60]!r}")
    name = pieces[0].strip(_WS)
    version = pieces[1].strip(_WS)
    transport, sent_by = split_lws(pieces[2])
    if not sent_by:
        raise SipParseError(f"missing Via sent-by in {value[:60]!r}")
    for token in (name, version, transport):
        if not token or token.strip(TOKEN_CHARS):
            raise SipParseError(f"invalid Via sent-protocol in {value[:60]!r}")
    sent_by = sent_by.rstrip(_WS)
    if sent_by.startswith("["):
        close = sent_by.find("]")
        if close < 0:
            raise SipParseError("unterminated IPv6 reference in Via")
        host = sent_by[: close + 1]
        after = sent_by[close + 1 :].lstrip(_WS)
    else:
        host, colon, rest = sent_by.partition(":")
        host = host.rstrip(_WS)
        after = colon + rest
    port: int | None = None
    if after:
        if after[0] != ":":
            raise SipParseError(f"invalid Via sent-by {sent_by[:60]!r}")
        port = parse_port(after[1:].strip(_WS))
    parse_host(host)
    params = parse_params(";" + tail) if semi else {}
    if params:
        _check_params(params)
    protocol = f"{name}/{version}".upper()
    return Via(transport.upper(), host, port, params, protocol)


def parse_via_list(value: str) -> list[Via]:
    """Parse a comma-separated Via header value; raise SipParseError if malformed or empty."""
    parts = split_comma(value)
    if not parts:
        raise SipParseError("empty Via header")
    return [parse_via(part) for part in parts]
