"""Stateless routing: requests inside a dialog, and responses back along their Via.

*In-dialog requests* carrying our Record-Route as their Route go to the server the route names
(no lookup); coming from a server, they go on by their next Route or Request-URI (towards the
caller, RFC 3261 §16.12). Without a Route (SIPp's ``uac``) the Call-ID affinity table names the
server. A BYE ends the dialog's accounting; the entry lingers ``linger`` seconds for
retransmissions. The branch we add is derived from the request's transaction key and the
server (``#0``, as a transaction's first attempt), so a retransmission routed here after its
transaction left the table reaches the same server with the same branch.

*Responses* carry our Via on top: the router verified its signature and popped it; they go by
the next Via (RFC 3261 §18.2.2 with received/rport, RFC 3581). An INVITE's 1xx/2xx with no open
transaction teaches us its dialog (`learn_dialog`): a takeover happened after the old active
forwarded the INVITE but before it replicated it.
"""

from __future__ import annotations

from sipha.sip import Request, Response
from sipha.sip.branch import branch_digest_input, make_branch
from sipha.sip.errors import SipParseError
from sipha.sip.uri import SipUri, parse_uri
from sipha.transport import Peer, response_destination
from sipha.transport.resolver import ip_literal

from . import messages
from .context import DIALOG_CREATING, RouterSettings, RouterStats, Send, Stamp, prepare, reply
from .edge import Edge
from .health import HealthState
from .registry import ServerRegistry
from .state import DialogPhase, Server

__all__ = ["DialogRouting"]

_MOVED_MAX = 4096


class DialogRouting:
    """In-dialog requests and responses (see the module docstring)."""

    __slots__ = ("_forked_byes", "_moved", "_peers", "edge", "registry", "settings", "stamp",
                 "state", "stats")

    def __init__(
        self,
        registry: ServerRegistry,
        stamp: Stamp,
        settings: RouterSettings,
        stats: RouterStats,
        edge: Edge,
    ) -> None:
        self.registry = registry
        self.edge = edge
        self.state = registry.state
        self.stamp = stamp
        self.settings = settings
        self.stats = stats
        self._peers: dict[tuple[str, str, int], Peer] = {}
        # Call-ID -> the server a rescued dialog left (the newest _MOVED_MAX): its 2xx
        # retransmissions are the same answer, whose ACK went to the rescuer, not a ghost.
        self._moved: dict[str, Server] = {}
        self._forked_byes: dict[str, None] = {}  # Call-IDs, the newest _MOVED_MAX

    def in_dialog(self, msg: Request, source: Peer, now: float) -> list[Send]:
        """Route a request with a To tag, an ACK/CANCEL-less stray, or a request a server
        sends to a phone through our Path. Raises SipParseError for a Route or Request-URI
        we cannot route to, or Max-Forwards exhausted."""
        registry = self.registry
        from_server = registry.by_addr.get((source.host, source.port))
        target: Server | None = None
        peer: Peer | None = None
        also: Server | None = None  # a second server for a retransmitted BYE (see below)
        route = msg.get("route")
        own = self.stamp.own_route(route)
        if own is not None:
            msg.pop_route()
            route = msg.get("route")
            if self.stamp.own_route(route) == own:
                msg.pop_route()  # the second of a double Record-Route (RFC 5658)
                route = msg.get("route")
            if from_server is None:
                target = registry.by_token(own.token)
        if target is None and from_server is not None:
            # Towards a phone: over its flow when our Route names one (edge.py), else the
            # next Route, else the Request-URI (RFC 3261 §16.12).
            target = from_server
            if own is not None and own.flow:
                edge = self.edge
                peer = edge.flow_peer(own.flow)
                if peer is None and not own.token:
                    # A Path's flow is the binding itself: gone means unreachable, now.
                    self.stats.flow_failed += 1
                    if msg.method == "ACK":
                        return []
                    return [reply(msg, 430, source, self.stats)]
                if peer is None:
                    peer = edge.recovered_flow(msg)
                    if peer is None and edge.stale_target(own.flow, msg):
                        self.stats.flow_failed += 1
                        return []  # retransmitted until the phone is back (edge.py)
            if peer is None:
                peer = self._uri_peer(_first_uri(route) if route else msg.ruri)
            elif own is not None and not own.token and msg.method in DIALOG_CREATING and (
                msg.to_tag is None
            ):
                self.edge.record_route_to_phone(msg, own, from_server, peer)
        if target is None:
            d = self.state.dialogs.get(msg.call_id)
            if d is not None:
                target = d.server
            else:
                target = registry.pick(msg, source, now)
                if target is None:
                    self.stats.no_server += 1
                    return [] if msg.method == "ACK" else [reply(msg, 503, source, self.stats)]
        if (
            peer is None
            and target.health.state is HealthState.INACTIVE
            and self.settings.dialog_aware
        ):
            # The server holding this dialog is down. Any other server can take the call's
            # in-dialog requests (they route statelessly, and answered calls are in the shared
            # store), so the BYE of a call set up on a dead server still ends with a 200.
            # A suspect, draining or disabled server keeps its dialogs: it may well be alive,
            # and only it knows a call whose ACK has not reached it yet.
            alternative = registry.pick(msg, source, now, frozenset((target.id,)))
            d = self.state.dialogs.get(msg.call_id)
            if alternative is not None and msg.method == "BYE" and d is not None and (
                d.phase is DialogPhase.IDLE
            ):
                # A retransmitted BYE: the first went to this server before it was called
                # down. If it got there (a lossy link: its 200 was lost, and two lost probes
                # made it "down"), only its transaction can answer, the call being gone from
                # the store; if it did not (the server really is cut off), another must.
                # Send it to both; the other's 481 (call gone) is dropped on its way back.
                also = target
                self._forked_byes.pop(msg.call_id, None)
                self._forked_byes[msg.call_id] = None
                if len(self._forked_byes) > _MOVED_MAX:
                    del self._forked_byes[next(iter(self._forked_byes))]
            if alternative is not None:
                self.stats.dialogs_rescued += 1
                self._moved.pop(msg.call_id, None)
                self._moved[msg.call_id] = target
                if len(self._moved) > _MOVED_MAX:
                    del self._moved[next(iter(self._moved))]
                self.state.dialog_move(msg.call_id, alternative, now)
                # The dead server's Record-Route, next in the Route set, now names the
                # alternative (a proxied call between two phones).
                self.edge.reroute(msg, target, alternative)
                target = alternative
        if msg.method == "BYE":
            self.state.dialog_idle(msg.call_id, now, self.settings.linger)
        token = target.token
        if peer is None:
            peer = target.peer
        else:
            token = f"o{token}"  # towards a phone: its answers go back statelessly
        key = branch_digest_input(msg)
        prepare(msg, source)
        branch = make_branch(token, key + b"#0", self.stamp.secret)
        msg.push_via(self.stamp.via(peer.transport, branch))
        self.stats.forwarded_requests += 1
        sends = [Send(bytes(msg), peer)]
        if also is not None:
            msg.pop_via()
            branch = make_branch(also.token, key + b"#0", self.stamp.secret)
            msg.push_via(self.stamp.via(also.peer.transport, branch))
            sends.append(Send(bytes(msg), also.peer))
        return sends

    def bye_forked(self, call_id: str) -> bool:
        """Whether a retransmitted BYE of this call went to two servers (see `in_dialog`)."""
        return call_id in self._forked_byes

    def _uri_peer(self, text: str) -> Peer:
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise SipParseError(f"cannot route to {text!r}", status=416)
        host, port = uri.host_port
        host = uri.maddr or host
        if ip_literal(host) is None:
            # A name (a Contact without an address): resolving it here would block the loop,
            # and nobody behind a name is reachable through a dispatcher without DNS. 503.
            raise SipParseError(f"next hop {host[:60]!r} is not an address", status=503)
        transport = "tls" if uri.scheme == "sips" else (uri.transport or "udp").lower()
        if transport not in ("udp", "tcp", "tls"):
            transport = "udp"
        return self._peer(transport, host, port or (5061 if transport == "tls" else 5060))

    def _peer(self, transport: str, host: str, port: int) -> Peer:
        k = (transport, host, port)
        peer = self._peers.get(k)
        if peer is None:
            if len(self._peers) > 10_000:
                self._peers.clear()
            peer = self._peers[k] = Peer(transport, host, port)
        return peer

    # -- responses --------------------------------------------------------------------------
    def upstream(self, msg: Response) -> Send:
        """The response (our Via popped) to the element of its next Via."""
        via = msg.via
        rport = via.params.get("rport")
        host = via.params.get("received") or via.host
        port = int(rport) if rport else via.port or 5060
        transport = via.transport.lower()
        if transport not in ("udp", "tcp", "tls") or via.maddr is not None:
            peer = response_destination(msg)
        else:
            peer = self._peer(transport, host.strip("[]"), port)
        self.stats.forwarded_responses += 1
        return Send(bytes(msg), peer)

    def learn_dialog(self, msg: Response, token: str, now: float) -> list[Send]:
        """An INVITE's 1xx/2xx with no open transaction here. Our signed branch names the
        server, so the affinity is learnt from the response: the caller's ACK and BYE (no
        Route, SIPp's ``uac``) reach that server, and the server's call counts stay right. A
        2xx from another server than the dialog's is a ghost (ACKed and BYEd here)."""
        server = self.registry.by_token(token)
        if server is None:
            return []
        st = self.state
        d = st.dialogs.get(msg.call_id)
        if msg.status >= 200:
            if d is not None and d.server is not server:
                if self._moved.get(msg.call_id) is server:
                    # The answer of a dialog we moved off this server (a probe called it down
                    # while it lived: a lossy link): the caller's ACK went to the rescuer, so
                    # it retransmits. ACK it; a BYE would end the caller's live call.
                    return self.end_ghost(msg, server, bye=False)
                return self.end_ghost(msg, server)  # the dialog went to its last attempt
            if d is not None and d.phase is DialogPhase.IDLE and msg.status < 300:
                # Retransmitted after the caller's BYE went by (its ACKs were lost): the
                # caller had the 2xx already, and one reaching it now, past its BYE, aborts
                # a SIPp call. ACK it here, so the server stops retransmitting.
                return self.end_ghost(msg, server, bye=False)
            if d is None or d.phase is DialogPhase.EARLY:
                st.dialog_confirmed(msg.call_id, server, now, self.settings.dialog_timeout)
            # CONFIRMED: a retransmitted 2xx; IDLE: one retransmitted after the BYE went by
            # (the caller's ACK was late): neither is a new call.
        elif msg.status > 100 and d is None:
            st.dialog_early(msg.call_id, server, now, self.settings.invite_timeout)
        return []

    def end_ghost(self, msg: Response, server: Server, *, bye: bool = True) -> list[Send]:
        """ACK and BYE a 2xx nobody wants (RFC 3261 §13.2.2.4); our own branches, token g.
        ``bye=False``: only the ACK (the call itself lives on)."""
        secret = self.stamp.secret
        seed = f"{msg.call_id}\x00{msg.cseq.seq}".encode("utf-8", "surrogateescape")
        t = server.peer.transport
        ack_via = self.stamp.via(t, make_branch(f"g{server.token}", seed + b"a", secret))
        bye_via = self.stamp.via(t, make_branch(f"g{server.token}", seed + b"b", secret))
        try:
            ack, bye_msg = messages.end_ghost_dialog(msg, ack_via, bye_via)
        except ValueError:
            return []
        if not bye:
            return [Send(ack, server.peer)]
        self.stats.ghost_calls_ended += 1
        return [Send(ack, server.peer), Send(bye_msg, server.peer)]


def _first_uri(route: str) -> str:
    value = route.split(",", 1)[0].strip()
    if value.startswith("<"):
        return value[1 : value.index(">")]
    return value.split(";", 1)[0]
