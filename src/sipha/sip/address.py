"""name-addr / addr-spec header values: From, To, Contact, Route, Record-Route, Refer-To...

Theory of operation
-------------------
RFC 3261 §20.10 and §25.1 allow two spellings:

* name-addr: ``[display-name] "<" URI ">" *(";" param)``. The display name is a quoted string
  or a run of tokens; params after ``>`` are header parameters (``tag``, ``expires``, ``q``).
* addr-spec: a bare URI. It cannot hold ``,``, ``;`` or ``?`` of its own, so everything after
  the first ``;`` is a header parameter, not a URI parameter.

Parsing is one pass: read a quoted display name (if any) with the shared quoted-string scanner,
then ``find('<')``/``find('>')``, then hand the bracket contents to :func:`parse_uri` and the
tail to :func:`parse_params`. Lists are split first with :func:`split_comma`, which already
skips commas inside quotes and brackets. Everything malformed raises SipParseError.
A display name that is a single token (the usual ``sipp <sip:...>``) is taken as is, without
the word split the general rule needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Literal

from sipha.sip.errors import SipParseError
from sipha.sip.headers import (
    TOKEN_CHARS,
    format_params,
    parse_params,
    parse_uint,
    quote,
    scan_quoted,
    split_comma,
)
from sipha.sip.native import is_compiled, slot_setter
from sipha.sip.uri import Uri, parse_uri

if TYPE_CHECKING:
    pass

__all__ = [
    "NameAddr",
    "parse_contact_list",
    "parse_name_addr",
    "parse_name_addr_list",
]

_WS: Final = " \t"
_EXPIRES_MAX: Final = 2**32 - 1


@dataclass(frozen=True, slots=True)
class NameAddr:
    """One address header value.

    ``display_name`` is unquoted (``None`` when absent, ``""`` for ``"" <...>``); ``params``
    are the header parameters, names lowercased, in order. ``bracketed`` records whether the
    URI was written inside ``<>``; it does not take part in ``==``.
    """

    uri: Uri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    bracketed: bool = field(default=True, compare=False)

    def __str__(self) -> str:
        uri = str(self.uri)
        if (
            not self.bracketed
            and self.display_name is None
            and not self.params
            and "," not in uri
            and ";" not in uri
            and "?" not in uri
        ):
            return uri
        head = f"<{uri}>"
        if self.display_name is not None:
            head = f"{quote(self.display_name)} {head}"
        if self.params:
            return head + format_params(self.params)
        return head

    def __hash__(self) -> int:
        return hash((self.display_name, self.uri))

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or ``None``."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``tag`` set (a UAS adding its To tag, RFC 3261 §8.2.6.2)."""
        params = dict(self.params)
        params["tag"] = tag
        return replace(self, params=params, bracketed=True)

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter in seconds (RFC 3261 §20.10), or ``None``.

        Raises SipParseError when present but not an integer 0..2**32-1.
        """
        if "expires" not in self.params:
            return None
        value = self.params["expires"]
        if value is None:
            raise SipParseError("Contact expires parameter without value")
        return parse_uint(value, name="Contact expires", maximum=_EXPIRES_MAX)

    @property
    def q(self) -> float | None:
        """The Contact ``q`` parameter (RFC 3261 §20.10 qvalue), or ``None``.

        Raises SipParseError when present but not a qvalue (0 to 1, up to 3 decimals).
        """
        if "q" not in self.params:
            return None
        return _parse_qvalue(self.params["q"])


# A frozen dataclass's __init__ sets each field with object.__setattr__; storing through the
# slot descriptors does the same at about half the cost, and nodes read From and To of most
# messages.
_COMPILED: Final = is_compiled(__file__)
_new_object: Final = object.__new__
_set_uri: Final = slot_setter(NameAddr, "uri", compiled=_COMPILED)
_set_display: Final = slot_setter(NameAddr, "display_name", compiled=_COMPILED)
_set_params: Final = slot_setter(NameAddr, "params", compiled=_COMPILED)
_set_bracketed: Final = slot_setter(NameAddr, "bracketed", compiled=_COMPILED)


def _name_addr(
    uri: Uri, display: str | None, params: dict[str, str | None], bracketed: bool
) -> NameAddr:
    if _COMPILED:
        return NameAddr(uri, display, params, bracketed)
    addr: NameAddr = _new_object(NameAddr)
    _set_uri(addr, uri)
    _set_display(addr, display)
    _set_params(addr, params)
    _set_bracketed(addr, bracketed)
    return addr


def _parse_qvalue(value: str | None) -> float:
    # RFC 3261 §25.1: qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")])
    if value is None:
        raise SipParseError("q parameter without value")
    whole, dot, frac = value.partition(".")
    if (
        (whole != "0" and whole != "1")
        or len(frac) > 3
        or (frac and frac.strip("0123456789"))
        or (whole == "1" and frac.strip("0"))
    ):
        raise SipParseError(f"invalid q value {value[:20]!r}")
    return float(value) if dot and frac else float(whole)


def _check_display_words(text: str) -> str | None:
    # RFC 3261 §25.1: display-name = *(token LWS) / quoted-string. Non-ASCII is tolerated
    # unquoted because real user agents send UTF-8 names that way.
    word = text.strip(_WS)
    if word and not word.strip(TOKEN_CHARS):
        return word  # the common single token: what the general split below returns
    return _check_display_words_exact(text)


def _check_display_words_exact(text: str) -> str | None:
    words = [w for w in text.replace("\t", " ").split(" ") if w]
    if not words:
        return None
    for word in words:
        rest = word.strip(TOKEN_CHARS)
        if rest and any(c < "\x80" and c not in TOKEN_CHARS for c in rest):
            raise SipParseError(f"invalid display name {text[:40]!r}")
    return " ".join(words)


def parse_name_addr(value: str) -> NameAddr:
    """Parse one name-addr or addr-spec with its header parameters.

    Raises SipParseError for malformed input (unterminated quote or ``<``, text between the
    display name and ``<``, a bad URI or bad parameters).
    """
    s = value.strip(_WS)
    if not s:
        raise SipParseError("empty address")
    display: str | None
    if s[0] == '"':
        display, i = scan_quoted(s, 0)
        lt = s.find("<", i)
        if lt < 0 or s[i:lt].strip(_WS):
            raise SipParseError("expected '<' after quoted display name")
    else:
        lt = s.find("<")
        if lt < 0:
            return _parse_addr_spec(s)
        display = _check_display_words(s[:lt])
    gt = s.find(">", lt + 1)
    if gt < 0:
        raise SipParseError("unterminated '<' in address")
    uri = parse_uri(s[lt + 1 : gt])
    tail = s[gt + 1 :]
    params = parse_params(tail) if tail else {}
    return _name_addr(uri, display, params, True)


def _parse_addr_spec(s: str) -> NameAddr:
    # RFC 3261 §20.10: without brackets, every ';' parameter belongs to the header.
    if ">" in s:
        raise SipParseError("'>' without '<' in address")
    raw_uri, semi, tail = s.partition(";")
    if "?" in raw_uri or "," in raw_uri:
        # §20.10: a URI with a comma, question mark or semicolon MUST be in angle brackets
        # (RFC 4475 §3.1.2.13 regbadct: an escaped Route in a bare Contact is refused).
        raise SipParseError("a URI with '?' or ',' must be enclosed in '<>'")
    uri = parse_uri(raw_uri.rstrip(_WS))
    params = parse_params(";" + tail) if semi else {}
    return _name_addr(uri, None, params, False)


def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Parse a comma-separated list of addresses (Route, Record-Route, P-Asserted-Identity).

    Raises SipParseError when malformed or empty.
    """
    parts = split_comma(value)
    if not parts:
        raise SipParseError("empty address list")
    return [parse_name_addr(part) for part in parts]


def parse_contact_list(value: str) -> list[NameAddr] | Literal["*"]:
    """Parse a Contact header value: ``"*"`` (RFC 3261 §10.2.2) or a list of addresses.

    Raises SipParseError when malformed or empty, including ``*`` mixed with addresses.
    """
    if value.strip(_WS) == "*":
        return "*"
    return parse_name_addr_list(value)
