"""Requests the dispatcher writes itself: probes, ACKs, CANCELs and the BYE for a ghost call.

These are built as text from the few values they need (RFC 3261 §17.1.1.3 for the ACK of a
non-2xx, §9.1 for CANCEL, §13.2.2.4 and §15 for the ACK and BYE that end a 2xx nobody wants),
which is cheaper than building a message object and serializing it.
"""

from __future__ import annotations

from sipha.sip import Request, Response


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def options_probe(
    *, uri: str, via: str, from_uri: str, tag: str, call_id: str, cseq: int
) -> bytes:
    """An OPTIONS keepalive probe (Kamailio's ``ds_ping_method``)."""
    return _join([
        f"OPTIONS {uri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: <{from_uri}>;tag={tag}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} OPTIONS",
        "User-Agent: sipha-dispatcher",
        "Content-Length: 0",
    ])


def _route_lines(request: Request) -> list[str]:
    return [f"Route: {r}" for r in request.get_all("route")]


def ack_for_non2xx(request: Request, response: Response, via: str) -> bytes:
    """The ACK a client transaction sends for a non-2xx final response (RFC 3261 §17.1.1.3):
    same Request-URI, only our top Via, To from the response, CSeq number with ACK."""
    return _join([
        f"ACK {request.ruri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: {request.get('from')}",
        f"To: {response.get('to')}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.cseq.seq} ACK",
        *_route_lines(request),
        "Content-Length: 0",
    ])


def cancel_for(request: Request, via: str) -> bytes:
    """CANCEL of a forwarded INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To and
    CSeq number, only the Via of the branch being cancelled."""
    return _join([
        f"CANCEL {request.ruri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: {request.get('from')}",
        f"To: {request.get('to')}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.cseq.seq} CANCEL",
        *_route_lines(request),
        "Content-Length: 0",
    ])


def end_ghost_dialog(response: Response, ack_via: str, bye_via: str) -> tuple[bytes, bytes]:
    """ACK and BYE for a 2xx that arrived from a server we had given up on.

    The dispatcher acts as the caller in that dialog (RFC 3261 §13.2.2.4, §15.1.1): the
    Request-URI is the 2xx's Contact, From/To/Call-ID come from the 2xx, the ACK takes the
    INVITE's CSeq number and the BYE the next one. Raises SipParseError for a malformed 2xx.
    """
    contacts = response.contacts
    target = str(contacts[0].uri) if contacts and contacts != "*" else None
    if target is None:
        raise ValueError("2xx without Contact")
    seq = response.cseq.seq
    common = [
        "Max-Forwards: 70",
        f"From: {response.get('from')}",
        f"To: {response.get('to')}",
        f"Call-ID: {response.call_id}",
    ]
    ack = _join([
        f"ACK {target} SIP/2.0", f"Via: {ack_via}", *common, f"CSeq: {seq} ACK",
        "Content-Length: 0",
    ])
    bye = _join([
        f"BYE {target} SIP/2.0", f"Via: {bye_via}", *common, f"CSeq: {seq + 1} BYE",
        "Reason: SIP;cause=200;text=\"answered after failover\"", "Content-Length: 0",
    ])
    return ack, bye
