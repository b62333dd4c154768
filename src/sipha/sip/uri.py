"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966) and URI comparison (§19.1.4).

Theory of operation
-------------------
A SIP-URI is cut into its parts with ``partition``/``find`` only; no part can contain the
delimiter that ends it, so there is no backtracking:

    sip:  [ user [ ":" password ] "@" ]  host [ ":" port ]  *( ";" param )  [ "?" headers ]

``@`` cannot appear raw in any later part, so the first ``@`` ends the userinfo; ``?`` cannot
appear in host, port or params, so the first ``?`` after the userinfo starts the headers; the
first ``;`` after that starts the params. Each part is then checked against its character set
(the strip trick from :mod:`sipha.sip.headers`) and %-unescaped. Components are stored
unescaped, so ``sip:%61lice@h`` and ``sip:alice@h`` hold the same ``user``; ``__str__`` escapes
what its part's grammar requires. Escapes decode as UTF-8 with ``surrogateescape`` so any octet
sequence survives a parse/serialize round trip.

Most URIs a node reads (Request-URI, From, To) are ``sip:user@host:port`` with plain
parameters. :func:`parse_uri` first tries one linear regex for that shape (an IPv4 host is its
own alternative, so it needs no second check) and builds the :class:`SipUri` through its slot
descriptors; anything else (escapes, a password, IPv6, URI headers, other schemes, upper-case
schemes) goes to the exact path above. The two agree on every input
(``tests/sip/test_parser_fast_paths.py``).

The dataclass ``==`` is structural (host case kept as written, params order-insensitive); use
:func:`uri_equal` for the RFC 3261 §19.1.4 rules. Objects are frozen: treat ``params`` and
``headers`` as read-only and build new URIs with :meth:`SipUri.with_`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from sipha.sip.errors import SipParseError
from sipha.sip.native import is_compiled, slot_setter

if TYPE_CHECKING:
    pass

__all__ = [
    "AbsoluteUri",
    "SipUri",
    "TelUri",
    "Uri",
    "host_port",
    "parse_host",
    "parse_port",
    "parse_uri",
    "uri_equal",
]

_ALNUM: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_DIGITS: Final = "0123456789"
_HEX: Final = "0123456789abcdefABCDEF"
# RFC 3261 §25.1
_UNRESERVED: Final = _ALNUM + "-_.!~*'()"
_USER_CHARS: Final = _UNRESERVED + "&=+$,;?/"
_PASSWORD_CHARS: Final = _UNRESERVED + "&=+$,"
_PARAM_CHARS: Final = _UNRESERVED + "[]/:&+$"
_HEADER_CHARS: Final = _UNRESERVED + "[]/?:+$"
_HOSTNAME_CHARS: Final = _ALNUM + "-."
_SCHEME_CHARS: Final = _ALNUM + "+-."
# Telephone-subscriber digits, visual separators and dial-string characters (RFC 3966 §3).
_TEL_CHARS: Final = _HEX + "+-.()*#pPwW"
# Anything printable that no URI grammar excludes outright; used for unknown schemes.
_ABSOLUTE_EXCLUDED: Final = ' \t\r\n<>"'
_URI_PARAMS_COMPARED: Final = ("user", "ttl", "method", "maddr", "transport")


# --- escaping ------------------------------------------------------------------------------


def _unescape(s: str, allowed: str, what: str) -> str:
    """Check ``s`` against ``allowed`` (plus ``%``) and decode its %-escapes."""
    if s.strip(allowed):
        if s.strip(allowed + "%"):
            raise SipParseError(f"invalid character in URI {what}")
    elif "%" not in s:
        return s
    parts = s.split("%")
    out = bytearray(parts[0], "ascii")
    for part in parts[1:]:
        pair = part[:2]
        if len(pair) != 2 or pair.strip(_HEX):
            raise SipParseError(f"invalid %-escape in URI {what}")
        out.append(int(pair, 16))
        out += part[2:].encode("ascii")
    return out.decode("utf-8", "surrogateescape")


def _escape(s: str, allowed: str) -> str:
    """%-escape every character of ``s`` outside ``allowed`` (UTF-8 octets)."""
    if not s.strip(allowed):
        return s
    out: list[str] = []
    for c in s:
        if c in allowed:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(out)


# --- host and port -------------------------------------------------------------------------


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def parse_host(host: str) -> str:
    """Validate an RFC 3261 host (hostname, IPv4address or "[" IPv6address "]").

    Returns it unchanged; raises SipParseError if it is not a valid host.
    """
    if _IPV4.fullmatch(host) is not None:
        return host  # the common case, settled by one C call
    if not host:
        raise SipParseError("empty host")
    if host[0] == "[":
        if host[-1] != "]" or not _is_ipv6(host[1:-1]):
            raise SipParseError(f"invalid IPv6 reference {host[:50]!r}")
        return host
    if host.strip(_HOSTNAME_CHARS):
        raise SipParseError(f"invalid host {host[:50]!r}")
    labels = host[:-1].split(".") if host[-1] == "." else host.split(".")
    last = labels[-1]
    if last and not last.strip(_DIGITS):
        # A numeric top label can only be an IPv4address (toplabel starts with ALPHA).
        if host[-1] == "." or len(labels) != 4:
            raise SipParseError(f"invalid IPv4 address {host[:50]!r}")
        for label in labels:
            if not label or len(label) > 3 or label.strip(_DIGITS) or int(label) > 255:
                raise SipParseError(f"invalid IPv4 address {host[:50]!r}")
        return host
    for label in labels:
        if not label or label[0] == "-" or label[-1] == "-":
            raise SipParseError(f"invalid host {host[:50]!r}")
    if last[0] in _DIGITS:
        raise SipParseError(f"invalid host {host[:50]!r}")
    return host


def _is_ipv6(text: str) -> bool:
    # ipaddress accepts scope ids ("fe80::1%eth0"), which RFC 3261 IPv6address does not.
    if not text or text.strip(_HEX + ":."):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_port(text: str) -> int:
    """Parse a port number 1..65535; raise SipParseError otherwise."""
    if not text or len(text) > 5 or text.strip(_DIGITS):
        raise SipParseError(f"invalid port {text[:20]!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise SipParseError(f"port out of range: {port}")
    return port


def add_matched_params(params: dict[str, str | None], tail: str) -> None:
    """Add the ``;name[=value]`` pieces of ``tail`` to ``params`` (names lowercased, the first
    of a name wins).  Only for a tail a fast-path regex matched as tokens: nothing here is
    unescaped or checked."""
    for piece in tail[1:].split(";"):
        name, eq, value = piece.partition("=")
        name = name.lower()
        if name not in params:
            params[name] = value if eq else None


def _format_host(host: str) -> str:
    # An IPv6 address handed in without brackets still serializes as an IPv6reference.
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def host_port(host: str, port: int | None) -> str:
    """``host:port`` as a SIP header writes it (RFC 3261 hostport): an IPv6 address as an
    IPv6reference, ``[::1]:5060``; no ``:port`` when ``port`` is None."""
    text = _format_host(host)
    return text if port is None else f"{text}:{port}"


# --- URI classes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1), components stored unescaped.

    ``host`` keeps IPv6 brackets (``"[::1]"``); ``params`` has lowercased names in order, a
    flag parameter (``;lr``) maps to ``None``.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_CHARS))
            if self.password is not None:
                out.append(":")
                out.append(_escape(self.password, _PASSWORD_CHARS))
            out.append("@")
        out.append(_format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";")
            out.append(_escape(name, _PARAM_CHARS))
            if value is not None:
                out.append("=")
                out.append(_escape(value, _PARAM_CHARS))
        sep = "?"
        for hname, hvalue in self.headers.items():
            out.append(sep)
            out.append(_escape(hname, _HEADER_CHARS))
            out.append("=")
            out.append(_escape(hvalue, _HEADER_CHARS))
            sep = "&"
        return "".join(out)

    def __hash__(self) -> int:
        # Consistent with ==: equal objects have equal scheme, user, host and port.
        return hash((self.scheme, self.user, self.host, self.port))

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lowercased; ``None`` when absent or valueless."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True when the loose-routing ``lr`` parameter is present (RFC 3261 §19.1.1)."""
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or ``None``."""
        return self.params.get("maddr")

    @property
    def host_port(self) -> tuple[str, int | None]:
        """``(host without IPv6 brackets, port or None)``."""
        host = self.host
        if host.startswith("["):
            host = host[1:-1]
        return host, self.port

    def with_(self, **changes: Any) -> SipUri:
        """A copy with the given fields replaced (``uri.with_(port=5070, params={})``)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "tel"

    def __str__(self) -> str:
        out = ["tel:", self.number]
        for name, value in self.params.items():
            out.append(";")
            out.append(_escape(name, _PARAM_CHARS))
            if value is not None:
                out.append("=")
                out.append(_escape(value, _PARAM_CHARS))
        return "".join(out)

    def __hash__(self) -> int:
        return hash(self.number)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other URI scheme (RFC 3261 §25.1 absoluteURI): scheme lowercased, rest verbatim."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri

# A frozen dataclass's __init__ sets each field with object.__setattr__; storing through the
# slot descriptors does the same at about half the cost (From, To and the Request-URI of
# most messages are read).
_COMPILED: Final = is_compiled(__file__)
_new_object: Final = object.__new__
_set_scheme: Final = slot_setter(SipUri, "scheme", compiled=_COMPILED)
_set_user: Final = slot_setter(SipUri, "user", compiled=_COMPILED)
_set_password: Final = slot_setter(SipUri, "password", compiled=_COMPILED)
_set_host: Final = slot_setter(SipUri, "host", compiled=_COMPILED)
_set_port: Final = slot_setter(SipUri, "port", compiled=_COMPILED)
_set_params: Final = slot_setter(SipUri, "params", compiled=_COMPILED)
_set_headers: Final = slot_setter(SipUri, "headers", compiled=_COMPILED)


# --- parsing -------------------------------------------------------------------------------


# The SIP URI nearly every From, To and Request-URI carries: lower-case scheme, a user without
# escapes or password, an IPv4 address (its own alternative, so it needs no second check) or
# a hostname, a port, plain parameters, no headers. Each repeat is possessive or bounded and
# each optional part starts with its own delimiter ("@" ends the user, ":" ";" "="), so the
# match is linear. Anything else takes the exact path.
_SIP_COMMON = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]++)@)?"
    r"(?:(" + _IPV4.pattern + r")|([A-Za-z0-9\-.]++))(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++)?)*+)"
)


def parse_uri(text: str) -> Uri:
    """Parse a URI. ``sip``/``sips`` give :class:`SipUri`, ``tel`` :class:`TelUri`, any other
    well-formed scheme :class:`AbsoluteUri`. Raises SipParseError for malformed input.
    """
    m = _SIP_COMMON.fullmatch(text)
    if m is None:
        return _parse_uri_exact(text)
    # Checks left after the match run in the exact path's order, so they fail alike
    # (test_parser_fast_paths compares the two paths).
    scheme, user, ipv4, host, port_text, raw_params = m.groups()
    if ipv4 is not None:
        host = ipv4
    else:
        parse_host(host)
    port: int | None = None
    if port_text is not None:
        port = int(port_text)
        if not 0 < port < 65536:
            port = parse_port(port_text)  # raises, with the exact path's message
    params: dict[str, str | None] = {}
    if raw_params:
        add_matched_params(params, raw_params)
    if _COMPILED:
        return SipUri(scheme, user, None, host, port, params, {})
    uri: SipUri = _new_object(SipUri)
    _set_scheme(uri, scheme)
    _set_user(uri, user)
    _set_password(uri, None)
    _set_host(uri, host)
    _set_port(uri, port)
    _set_params(uri, params)
    _set_headers(uri, {})
    return uri


def _parse_uri_exact(text: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or scheme.strip(_SCHEME_CHARS) or scheme[0] not in _ALNUM[:52]:
        raise SipParseError(f"invalid URI scheme in {text[:50]!r}")
    scheme = scheme.lower()
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if not rest or _has_excluded(rest):
        raise SipParseError(f"invalid URI {text[:50]!r}")
    return AbsoluteUri(scheme, rest)


def _has_excluded(rest: str) -> bool:
    # Control characters, whitespace and the name-addr delimiters never belong in a URI.
    return any(c < "!" or c == "\x7f" or c in _ABSOLUTE_EXCLUDED for c in rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not raw_user:
            raise SipParseError("empty user in SIP URI")
        user = _unescape(raw_user, _USER_CHARS, "user")
        if colon:
            password = _unescape(raw_password, _PASSWORD_CHARS, "password")
    rest, qmark, raw_headers = rest.partition("?")
    hostport, semi, raw_params = rest.partition(";")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise SipParseError("unterminated IPv6 reference in SIP URI")
        host = hostport[: close + 1]
        after = hostport[close + 1 :]
        if after and after[0] != ":":
            raise SipParseError("text after IPv6 reference in SIP URI")
        raw_port = after[1:]
        has_port = bool(after)
    else:
        host, colon, raw_port = hostport.partition(":")
        has_port = bool(colon)
    parse_host(host)
    port = parse_port(raw_port) if has_port else None
    params: dict[str, str | None] = {}
    if semi:
        params = _parse_uri_params(raw_params)
    headers: dict[str, str] = {}
    if qmark:
        for item in raw_headers.split("&"):
            hname, eq, hvalue = item.partition("=")
            if not hname or not eq:
                raise SipParseError("invalid header in SIP URI")
            headers[_unescape(hname, _HEADER_CHARS, "header")] = _unescape(
                hvalue, _HEADER_CHARS, "header"
            )
    return SipUri(scheme, user, password, host, port, params, headers)


def _parse_uri_params(raw: str) -> dict[str, str | None]:
    # RFC 3261 §25.1: uri-parameter = pname [ "=" pvalue ], both 1*paramchar.
    params: dict[str, str | None] = {}
    for item in raw.split(";"):
        raw_name, eq, raw_value = item.partition("=")
        if not raw_name or (eq and not raw_value):
            raise SipParseError("empty URI parameter")
        name = _unescape(raw_name, _PARAM_CHARS, "parameter").lower()
        value = _unescape(raw_value, _PARAM_CHARS, "parameter") if eq else None
        if name not in params:
            params[name] = value
    return params


def _parse_tel(rest: str) -> TelUri:
    number, semi, raw_params = rest.partition(";")
    if not number or number.strip(_TEL_CHARS):
        raise SipParseError(f"invalid tel URI number {number[:40]!r}")
    params = _parse_uri_params(raw_params) if semi else {}
    return TelUri(number, params)


# --- comparison ----------------------------------------------------------------------------


def _fold(value: str | None) -> str | None:
    return None if value is None else value.lower()


def uri_equal(a: Uri, b: Uri) -> bool:
    """Compare two URIs by RFC 3261 §19.1.4.

    User and password compare case-sensitively, everything else case-insensitively, after
    unescaping. ``user``, ``ttl``, ``method``, ``maddr`` and ``transport`` parameters must
    match if either side has them; other parameters only when both have them; URI headers
    must all match. A missing port is not equal to an explicit 5060. tel URIs compare their
    number without visual separators (RFC 3966 §4); other schemes compare verbatim.
    """
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if (
            a.scheme != b.scheme
            or a.user != b.user
            or a.password != b.password
            or a.port != b.port
            or a.host.lower() != b.host.lower()
        ):
            return False
        for name in _URI_PARAMS_COMPARED:
            if _fold(a.params.get(name)) != _fold(b.params.get(name)) or (
                (name in a.params) != (name in b.params)
            ):
                return False
        if not _params_overlap_equal(a.params, b.params):
            return False
        ah = {k.lower(): v for k, v in a.headers.items()}
        bh = {k.lower(): v for k, v in b.headers.items()}
        return ah == bh
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        return _tel_digits(a.number) == _tel_digits(b.number) and _params_overlap_equal(
            a.params, b.params, require_all=True
        )
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme == b.scheme and a.rest == b.rest
    return False


def _params_overlap_equal(
    a: dict[str, str | None], b: dict[str, str | None], *, require_all: bool = False
) -> bool:
    if require_all and a.keys() != b.keys():
        return False
    return all(name not in b or _fold(value) == _fold(b[name]) for name, value in a.items())


def _tel_digits(number: str) -> str:
    return number.replace("-", "").replace(".", "").replace("(", "").replace(")", "").lower()
