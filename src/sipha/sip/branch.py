"""Via branch parameters: stateless derivation, matching and signed tokens.

Theory of operation
-------------------
A stateless element (the dispatcher) must put a branch in the Via it adds without remembering
anything, yet every retransmission of a request must get the same branch, and so must the CANCEL
and the ACK for a non-2xx of an INVITE, since the next hop matches them to the INVITE's server
transaction by branch (RFC 3261 §17.2.3). RFC 3261 §16.11 recommends hashing:

* the incoming top Via branch when it carries the magic cookie: it already names the
  transaction (§8.1.1.7); we add the top Via's sent-by, which §17.2.3 matches along with it;
* otherwise (an RFC 2543 peer) the top Via, From tag, Call-ID, CSeq number (not the method) and
  Request-URI -- one of them differs between any two transactions.

§16.11 also lists the To tag for the second case; we leave it out on purpose: an INVITE has no
To tag while the ACK for its non-2xx response has one, so hashing it would give that ACK a
branch the next hop cannot match. The CSeq number still separates transactions within a dialog.

Of the top Via we hash transport, sent-by and branch only, never the whole value, so that the
``received``/``rport`` parameters a server stamps on it (§18.2.1, RFC 3581) cannot change the
result. A ``salt`` (e.g. the index of the server a retry goes to) yields a different branch for
the same transaction, as a new client transaction needs (§16.6 step 8). Hashing is BLAKE2b,
keyed with a per-cluster secret so branches cannot be predicted from outside.

Signed tokens: :func:`make_branch` embeds a short opaque token (the chosen server's index, ...)
in the branch, followed by a keyed BLAKE2b MAC (a MAC construction in its own right, faster than
HMAC). :func:`read_branch_token` reads it back from the top Via of a response and returns None
when the MAC does not verify, so a forged response cannot steer routing. Layout::

    z9hG4bK <uniq: 16 hex> "." <token> "." <mac: 16 hex>

The §16.11 loop-detection component of the branch is not produced here.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Final

from .headers import TOKEN_CHARS
from .via import MAGIC_COOKIE

if TYPE_CHECKING:
    from .message import Request

__all__ = [
    "MAX_TOKEN_LENGTH",
    "branch_digest_input",
    "is_rfc3261_branch",
    "make_branch",
    "read_branch_token",
    "request_matches_via",
    "stateless_branch",
]

MAX_TOKEN_LENGTH: Final = 32
# "." separates the parts of a signed branch, so a token may hold any other token character.
_TOKEN_PAYLOAD_CHARS: Final = TOKEN_CHARS.replace(".", "")
_HEX: Final = "0123456789abcdef"
_UNIQ_BYTES: Final = 8
_MAC_BYTES: Final = 8
_STATELESS_BYTES: Final = 12
_MAC_PERSON: Final = b"sipha-branch-mac"
_COOKIE_LEN: Final = len(MAGIC_COOKIE)


def _key(secret: bytes) -> bytes:
    # BLAKE2b takes keys up to 64 bytes; a longer secret is condensed first.
    return secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()


def is_rfc3261_branch(branch: str | None) -> bool:
    """True when ``branch`` starts with the magic cookie (RFC 3261 §8.1.1.7), so the §17.2.3
    branch matching rules apply; False for None or an RFC 2543 branch."""
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def branch_digest_input(request: Request, *, salt: str = "") -> bytes:
    """The bytes :func:`stateless_branch` hashes (RFC 3261 §16.11), for callers that compose
    their own branch (e.g. with :func:`make_branch`).

    Equal for a request, its retransmissions, and the CANCEL / non-2xx ACK of an INVITE.
    Raises SipParseError when the top Via, From, Call-ID or CSeq is missing or malformed.
    """
    via = request.via
    host, port = via.sent_by
    branch = via.branch
    top = f"{via.transport}\x00{host.lower()}\x00{port or ''}\x00{branch or ''}"
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        text = f"3261\x00{top}\x00{salt}"
    else:
        text = (
            f"2543\x00{top}\x00{request.from_tag or ''}\x00{request.call_id}\x00"
            f"{request.cseq.seq}\x00{request.ruri}\x00{salt}"
        )
    return text.encode("utf-8", "surrogateescape")


def stateless_branch(request: Request, *, secret: bytes = b"", salt: str = "") -> str:
    """A branch for the Via a stateless proxy adds to ``request`` (RFC 3261 §16.11).

    Deterministic: retransmissions, and the CANCEL and non-2xx ACK of an INVITE, get the branch
    of the INVITE; other requests get different ones; a different ``salt`` gives a different
    branch. The result starts with ``z9hG4bK``. Raises SipParseError for a malformed request.
    """
    digest = hashlib.blake2b(
        branch_digest_input(request, salt=salt),
        digest_size=_STATELESS_BYTES,
        key=_key(secret),
    ).hexdigest()
    return MAGIC_COOKIE + digest


def _default_port(transport: str) -> int:
    return 5061 if transport.upper() in ("TLS", "WSS") else 5060


def _method_matches(method: str, created_by: str) -> bool:
    # §17.2.3: the ACK for a non-2xx matches the INVITE transaction.
    return method == created_by or (method == "ACK" and created_by == "INVITE")


def request_matches_via(
    request: Request,
    branch: str,
    sent_by: tuple[str, int | None],
    *,
    method: str | None = None,
) -> bool:
    """RFC 3261 §17.2.3: does ``request`` belong to the server transaction whose top Via had
    ``branch`` and ``sent_by``?

    The branch must carry the magic cookie and be equal; the sent-by hosts compare without
    case and an absent port counts as the transport's default. When ``method`` (the method of
    the request that created the transaction) is given it must match too, an ACK matching an
    INVITE. Returns False for an RFC 2543 branch (those use the §17.2.3 fallback rules).
    Raises SipParseError when the request's top Via is missing or malformed.
    """
    if not branch.startswith(MAGIC_COOKIE):
        return False
    via = request.via
    if via.branch != branch:
        return False
    if method is not None and not _method_matches(request.method, method):
        return False
    host, port = via.sent_by
    other_host, other_port = sent_by
    if host.lower() != other_host.lower():
        return False
    default = _default_port(via.transport)
    return (port or default) == (other_port or default)


def _mac(uniq: str, token: str, key: bytes) -> str:
    return hashlib.blake2b(
        f"{uniq}.{token}".encode("ascii"),
        digest_size=_MAC_BYTES,
        key=key,
        person=_MAC_PERSON,
    ).hexdigest()


def make_branch(token: str, digest_input: bytes, secret: bytes) -> str:
    """A branch carrying ``token``, signed with ``secret``.

    ``digest_input`` makes the branch unique per transaction (e.g. from
    :func:`branch_digest_input`); equal inputs give equal branches. ``token`` is 1 to
    :data:`MAX_TOKEN_LENGTH` token characters other than ``.``. Raises ValueError for a bad
    token or an empty secret (an unkeyed MAC could be forged).
    """
    if not secret:
        raise ValueError("make_branch needs a non-empty secret")
    if not token or len(token) > MAX_TOKEN_LENGTH or token.strip(_TOKEN_PAYLOAD_CHARS):
        raise ValueError(f"invalid branch token {token!r}")
    key = _key(secret)
    uniq = hashlib.blake2b(digest_input, digest_size=_UNIQ_BYTES, key=key).hexdigest()
    return f"{MAGIC_COOKIE}{uniq}.{token}.{_mac(uniq, token, key)}"


def read_branch_token(branch: str | None, secret: bytes) -> str | None:
    """The token :func:`make_branch` put in ``branch``, or None when ``branch`` was not made
    by it with this ``secret`` (absent, foreign, malformed or tampered). Never raises for any
    branch value; raises ValueError for an empty secret."""
    if not secret:
        raise ValueError("read_branch_token needs a non-empty secret")
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return None
    parts = branch[_COOKIE_LEN:].split(".")
    if len(parts) != 3:
        return None
    uniq, token, mac = parts
    if (
        len(uniq) != 2 * _UNIQ_BYTES
        or len(mac) != 2 * _MAC_BYTES
        or uniq.strip(_HEX)
        or mac.strip(_HEX)  # also keeps compare_digest on ASCII
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or token.strip(_TOKEN_PAYLOAD_CHARS)
    ):
        return None
    if not hmac.compare_digest(mac, _mac(uniq, token, _key(secret))):
        return None
    return token
