"""Digest challenge and credentials header values (the auth-param grammar).

Theory of operation
-------------------
WWW-Authenticate / Proxy-Authenticate carry a challenge and Authorization /
Proxy-Authorization carry credentials, both shaped like
``Digest realm="x", nonce="y", qop="auth,auth-int", algorithm=MD5``
(RFC 3261 §25.1 ``challenge`` / ``credentials``, RFC 2617 §3.2.1-3.2.2, RFC 7616 §3.3-3.4).

One linear scanner walks the value once: the scheme token, then ``name "=" value`` pairs where
the value is a token or a quoted-string with quoted-pair escapes (RFC 3261 §25.1), separated by
commas with optional whitespace. Empty list elements (``a=1,,b=2``) are tolerated as in the
``#rule`` (RFC 7230 §7). Names are case-insensitive; a repeated name is refused because RFC 7616
§3.4 says each directive MUST NOT appear more than once, and "which one wins" is a classic
confusion bug between a proxy and a server. Control characters are refused everywhere, so a
parsed value can never smuggle a CRLF back out through ``__str__``.

Unknown directives (charset, userhash, auth-param extensions) are skipped. An algorithm token
this core does not implement is *not* malformed: it is kept as a plain ``str`` so a client can
skip that challenge (RFC 7616 §3.7: use another challenge if there is one) and a server can
re-challenge (``AuthResult.UNSUPPORTED_ALGORITHM``) instead of answering 400.

Malformed input raises only :class:`SipParseError`. Serializing an object that holds a value
which cannot be written (control characters, a non-token algorithm) is API misuse: ValueError.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum

from sipha.sip.errors import SipParseError

__all__ = [
    "Algorithm",
    "DigestChallenge",
    "DigestCredentials",
    "parse_challenge",
    "parse_credentials",
]

# RFC 3261 §25.1 token characters.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
# Everything but HTAB is a control character here; header values arrive already unfolded.
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(r"[0-9a-fA-F]+")
_WS = " \t"
# An unquoted value runs to the next separator. Lenient on purpose (some UAs send unquoted
# URIs); the fields that have a stricter shape (nc, response, qop) are checked afterwards.
_UNQUOTED_STOP = frozenset(' \t,"')
_MAX_NC = 0xFFFFFFFF  # RFC 2617 §3.2.2: nc-value = 8LHEX


class Algorithm(StrEnum):
    """Digest algorithms (RFC 2617 §3.2.1, RFC 7616 §3.3, RFC 8760 §2 for SIP)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA256 = "SHA-256"
    SHA256_SESS = "SHA-256-sess"

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        """Parse an algorithm token, case-insensitively. Raises SipParseError if unknown."""
        folded = text.lower()
        for member in cls:
            if member.value.lower() == folded:
                return member
        raise SipParseError(f"unsupported digest algorithm {text[:40]!r}")

    @property
    def is_session(self) -> bool:
        """True for the ``-sess`` variants, whose HA1 is bound to nonce and cnonce."""
        return self in (Algorithm.MD5_SESS, Algorithm.SHA256_SESS)

    @property
    def hash_name(self) -> str:
        """hashlib name of the underlying hash: ``"md5"`` or ``"sha256"``."""
        return "md5" if self in (Algorithm.MD5, Algorithm.MD5_SESS) else "sha256"


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A Digest challenge (RFC 2617 §3.2.1, RFC 3261 §22.4).

    ``algorithm`` is a plain ``str`` when the peer named an algorithm this core does not
    implement. ``qop`` holds the offered options lowercased, in order. ``str()`` gives the
    header value, ``Digest ...``; it raises ValueError for unwritable values.
    """

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: Algorithm | str = Algorithm.MD5
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: str | None = None

    @property
    def is_supported(self) -> bool:
        """True when :func:`sipha.sip.auth.build_credentials` can answer this challenge."""
        return isinstance(self.algorithm, Algorithm) and (
            not self.qop or "auth" in self.qop or "auth-int" in self.qop
        )

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        parts.append(f"algorithm={_token(str(self.algorithm))}")
        if self.qop:
            # RFC 2617 §3.2.1: qop-options is a quoted list of tokens.
            parts.append(f'qop="{",".join(_token(q) for q in self.qop)}"')
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """Digest credentials (RFC 2617 §3.2.2, RFC 3261 §22.4).

    ``response`` is lowercase hex. ``nc`` is the nonce-count as an int (written as 8 hex
    digits). ``algorithm`` is a plain ``str`` when unknown to this core. ``str()`` gives the
    header value; it raises ValueError for unwritable values.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm | str = Algorithm.MD5
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: int | None = None

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={_token(str(self.algorithm))}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            # RFC 2617 §3.2.2: message-qop is an unquoted token.
            parts.append(f"qop={_token(self.qop)}")
        if self.nc is not None:
            if not 0 <= self.nc <= _MAX_NC:
                raise ValueError(f"nonce-count out of range: {self.nc}")
            parts.append(f"nc={self.nc:08x}")
        return "Digest " + ", ".join(parts)


def parse_challenge(header_value: str) -> DigestChallenge:
    """Parse a WWW-Authenticate / Proxy-Authenticate value. Raises only SipParseError."""
    params = _parse_digest(header_value)
    qop_raw = params.get("qop")
    qop: tuple[str, ...] = ()
    if qop_raw is not None:
        qop = tuple(q.strip().lower() for q in qop_raw.split(",") if q.strip())
        for option in qop:
            _check_token(option, "qop")
    stale_raw = params.get("stale")
    return DigestChallenge(
        realm=_require(params, "realm"),
        nonce=_require(params, "nonce"),
        opaque=params.get("opaque"),
        algorithm=_algorithm(params.get("algorithm")),
        qop=qop,
        # RFC 2617 §3.2.1: anything other than TRUE means false.
        stale=stale_raw is not None and stale_raw.lower() == "true",
        domain=params.get("domain"),
    )


def parse_credentials(header_value: str) -> DigestCredentials:
    """Parse an Authorization / Proxy-Authorization value. Raises only SipParseError."""
    params = _parse_digest(header_value)
    response = _require(params, "response")
    if not _HEX.fullmatch(response):
        raise SipParseError("digest response is not hex")
    qop = params.get("qop")
    if qop is not None:
        qop = qop.lower()
        _check_token(qop, "qop")
    nc_raw = params.get("nc")
    nc: int | None = None
    if nc_raw is not None:
        if len(nc_raw) > 8 or not _HEX.fullmatch(nc_raw):
            raise SipParseError("digest nc is not 1-8 hex digits")
        nc = int(nc_raw, 16)
    cnonce = params.get("cnonce")
    # RFC 2617 §3.2.2: cnonce and nc MUST be present when qop is.
    if qop is not None and (cnonce is None or nc is None):
        raise SipParseError("digest qop without cnonce or nc")
    return DigestCredentials(
        username=_require(params, "username"),
        realm=_require(params, "realm"),
        nonce=_require(params, "nonce"),
        uri=_require(params, "uri"),
        response=response.lower(),
        algorithm=_algorithm(params.get("algorithm")),
        cnonce=cnonce,
        opaque=params.get("opaque"),
        qop=qop,
        nc=nc,
    )


# --- scanner -------------------------------------------------------------------------------


def _parse_digest(value: str) -> dict[str, str]:
    """Check the ``Digest`` scheme and return its auth-params, names lowercased."""
    if _CTL.search(value):
        raise SipParseError("control character in auth header")
    i = _skip_ws(value, 0)
    j = _scan_token(value, i)
    if value[i:j].lower() != "digest":
        raise SipParseError("auth scheme is not Digest")
    if j < len(value) and value[j] not in _WS:
        raise SipParseError("expected whitespace after auth scheme")
    return _scan_params(value, j)


def _scan_params(s: str, i: int) -> dict[str, str]:
    params: dict[str, str] = {}
    n = len(s)
    while True:
        while i < n and (s[i] in _WS or s[i] == ","):
            i += 1
        if i >= n:
            return params
        j = _scan_token(s, i)
        if j == i:
            raise SipParseError(f"expected auth-param name at offset {i}")
        name = s[i:j].lower()
        i = _skip_ws(s, j)
        if i >= n or s[i] != "=":
            raise SipParseError(f"expected '=' after {name[:40]!r}")
        i = _skip_ws(s, i + 1)
        if i < n and s[i] == '"':
            val, i = _scan_quoted(s, i)
        else:
            j = i
            while j < n and s[j] not in _UNQUOTED_STOP:
                j += 1
            if j == i:
                raise SipParseError(f"empty value for {name[:40]!r}")
            val, i = s[i:j], j
        if name in params:
            raise SipParseError(f"repeated auth-param {name[:40]!r}")
        params[name] = val
        i = _skip_ws(s, i)
        if i < n and s[i] != ",":
            raise SipParseError(f"expected ',' at offset {i}")


def _scan_quoted(s: str, i: int) -> tuple[str, int]:
    """Scan a quoted-string starting at the opening quote; return (unescaped, next index)."""
    out: list[str] = []
    n = len(s)
    j = i + 1
    while j < n:
        c = s[j]
        if c == '"':
            return "".join(out), j + 1
        if c == "\\":
            if j + 1 >= n:
                break
            out.append(s[j + 1])  # RFC 3261 §25.1 quoted-pair
            j += 2
            continue
        out.append(c)
        j += 1
    raise SipParseError("unterminated quoted-string in auth header")


def _scan_token(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _TOKEN_CHARS:
        i += 1
    return i


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise SipParseError(f"digest {name} missing")
    return value


def _check_token(value: str, what: str) -> None:
    if not value or any(c not in _TOKEN_CHARS for c in value):
        raise SipParseError(f"digest {what} is not a token")


def _algorithm(raw: str | None) -> Algorithm | str:
    if raw is None:
        return Algorithm.MD5  # RFC 2617 §3.2.1: absent means MD5
    _check_token(raw, "algorithm")
    try:
        return Algorithm.parse(raw)
    except SipParseError:
        return raw


# --- writer --------------------------------------------------------------------------------


def _quote(value: str) -> str:
    if _CTL.search(value):
        raise ValueError("control character in auth-param value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token(value: str) -> str:
    if not value or any(c not in _TOKEN_CHARS for c in value):
        raise ValueError(f"not a token: {value!r}")
    return value
