"""What a client call sends when it is aborted on an unexpected message (SIPp's ``abortCall``).

SIPp's default behaviour ``abortunexp`` cleans up the INVITE dialog of a client call it gives
up on, so that the peer is not left ringing or retransmitting:

* a final answer of 300 or more to the INVITE is acknowledged (an ACK in the INVITE's
  transaction: same Via branch, RFC 3261 §17.1.1.3);
* an INVITE answered only provisionally is cancelled (CANCEL, RFC 3261 §9.1);
* an INVITE answered 2xx is acknowledged if the scenario had not yet sent its ACK, then ended
  with a BYE (RFC 3261 §15.1.1) to the 2xx's Contact.

A call without an INVITE sent, or a server-side call, sends nothing.  The messages are built
from the INVITE as it was sent and the response, never from the scenario's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipha.loadtest.scenario.sipmsg import Received

__all__ = ["InviteDialog", "abort_messages"]


@dataclass(slots=True)
class InviteDialog:
    """A client call's last INVITE, the best answer to it so far, and whether it was ACKed."""

    invite: Received
    response: Received | None = None
    acked: bool = False

    def observe(self, msg: Received) -> None:
        if (msg.status and msg.cseq_method == "INVITE"
                and msg.cseq_num == self.invite.cseq_num
                and (self.response is None or msg.status >= self.response.status)):
            self.response = msg


def _contact_uri(msg: Received) -> str:
    contact = msg.header("contact")
    if "<" in contact and ">" in contact:
        return contact[contact.find("<") + 1:contact.find(">")]
    return contact.split(";")[0].strip()


def _request(method: str, uri: str, via: str, *, frm: str, to: str, call_id: str,
             cseq: int) -> bytes:
    lines = [f"{method} {uri} SIP/2.0", via, f"From: {frm}", f"To: {to}",
             f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", "Max-Forwards: 70",
             "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def abort_messages(d: InviteDialog, *, unexpected: Received, new_branch: str) -> list[bytes]:
    """The messages to send for an aborted client call (see the module docstring)."""
    d.observe(unexpected)
    inv = d.invite
    vias = inv.lines("via")
    if not vias:
        return []
    top_via = vias[0]
    frm, call_id, n = inv.header("from"), inv.call_id, inv.cseq_num
    r = d.response
    if r is None:
        return []
    if r.status < 200:
        return [_request("CANCEL", inv.request_uri, top_via, frm=frm, to=inv.header("to"),
                         call_id=call_id, cseq=n)]
    if r.status >= 300:
        if d.acked:
            return []
        return [_request("ACK", inv.request_uri, top_via, frm=frm, to=r.header("to"),
                         call_id=call_id, cseq=n)]
    target = _contact_uri(r) or inv.request_uri
    _, _, rest = top_via.partition(":")
    base = rest.split(";branch=")[0].strip()
    out: list[bytes] = []
    if not d.acked:
        out.append(_request("ACK", target, f"Via: {base};branch={new_branch}a", frm=frm,
                            to=r.header("to"), call_id=call_id, cseq=n))
    out.append(_request("BYE", target, f"Via: {base};branch={new_branch}b", frm=frm,
                        to=r.header("to"), call_id=call_id, cseq=n + 1))
    return out
