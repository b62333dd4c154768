"""Where a proxied request forks to, and the copy each branch sends (RFC 3261 §16.5, §16.6).

Pure functions for :mod:`sipha.server.proxy_core`: the location service's bindings become
*targets* (a Request-URI, the next hop, the Path to put in front), those whose next hop is a
host name are left to resolve; each target then gets its own copy of the request: its
Request-URI, Max-Forwards decremented, the Path as Route set (RFC 3327 §5), our Record-Route
(INVITE, §16.6 step 4; twice when the transport changes, RFC 5658) and our Via, whose branch
is signed and carries the loop mark (§16.6 step 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from sipha.server.local import HopSpec, Local, hop_spec
from sipha.server.policy import FTAG_PARAM, TOKEN_PARAM, dialog_token
from sipha.server.registrar import contact_uri_of
from sipha.server.routing import loop_hash
from sipha.sip.address import parse_name_addr
from sipha.sip.branch import make_branch
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request
from sipha.sip.uri import parse_uri
from sipha.store import Binding
from sipha.transport import Peer

__all__ = ["CachedHop", "Target", "Unresolved", "branch_requests", "targets_of"]

Target = tuple[str | None, Peer, tuple[str, ...]]  # Request-URI (None: unchanged), hop, Path
Unresolved = tuple[str | None, HopSpec, tuple[str, ...]]
CachedHop = Callable[[HopSpec, str], Peer | None]


def targets_of(bindings: Sequence[Binding], transport: str, cached_hop: CachedHop
               ) -> tuple[list[Target], list[Unresolved]]:
    """The targets of ``bindings`` whose next hop is known at once, and those to resolve.
    Bindings whose contact or Path cannot be routed by are left out."""
    targets: list[Target] = []
    unresolved: list[Unresolved] = []
    for b in bindings:
        contact = contact_uri_of(b.raw)
        try:
            # RFC 3327: a binding with a Path is reached through it, its first entry first.
            first = parse_name_addr(b.path[0]).uri if b.path else parse_uri(contact)
        except SipParseError:
            continue
        spec = hop_spec(first)
        if spec is None:
            continue
        hop = cached_hop(spec, transport)
        if hop is not None:
            targets.append((contact, hop, b.path))
        else:
            unresolved.append((contact, spec, b.path))
    return targets, unresolved


def branch_requests(request: Request, targets: Sequence[Target], *, in_transport: str,
                    local: Local, secret: bytes, record_route: bool
                    ) -> Iterator[tuple[Request, Peer]]:
    """Each target's copy of ``request`` (as received, our Routes spent) and its next hop."""
    mark = loop_hash(request)
    rr = record_route and request.method == "INVITE" and request.to_tag is None
    rr_params = ""
    if rr and request.from_tag:
        # The dialog token (policy.py): later requests of this dialog present it in their
        # Route and are forwarded without credentials, by whichever server gets them.
        ftag = request.from_tag
        token = dialog_token(secret, request.call_id, ftag)
        rr_params = f";{FTAG_PARAM}={ftag};{TOKEN_PARAM}={token}"
    for ruri, hop, path in targets:
        fwd = request.copy()
        if ruri is not None:
            fwd.set_uri(ruri)
        fwd.decrement_max_forwards()
        for value in reversed(path):
            fwd.insert_header("Route", value)  # RFC 3327 §5: the Path as Route set
        if rr:
            # §16.6 step 4, double Record-Route when the transport changes, so each side
            # reaches us over its own transport.
            if hop.transport != in_transport:
                fwd.add_record_route(local.record_route(in_transport, rr_params))
            fwd.add_record_route(local.record_route(hop.transport, rr_params))
        # Signed: the loop mark cannot be forged, and a stray response must show one of
        # our branches to be forwarded (Proxy.forward_stray).
        branch_id = make_branch(mark, local.unique().encode(), secret)
        fwd.push_via(local.via(hop.transport, branch_id))
        yield fwd, hop
