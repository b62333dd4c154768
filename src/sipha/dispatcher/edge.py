"""The dispatcher as the phones' edge proxy: Path, flows, Route clean-up, Flow-Timer.

Theory of operation
-------------------
Phones point their outbound proxy at the service address; many sit behind NAT, so the Contact
they register is an address nobody outside can reach. The dispatcher is the element they *can*
reach, so it stays on the path of every request towards them (RFC 3327, RFC 5626 §5):

* A phone's REGISTER gets our **Path**, ``<sip:ds-<flow>@service;lr[;ob]>``, naming the
  service address (either dispatcher of the HA pair answers there) and carrying the phone's
  flow token (`flows`). The registrar stores it with the binding and sends requests for the
  user to it, the Contact left as the Request-URI (RFC 3327 §5).
* Such a request comes back from a server with our Path as its top Route: we remove it and
  send the request over the flow: for UDP to the source address the REGISTER came from,
  leaving from the service address (the NAT's mapping lets it in); for TCP and TLS over the
  phone's own connection. A stream flow whose connection is gone is answered **430 Flow
  Failed** at once (RFC 5626 §5.3), so the caller hears that the phone is unreachable now,
  not after Timer B, and the phone's flow recovery re-registers over a new one.
* Dialog-forming requests get our **Record-Route** with the same flow token, on both sides
  of the call (`context.Stamp.record_route` for the caller, `record_route_to_phone` for the
  callee): mid-dialog requests in either direction come through us and reach the phone over
  its flow, after a takeover too (the token names the service address, not a node). A dead
  stream flow inside a dialog is replaced by the phone's new connection once it registered
  over it (the registrar's 2xx names its Contact, `learn_flow`); until then the request goes
  to the remote target (the Request-URI), which a phone that is not behind NAT accepts a new
  connection on, or, when that is the dead connection's own address, is dropped: the
  server's retransmissions try again once the phone is back.
* A phone's own pre-loaded Route naming us (its outbound proxy setting) is spent once it
  reaches us (RFC 3261 §16.4), as is a strict router's Request-URI holding our Record-Route.
* The 2xx of a REGISTER the registrar accepted with outbound (``Require: outbound``) gets a
  **Flow-Timer** (RFC 5626 §5.4): how often the phone sends its keepalives, STUN binding
  requests on UDP and CRLFCRLF on TCP, which the transport answers (`transport.stun`).

Only requests from our servers are sent over a flow: a stranger presenting a Path or
Record-Route of ours is routed to a server like any other request.
"""

from __future__ import annotations

import dataclasses

from sipha.sip import Request, Response
from sipha.sip.address import parse_name_addr
from sipha.sip.uri import SipUri
from sipha.transport import Peer

from .context import OwnRoute, RouterSettings, RouterStats, Stamp
from .flows import FlowView, read_flow_token, write_flow_token
from .state import Server

__all__ = ["ALWAYS_ALIVE", "Edge"]

_MAX_CACHED = 10_000


class _AlwaysAlive:
    def alive(self, peer: Peer) -> bool:
        return True


ALWAYS_ALIVE: FlowView = _AlwaysAlive()
"""A flow view for pure tests and nodes without stream transports."""


class Edge:
    """Path, flows and Route clean-up at the edge (see the module docstring)."""

    __slots__ = ("_read", "_recovered", "_tokens", "flows", "settings", "stamp", "stats")

    def __init__(
        self, stamp: Stamp, settings: RouterSettings, stats: RouterStats, flows: FlowView
    ) -> None:
        self.stamp = stamp
        self.settings = settings
        self.stats = stats
        self.flows = flows
        self._tokens: dict[Peer, str] = {}
        self._recovered: dict[tuple[str, str], Peer] = {}
        self._read: dict[str, Peer] = {}

    # -- flows ------------------------------------------------------------------------------
    def flow_of(self, source: Peer) -> str:
        """The flow token of the address a request came from (cached: phones repeat)."""
        token = self._tokens.get(source)
        if token is None:
            if len(self._tokens) >= _MAX_CACHED:
                self._tokens.clear()
            token = self._tokens[source] = write_flow_token(source, self.stamp.secret)
        return token

    def flow_peer(self, flow: str) -> Peer | None:
        """The flow a token of ours names, when it is usable now: a UDP flow always, a
        stream flow while its connection is open. None otherwise (forged, or gone)."""
        peer = self._read.get(flow)
        if peer is None:
            peer = read_flow_token(flow, self.stamp.secret)
            if peer is None:
                return None
            if len(self._read) >= _MAX_CACHED:
                self._read.clear()
            self._read[flow] = peer  # verified once: every message of a call carries it
        if peer.transport != "udp" and not self.flows.alive(peer):
            return None
        return peer

    def learn_flow(self, msg: Response, flow: Peer) -> None:
        """A registrar accepted a REGISTER that came over the stream ``flow`` (its 2xx goes
        back over it): remember it as the current flow of each Contact's user@host, so the
        dialogs of a phone whose old connection died (a takeover) find its new one."""
        if flow.transport == "udp":
            return
        contacts = msg.contacts
        if contacts == "*":
            return
        for contact in contacts:
            uri = contact.uri
            if isinstance(uri, SipUri) and uri.user:
                if len(self._recovered) >= _MAX_CACHED:
                    self._recovered.clear()
                self._recovered[(uri.user, uri.host.strip("[]").lower())] = flow

    def recovered_flow(self, msg: Request) -> Peer | None:
        """The phone's current stream flow, learnt from its last registration, for a request
        whose Request-URI (the phone's Contact) names it by user@host; None if unknown or
        closed too."""
        uri = msg.uri
        if not isinstance(uri, SipUri) or not uri.user:
            return None
        peer = self._recovered.get((uri.user, uri.host.strip("[]").lower()))
        if peer is None or not self.flows.alive(peer):
            return None
        return peer

    def stale_target(self, flow: str, msg: Request) -> bool:
        """Is the Request-URI the dead flow's own address (a phone whose Contact names its
        connection's port)? Connecting there is pointless: the phone listens on no such
        port."""
        peer = read_flow_token(flow, self.stamp.secret)
        uri = msg.uri
        return (
            peer is not None and peer.transport != "udp" and isinstance(uri, SipUri)
            and uri.host.strip("[]") == peer.host and uri.port == peer.port
        )

    # -- requests from phones -----------------------------------------------------------------
    def strip_own_routes(self, msg: Request) -> None:
        """RFC 3261 §16.4: undo a strict router's Request-URI holding our Record-Route, then
        remove the top Route values that name us but are not ours to read (a phone's outbound
        proxy, ``<sip:service;lr>``). Raises SipParseError for a malformed Route."""
        route = msg.get("route")
        if route is None:
            return
        if msg.ruri.startswith("sip:ds") and self.stamp.own_route(f"<{msg.ruri}>") is not None:
            # A strict router put our Record-Route in the Request-URI: the real target is the
            # last Route value; ours goes back on top for `routing` to read.
            routes = [str(r) for r in msg.routes]
            msg.remove_header("route")
            msg.add_header("Route", f"<{msg.ruri}>")
            for value in routes[:-1]:
                msg.add_header("Route", value)
            msg.set_uri(str(parse_name_addr(routes[-1]).uri))
            return
        while route is not None and not route.startswith("<sip:ds"):
            uri = msg.routes[0].uri
            if not isinstance(uri, SipUri) or uri.user or not self.stamp.names_us(
                uri.maddr or uri.host, uri.port
            ):
                return
            msg.pop_route()
            route = msg.get("route")

    def add_path(self, msg: Request, source: Peer, server_transport: str) -> None:
        """Our Path on a phone's REGISTER (RFC 3327 §5.2), ``ob`` when its Contact asks for
        outbound (a ``reg-id``, RFC 5626 §5.1)."""
        outbound = any("reg-id" in c.lower() for c in msg.get_all("contact"))
        msg.insert_header(
            "Path", self.stamp.path(self.flow_of(source), server_transport, outbound)
        )
        self.stats.paths_added += 1

    def reroute(self, msg: Request, dead: Server, alternative: Server) -> None:
        """A dialog of a dead server moves to ``alternative``: the dead server's own
        Record-Route entries on top of the Route set now name the alternative, whose dialog
        token (signed with the key the servers share) it accepts as its own. Raises
        SipParseError for a malformed Route."""
        old = (dead.peer.host, dead.peer.port)
        routes = msg.get_all("route")
        moved: list[str] = []
        for value in routes:
            addr = parse_name_addr(value)
            uri = addr.uri
            if not isinstance(uri, SipUri) or (uri.host.strip("[]"), uri.port or 5060) != old:
                break
            uri = dataclasses.replace(uri, host=alternative.peer.host, port=alternative.peer.port)
            moved.append(str(dataclasses.replace(addr, uri=uri)))
        if moved:
            msg.remove_header("route")
            for value in moved + routes[len(moved):]:
                msg.add_header("Route", value)

    # -- requests from servers ----------------------------------------------------------------
    def record_route_to_phone(
        self, msg: Request, own: OwnRoute, server: Server, phone: Peer
    ) -> None:
        """Record-Route a dialog-forming request on its way to a phone: the entry the server
        reaches us by below, the phone's on top (RFC 5658 when the transports differ); both
        carry the phone's flow and the server's token."""
        stamp = self.stamp
        server_transport = server.peer.transport
        msg.add_record_route(stamp.route(server.token, server_transport, own.flow))
        if phone.transport != server_transport:
            msg.add_record_route(stamp.route(server.token, phone.transport, own.flow))

    # -- responses ----------------------------------------------------------------------------
    def flow_timer(self, msg: Response) -> None:
        """RFC 5626 §5.4: tell a phone registered with outbound how often to send keepalives."""
        seconds = self.settings.flow_timer
        if not seconds or not 200 <= msg.status < 300 or msg.cseq.method != "REGISTER":
            return
        require = msg.get("require")
        if require is not None and "outbound" in require.lower():
            msg.set_header("Flow-Timer", str(seconds))
