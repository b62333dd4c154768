"""Building the load generator's requests and responses as bytes, fast.

The engines send a few message shapes millions of times; f-string templates over a fixed
local identity are several times faster than building :class:`sipha.sip.Request` objects and
serialising them, and the result is the same bytes.  Content-Length is always computed here.
Responses copy Via, From, To, Call-ID and CSeq from the request (RFC 3261 §8.2.6.2).
"""

from __future__ import annotations

from sipha.loadtest.wire import Scan

__all__ = ["MessageBuilder", "sdp_offer"]


def sdp_offer(host: str, session: int) -> bytes:
    """A minimal audio offer (RFC 4566), PCMU, like SIPp's built-in scenarios."""
    ip4 = "IP6" if ":" in host else "IP4"
    return (
        f"v=0\r\no=sipha {session} {session} IN {ip4} {host}\r\ns=-\r\n"
        f"c=IN {ip4} {host}\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


class MessageBuilder:
    """Templates for one local identity (host, port, transport) talking to one target."""

    __slots__ = ("contact_host", "domain", "local_host", "local_port", "sent_by", "target", "via_t")

    def __init__(
        self, *, local_host: str, local_port: int, transport: str, target: str, domain: str
    ) -> None:
        self.local_host = local_host
        self.local_port = local_port
        host = f"[{local_host}]" if ":" in local_host else local_host
        self.sent_by = f"{host}:{local_port}"
        self.via_t = transport.upper()
        self.contact_host = self.sent_by + ("" if transport == "udp" else f";transport={transport}")
        self.target = target  # host:port of the next hop, used in Request-URIs
        self.domain = domain

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.contact_host}>"

    def request(
        self,
        method: str,
        ruri: str,
        *,
        branch: str,
        from_: str,
        to: str,
        call_id: str,
        cseq: int,
        extra: str = "",
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> bytes:
        """A request; ``extra`` is pre-formatted header lines, each ending in CRLF."""
        ctype = f"Content-Type: {content_type}\r\n" if body else ""
        head = (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{self.via_t} {self.sent_by};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n{extra}"
            f"User-Agent: sipha-load\r\n{ctype}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body if body else head.encode()

    def response(
        self,
        req: Scan,
        status: int,
        reason: str,
        *,
        to_tag: bytes = b"",
        extra: bytes = b"",
        body: bytes = b"",
    ) -> bytes:
        """A response to ``req``, its To tagged with ``to_tag`` unless it already has one."""
        to = req.to
        if to_tag and not req.to_tag:
            to = to + b";tag=" + to_tag
        parts = [f"SIP/2.0 {status} {reason}".encode()]
        parts += [b"Via: " + v for v in req.vias]
        parts += [
            b"From: " + req.from_,
            b"To: " + to,
            b"Call-ID: " + req.call_id,
            b"CSeq: %d %s" % (req.cseq_num, req.cseq_method),
        ]
        if extra:
            parts.append(extra.rstrip(b"\r\n"))
        if body:
            parts.append(b"Content-Type: application/sdp")
        parts.append(b"Content-Length: %d\r\n\r\n" % len(body))
        return b"\r\n".join(parts) + body
