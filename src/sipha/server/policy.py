"""Who may make this server forward a request: the authorization policy (no open relay).

Theory of operation
-------------------
A proxy on a public address is an open relay unless every forwarding decision names who
authorised it. Kamailio's default configuration is the reference: requests from trusted peers
(the ``permissions`` module) and requests inside a dialog the proxy record-routed (``loose_route``)
pass; everything else must come from an authenticated local user, and a relay to a foreign host
by anybody else is refused with 403. :func:`decide` is that rule as a pure table over

* :class:`Source`: ``TRUSTED`` (a configured trusted peer), ``CLUSTER`` (a node of the cluster
  speaking for itself: a dispatcher's probe, ourselves) or ``OUTSIDE``. A request relayed by a
  cluster edge (a dispatcher, known by its alias address) is judged by the client the edge
  stamped in the Via below its own (:func:`originating_addresses`): the dispatcher forwards
  everybody's requests, so trusting it would make the whole cluster an open relay;
* :class:`Target`: ``LOCAL`` (a local user's registered contacts) or ``FOREIGN`` (any other
  host: a pre-loaded Route, the rest of a route set, a Request-URI that is not us);
* whether a Route we removed carried a valid dialog token (:func:`dialog_token`: our
  Record-Route is signed with the cluster key over the Call-ID and the caller's tag, so only a
  dialog that went through a node of the cluster can present it);
* whether digest authentication is enabled for the method (``auth`` mode and
  ``auth_methods``), and whether the From claims a local user.

The answer is a :class:`Decision`: ``ALLOW`` with the cause, ``CHALLENGE`` (407: allowed once
the From user authenticates) or ``FORBID`` (403). ACK cannot be challenged (RFC 3261 §22.1):
the node drops an ACK that is not allowed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sipha.sip.message import Request
from sipha.sip.uri import SipUri

__all__ = [
    "Cause",
    "Decision",
    "Source",
    "Target",
    "TrustedPeers",
    "Verdict",
    "decide",
    "dialog_token",
    "dialog_token_valid",
    "originating_addresses",
]

_TOKEN_PERSON = b"sipha-rr-token"
TOKEN_PARAM = "sphd"  # our Record-Route's dialog token parameter
FTAG_PARAM = "ftag"  # the caller's From tag it was signed with (Kamailio's rr name)


class Source(enum.Enum):
    TRUSTED = "trusted"
    CLUSTER = "cluster"
    OUTSIDE = "outside"


class Target(enum.Enum):
    LOCAL = "local"
    FOREIGN = "foreign"


class Verdict(enum.Enum):
    ALLOW = "allow"
    CHALLENGE = "challenge"
    FORBID = "forbid"


class Cause(enum.Enum):
    """Why: every forwarding decision says who authorised it."""

    TRUSTED_PEER = "trusted_peer"
    CLUSTER = "cluster"
    DIALOG = "dialog"  # a Route of ours with a valid dialog token
    AUTH_OFF = "auth_off"  # delivery to a local user while authentication is off
    AUTH_REQUIRED = "auth_required"
    RELAY_FORBIDDEN = "relay_forbidden"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    cause: Cause


def decide(
    *, source: Source, target: Target, dialog: bool, auth: bool, from_local: bool
) -> Decision:
    """The policy table (module docstring). Pure; defined for every combination.

    ============  ==========  =====================  ===============================
    source        dialog      target LOCAL           target FOREIGN
    ============  ==========  =====================  ===============================
    TRUSTED       any         ALLOW trusted_peer     ALLOW trusted_peer
    CLUSTER       any         ALLOW cluster          ALLOW cluster
    OUTSIDE       verified    ALLOW dialog           ALLOW dialog
    OUTSIDE       no          auth: CHALLENGE,       auth and from_local: CHALLENGE,
                              else ALLOW auth_off    else FORBID relay_forbidden
    ============  ==========  =====================  ===============================
    """
    if source is Source.TRUSTED:
        return Decision(Verdict.ALLOW, Cause.TRUSTED_PEER)
    if source is Source.CLUSTER:
        return Decision(Verdict.ALLOW, Cause.CLUSTER)
    if dialog:
        return Decision(Verdict.ALLOW, Cause.DIALOG)
    if target is Target.LOCAL:
        if auth:
            return Decision(Verdict.CHALLENGE, Cause.AUTH_REQUIRED)
        return Decision(Verdict.ALLOW, Cause.AUTH_OFF)
    if auth and from_local:
        return Decision(Verdict.CHALLENGE, Cause.AUTH_REQUIRED)
    return Decision(Verdict.FORBID, Cause.RELAY_FORBIDDEN)


class TrustedPeers:
    """Addresses (IP or IP/prefix) whose requests are forwarded without digest, like
    Kamailio's ``permissions`` trusted table. Raises ValueError for a bad entry."""

    __slots__ = ("_networks",)

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = tuple(
            ipaddress.ip_network(e.strip().strip("[]"), strict=False) for e in entries
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False  # a name is never trusted: anyone can make one resolve anywhere
        return any(ip in net for net in self._networks)


def originating_addresses(request: Request) -> tuple[str, ...] | None:
    """The addresses of the client a cluster edge relayed ``request`` for: the sent-by host
    and ``received`` of the second Via (the edge stamps ``received`` whenever the packet's
    source differs from sent-by, RFC 3261 §18.2.1), or None when there is no second Via (the
    edge sent the request itself). Both must be trusted for the client to be: a client
    cannot choose the ``received`` the edge writes, nor hide its source behind a sent-by.

    Raises SipParseError for a malformed Via.
    """
    vias = request.vias
    if len(vias) < 2:
        return None
    client = vias[1]
    received = client.received
    return (client.host,) if received is None else (client.host, received)


def dialog_token(secret: bytes, call_id: str, ftag: str) -> str:
    """The token our Record-Route carries: a keyed MAC of the Call-ID and the caller's tag
    (16 hex characters). Only a node holding the cluster key can make one."""
    key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
    return hashlib.blake2b(
        f"{call_id}\x00{ftag}".encode("utf-8", "surrogateescape"),
        digest_size=8,
        key=key,
        person=_TOKEN_PERSON,
    ).hexdigest()


def dialog_token_valid(secret: bytes, request: Request, route: SipUri) -> bool:
    """Does ``route`` (a Route value of ours) carry a valid token for ``request``'s dialog?
    The token was made with the caller's tag, which is the From tag of the caller's requests
    and the To tag of the callee's. Never raises for a well-formed request."""
    token = route.params.get(TOKEN_PARAM)
    ftag = route.params.get(FTAG_PARAM)
    if not token or not ftag or len(token) != 16 or not token.isascii():
        return False
    if ftag not in (request.from_tag, request.to_tag):
        return False
    return hmac.compare_digest(token, dialog_token(secret, request.call_id, ftag))
