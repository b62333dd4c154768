"""The proxy's routing decisions on one request, pure: checks, Route processing, next hop.

Theory of operation
-------------------
§16.3: a request with Max-Forwards 0 is answered 483, a looped one 482. Loop detection (§16.3
step 4, §16.6 step 8), on every forwarded request, routed ones too: our branches are signed
(:func:`~sipha.sip.branch.make_branch`) and carry a hash of the request as received
(Request-URI, remaining Route set, From tag, To tag, Call-ID, CSeq number); a request arriving
with a Via of ours carrying the same hash has looped (a spiral changes the Request-URI or the
Route set, hence the hash).

Requests inside a dialog carry our Record-Route as Route: we remove the Route values naming us
(§16.4) and forward to the next Route or, with none left, to the Request-URI (§16.6 step 7).
Nothing per dialog is remembered, so any server of the cluster can route them: our
Record-Route carries a dialog token signed with the cluster key (:mod:`sipha.server.policy`),
which is what lets the node forward them without asking for credentials. A Request-URI that a
strict router filled with our Record-Route is replaced by the last Route (§16.4).
"""

from __future__ import annotations

import hashlib

from sipha.server.local import HopSpec, Local, hop_spec
from sipha.server.policy import dialog_token_valid
from sipha.sip.address import parse_name_addr
from sipha.sip.branch import read_branch_token
from sipha.sip.message import Request
from sipha.sip.uri import SipUri

__all__ = ["Routing", "loop_hash"]


def loop_hash(request: Request) -> str:
    """The loop-detection part of our branch (RFC 3261 §16.6 step 8): 10 hex characters.

    Over the request as received once our own Route values are gone: a request that comes
    back unchanged has looped; one with another Request-URI or Route set is a spiral."""
    routes = "\x00".join(request.get_all("route"))
    text = (
        f"{request.ruri}\x00{request.from_tag or ''}\x00{request.to_tag or ''}\x00"
        f"{request.call_id}\x00{request.cseq.seq}\x00{routes}"
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=5).hexdigest()


class Routing:
    """Route processing for the addresses in ``local``, branches signed with ``secret``."""

    def __init__(self, local: Local, secret: bytes) -> None:
        self.local = local
        self.secret = secret
        self._markers = tuple(f"{h}:{p}" for h, p in local.by_transport.values())

    def check(self, request: Request) -> int | None:
        """483 or 482 when the request must not be forwarded (§16.3), else None."""
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            return 483
        if self.looped(request):
            return 482
        return None

    def looped(self, request: Request) -> bool:
        """A Via of ours carries this request's loop hash: it came back unchanged."""
        vias = request.get_all("via")
        if not any(m in v for v in vias for m in self._markers):
            return False  # the common case: none of our Vias, nothing to hash
        mark = loop_hash(request)
        for via in request.vias:
            if (
                self.local.sent_by_is_me(*via.sent_by)
                and read_branch_token(via.branch, self.secret) == mark
            ):
                return True
        return False

    def strip_own_routes(self, request: Request) -> bool:
        """Remove the Route values naming us from the top (§16.4), after undoing a strict
        router's Request-URI; True when one of them carried a valid dialog token.

        Raises SipParseError for a malformed Route or Request-URI.
        """
        verified = False
        uri = request.uri
        if isinstance(uri, SipUri) and uri.lr and self.local.is_me(uri) and request.has("route"):
            # §16.4: the Request-URI holds our Record-Route (a strict router before us): the
            # real target is the last Route value.
            verified = dialog_token_valid(self.secret, request, uri)
            routes = request.get_all("route")
            request.remove_header("route")
            for value in routes[:-1]:
                request.add_header("Route", value)
            request.set_uri(str(parse_name_addr(routes[-1]).uri))
        while request.has("route"):
            top = request.routes[0].uri
            if not self.local.is_own_route(top):
                break
            if isinstance(top, SipUri) and dialog_token_valid(self.secret, request, top):
                verified = True
            request.pop_route()
        return verified

    def next_hop_spec(self, request: Request) -> HopSpec | None:
        """What to resolve for the next hop: the first Route if any, else the Request-URI
        (§16.6 step 7); None when that is us (deliver to the user) or not a SIP URI."""
        if request.has("route"):
            return hop_spec(request.routes[0].uri)
        uri = request.uri
        if self.local.is_me(uri):
            return None
        return hop_spec(uri)

    def is_for_me(self, request: Request) -> bool:
        """No Route left and a Request-URI naming us: the request is for a local user."""
        return not request.has("route") and self.local.is_me(request.uri)
