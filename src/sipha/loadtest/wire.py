"""A lean SIP scanner for the load generator's hot path, and TCP stream framing.

Why not :func:`sipha.sip.parse_message`?  It builds a full, validated message model (about
40 us a message here); a load generator receiving tens of thousands of messages a second needs
a handful of fields from each: the status or method, Call-ID, CSeq, the To tag, the header lines
a UAS copies into its responses, and (rarely) Contact, Record-Route and a digest challenge.
:func:`scan` splits the header block once and picks those out (a few microseconds).  It is
lenient: what it cannot read it leaves empty, and the engines treat a message without Call-ID
or CSeq as "unexpected", counted, never raised.  Messages the engines must understand fully
(challenges) go through the SIP core's parsers.

Compact header forms (RFC 3261 §7.3.3: i, v, f, t, m, l) are understood.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Scan", "scan", "tag_of"]

_COMPACT: Final[dict[bytes, bytes]] = {
    b"i": b"call-id",
    b"v": b"via",
    b"f": b"from",
    b"t": b"to",
    b"m": b"contact",
    b"l": b"content-length",
    b"c": b"content-type",
}


class Scan:
    """The fields of one message the engines use.  Values are bytes, stripped."""

    __slots__ = (
        "body",
        "call_id",
        "challenge",
        "contact",
        "cseq_method",
        "cseq_num",
        "expires",
        "from_",
        "method",
        "proxy_challenge",
        "record_routes",
        "status",
        "to",
        "vias",
    )

    def __init__(self) -> None:
        self.status = 0  # 0 for a request
        self.method = b""  # request method; for a response, empty (see cseq_method)
        self.call_id = b""
        self.cseq_num = -1
        self.cseq_method = b""
        self.from_ = b""
        self.to = b""
        self.vias: list[bytes] = []
        self.contact = b""
        self.record_routes: list[bytes] = []
        self.challenge = b""  # WWW-Authenticate value
        self.proxy_challenge = b""  # Proxy-Authenticate value
        self.expires = b""
        self.body = b""

    @property
    def to_tag(self) -> bytes:
        """The To header's tag parameter (b"" if none)."""
        return tag_of(self.to)

    @property
    def from_tag(self) -> bytes:
        """The From header's tag parameter (b"" if none)."""
        return tag_of(self.from_)

    def contact_uri(self) -> str:
        """The first Contact's URI (without angle brackets), or "" if none."""
        c = self.contact
        if not c:
            return ""
        lt = c.find(b"<")
        if lt >= 0:
            gt = c.find(b">", lt)
            return c[lt + 1 : gt if gt > 0 else len(c)].decode("utf-8", "replace")
        return c.split(b";", 1)[0].split(b",", 1)[0].strip().decode("utf-8", "replace")


def tag_of(header_value: bytes) -> bytes:
    """The ``tag`` parameter of a From/To value (outside the angle brackets)."""
    gt = header_value.rfind(b">")
    params = header_value[gt + 1 :] if gt >= 0 else header_value
    i = params.find(b";tag=")
    if i < 0:
        i = params.lower().find(b";tag=")
        if i < 0:
            return b""
    rest = params[i + 5 :]
    end = rest.find(b";")
    return (rest if end < 0 else rest[:end]).strip()


# Header name -> which field it fills (0: none).  Names are looked up as written first (the
# spellings peers use), and only an unknown spelling is stripped and lowercased: most lines
# then cost one dict lookup.
_VIA, _CALL_ID, _CSEQ, _FROM, _TO, _CONTACT, _RR, _WWW_AUTH, _PROXY_AUTH, _EXPIRES = range(1, 11)
_FIELDS_LOWER: Final[dict[bytes, int]] = {
    b"via": _VIA,
    b"call-id": _CALL_ID,
    b"cseq": _CSEQ,
    b"from": _FROM,
    b"to": _TO,
    b"contact": _CONTACT,
    b"record-route": _RR,
    b"www-authenticate": _WWW_AUTH,
    b"proxy-authenticate": _PROXY_AUTH,
    b"expires": _EXPIRES,
}
_FIELDS: Final[dict[bytes, int]] = {
    **{short: _FIELDS_LOWER[long] for short, long in _COMPACT.items() if long in _FIELDS_LOWER},
    **{short: 0 for short, long in _COMPACT.items() if long not in _FIELDS_LOWER},
    **_FIELDS_LOWER,
    **{b"-".join(w.capitalize() for w in k.split(b"-")): v for k, v in _FIELDS_LOWER.items()},
    b"Call-ID": _CALL_ID,
    b"CSeq": _CSEQ,
    b"WWW-Authenticate": _WWW_AUTH,
    # Headers every peer sends that the engines do not read.
    **dict.fromkeys(
        (b"Max-Forwards", b"User-Agent", b"Content-Type", b"Content-Length", b"Allow",
         b"Accept", b"Server", b"Supported", b"Subject", b"Content-Encoding", b"Route",
         b"Authorization", b"Proxy-Authorization", b"Date", b"Allow-Events"),
        0,
    ),
}


def scan(data: bytes) -> Scan:
    """Pick out the fields the engines use (see :class:`Scan`).  Never raises for bad bytes:
    unreadable fields stay empty."""
    s = Scan()
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        head = data
    else:
        head = data[:head_end]
        s.body = data[head_end + 4 :]
    lines = head.split(b"\r\n")
    first = lines[0]
    if first.startswith(b"SIP/2.0 "):
        code = first[8:11]
        if code.isdigit():
            s.status = int(code)
    else:
        s.method = first.split(b" ", 1)[0]
    fields = _FIELDS
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            continue
        field = fields.get(line[:colon])
        if field is None:
            field = _FIELDS_LOWER.get(line[:colon].rstrip().lower())
            if field is None:
                name = line[:colon].rstrip().lower()
                if len(name) != 1 or (field := fields.get(name)) is None:
                    continue
        if not field:
            continue
        value = line[colon + 1 :].strip()
        if field == _VIA:
            s.vias.append(value)
        elif field == _CALL_ID:
            s.call_id = value
        elif field == _CSEQ:
            parts = value.split()
            if len(parts) == 2 and parts[0].isdigit():
                s.cseq_num = int(parts[0])
                s.cseq_method = parts[1]
        elif field == _FROM:
            s.from_ = value
        elif field == _TO:
            s.to = value
        elif field == _CONTACT:
            if not s.contact:
                s.contact = value
        elif field == _RR:
            s.record_routes.append(value)
        elif field == _WWW_AUTH:
            s.challenge = value
        elif field == _PROXY_AUTH:
            s.proxy_challenge = value
        else:
            s.expires = value
    return s
