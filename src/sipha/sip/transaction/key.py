"""Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3, §9.2).

Theory of operation
-------------------
A transaction is found again by a :class:`TransactionKey`, a small frozen value that goes in a
dict. RFC 3261 elements put a globally unique branch starting with the magic cookie
``z9hG4bK`` in their Via (§8.1.1.7), so:

* client side (§17.1.3): a response belongs to the client transaction whose request carried
  the same top Via branch and the same CSeq method (a CANCEL and the INVITE it cancels share a
  branch, the method tells them apart);
* server side (§17.2.3): a request belongs to the server transaction whose request had the same
  branch, the same top Via sent-by and the same method, with ACK counting as INVITE (the ACK
  for a non-2xx final shares the INVITE's branch).

A CANCEL has a transaction of its own; :func:`invite_key_for_cancel` is the key of the INVITE
it targets (§9.2), used to find that INVITE server transaction.

Requests from RFC 2543 elements lack the cookie. For them §17.2.3 compares Request-URI, To tag,
From tag, Call-ID, CSeq and top Via. We approximate with everything but the To tag, which
differs between an INVITE (none yet) and the ACK of our non-2xx response (our tag); a second
INVITE in the same call has a new CSeq, so the approximation only merges genuine
retransmissions. The ACK for a 2xx, carrying a fresh branch (§13.2.2.4), matches nothing and
goes to the dialog layer, which is right (RFC 6026 §7.1).

Every function reads lazily parsed headers and therefore raises only ``SipParseError``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sipha.sip.message import Request, Response
from sipha.sip.via import Via

__all__ = ["TransactionKey", "client_key", "invite_key_for_cancel", "server_key"]

_DEFAULT_PORTS = {"TLS": 5061, "WSS": 443, "WS": 80}


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """Identity of a transaction.

    ``method`` is the transaction's method (INVITE for an ACK). ``branch`` is the top Via
    branch for RFC 3261 peers; ``sent_by`` is set on server keys only (§17.2.3 compares it,
    §17.1.3 does not). ``legacy`` holds the RFC 2543 fallback fields and is ``None`` whenever
    the branch carries the magic cookie.
    """

    method: str
    branch: str | None
    sent_by: tuple[str, int] | None = None
    legacy: tuple[str, ...] | None = None

    @property
    def is_rfc3261(self) -> bool:
        """True for a key built from a magic-cookie branch."""
        return self.legacy is None


def _transaction_method(method: str) -> str:
    # RFC 3261 §17.2.3: "the method of the request matches the one that created the
    # transaction, except for ACK, where the method of the request that created the
    # transaction is INVITE".
    # Interned: a lingering transaction keeps its key for 32 s, and the method (a slice of
    # the request line) would otherwise be a string of its own in each of thousands of keys.
    return "INVITE" if method == "ACK" else sys.intern(method)


def _sent_by(via: Via) -> tuple[str, int]:
    # An absent port means the transport's default (RFC 3261 §18.1, §19.1.2); write it out so
    # "host" and "host:5060" match.
    port = via.port if via.port is not None else _DEFAULT_PORTS.get(via.transport, 5060)
    # Interned for the same reason: a server hears from a few hosts, in thousands of keys.
    return sys.intern(via.host.lower()), port


def server_key(request: Request) -> TransactionKey:
    """The key of the server transaction ``request`` belongs to (RFC 3261 §17.2.3)."""
    return _server_key(request, _transaction_method(request.method))


def invite_key_for_cancel(cancel: Request) -> TransactionKey:
    """The server key of the INVITE that ``cancel`` targets (RFC 3261 §9.2)."""
    return _server_key(cancel, "INVITE")


def _server_key(request: Request, method: str) -> TransactionKey:
    via = request.via
    branch = via.branch
    if via.has_magic_cookie:
        return TransactionKey(method, branch, _sent_by(via))
    top_via = request.get_all("via")[0]
    legacy = (
        request.ruri,
        request.from_tag or "",
        request.call_id,
        str(request.cseq.seq),
        top_via,
    )
    return TransactionKey(method, branch, None, legacy)


def client_key(message: Request | Response) -> TransactionKey:
    """The key of the client transaction of ``message`` (RFC 3261 §17.1.3).

    Pass the request when creating the transaction and each response to find it: both carry
    the same top Via branch and CSeq method.
    """
    return TransactionKey(message.cseq.method, message.via.branch)
