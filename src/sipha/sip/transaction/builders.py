"""Requests derived from an INVITE: the ACK for a non-2xx final and the CANCEL.

Both reuse header values of the INVITE verbatim (no re-serialization), so the peer sees the
exact From, Call-ID, Route and Via it saw in the INVITE, which its matching depends on
(RFC 3261 §17.2.3, §9.2). Both raise only ``SipParseError`` when the INVITE lacks a header.
"""

from __future__ import annotations

from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_request

__all__ = ["build_ack_for_non2xx", "build_cancel"]

# RFC 3261 §8.1.1.6: "SHOULD be 70".
_MAX_FORWARDS = "70"


def _required(message: Request | Response, name: str) -> str:
    value = message.get(name)
    if value is None:
        raise SipParseError(f"missing {name} header")
    return value


def _derived(invite: Request, method: str, to: str) -> Request:
    # Shared shape of §17.1.1.3 and §9.1: same Request-URI, Call-ID, From and CSeq number,
    # only the top Via, the INVITE's Route set.
    vias = invite.get_all("via")
    if not vias:
        raise SipParseError("missing Via header")
    headers: list[tuple[str, str]] = [("Via", vias[0])]
    headers.append(("Max-Forwards", _MAX_FORWARDS))
    headers.extend(("Route", route) for route in invite.get_all("route"))
    headers.append(("From", _required(invite, "from")))
    headers.append(("To", to))
    headers.append(("Call-ID", invite.call_id))
    headers.append(("CSeq", f"{invite.cseq.seq} {method}"))
    return build_request(method, invite.ruri, headers)


def build_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a 300-699 ``response`` (§17.1.1.3).

    Request-URI, Call-ID, From, CSeq number and Route come from the INVITE, To (with the tag
    the UAS chose) from the response, Via is the INVITE's top Via alone (same branch: the ACK
    is part of the INVITE transaction), Max-Forwards is 70 and there is no body.
    """
    return _derived(invite, "ACK", _required(response, "to"))


def build_cancel(invite: Request) -> Request:
    """The CANCEL for ``invite`` (RFC 3261 §9.1).

    Request-URI, Call-ID, To, From and CSeq number from the INVITE, method CANCEL, a single Via
    equal to the INVITE's top Via (so the UAS matches it to the INVITE, §9.2), the INVITE's
    Route headers and Max-Forwards 70. It is sent in a client non-INVITE transaction of its
    own, and only after a provisional response arrived (§9.1).
    """
    return _derived(invite, "CANCEL", _required(invite, "to"))
