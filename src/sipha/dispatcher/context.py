"""What every part of the dispatcher's routing shares: its settings, its counters, the `Send`
action, and the Via/Record-Route values it writes (`Stamp`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from sipha.sip import Request, build_response
from sipha.transport import Peer

from .health import HealthSettings
from .probing import ProbeSettings

__all__ = ["DIALOG_CREATING", "OwnRoute", "RouterSettings", "RouterStats", "Send", "Stamp"]

# RFC 3261 §12.1 / RFC 6665 §4.1: requests that create dialogs get our Record-Route.
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


class Send(NamedTuple):
    """Action: send these bytes to that peer. A tuple, not a dataclass: one per message."""

    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True)
class RouterSettings:
    algorithm: str = "wlc"
    algorithm_options: Mapping[str, object] = field(default_factory=dict)
    failover_timeout: float = 0.2
    failover_codes: frozenset[int] = frozenset({503})
    max_attempts: int = 3
    dialog_aware: bool = True
    """False models IPVS behind ldirectord (the paper's profile): no failover inside the
    transaction, no passive health marking, no moving of a dead server's dialogs."""
    dialog_timeout: float = 7200.0
    """Seconds a confirmed dialog with no BYE stays accounted (a call's longest hold)."""
    linger: float = 32.0
    """Seconds affinity outlives a transaction or a BYE (64*T1) for retransmissions."""
    invite_timeout: float = 180.0
    """An INVITE with no final answer is given up after this (RFC 3261 Timer C)."""
    transaction_timeout: float = 32.0
    rate_limit: int = 0
    """Requests per `rate_window` per source IP; 0 = off. Servers are exempt."""
    rate_window: float = 1.0
    rate_limit_reply: bool = False
    """Answer 503 to refused requests instead of dropping them."""
    reflection_rate: float = 50.0
    """Repeats relayed per second to a caller host that never answered us (`amplification`);
    0 = no budget."""
    reflection_burst: float = 100.0
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    flow_timer: int = 25
    """Seconds between a phone's outbound keepalives (RFC 5626 §5.4 Flow-Timer, put on the 2xx
    of a REGISTER the registrar accepted with outbound); 0 leaves the phone's default."""


@dataclass(slots=True)
class RouterStats:
    """Counters exported by the API and /metrics."""

    requests: int = 0
    responses: int = 0
    forwarded_requests: int = 0
    forwarded_responses: int = 0
    failovers: int = 0
    cancels_sent: int = 0
    ghost_calls_ended: int = 0
    foreign_responses: int = 0
    local_replies: int = 0
    no_server: int = 0
    dialogs_rescued: int = 0
    rate_limited: int = 0
    paths_added: int = 0
    flow_failed: int = 0
    """Requests for a phone whose flow is gone (its connection closed): answered 430."""
    amplification_suppressed: int = 0
    """Repeats not relayed to a caller that never proved it exists (`amplification`)."""
    stale_responses_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Stamp:
    """The dispatcher's own header values: its Via (per transport) and its Record-Route."""

    __slots__ = ("_via_tcp", "_via_tls", "_via_udp", "adv", "host", "listen_ports", "port",
                 "rr_suffix", "secret")

    def __init__(self, advertise: tuple[str, int], secret: bytes) -> None:
        host, port = advertise
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 reference in Via, Record-Route and Path (RFC 3261 §25)
        self.adv = f"{host}:{port}"
        self.host = host
        self.secret = secret
        self.port = port
        self.rr_suffix = f"@{self.adv};lr>"
        self._via_udp = f"SIP/2.0/UDP {self.adv};branch="
        self._via_tcp = f"SIP/2.0/TCP {self.adv};branch="
        self._via_tls = f"SIP/2.0/TLS {self.adv};branch="
        # Our port per transport where it is not the advertised one (set by the service): a
        # Record-Route with ``;transport=tls`` names the TLS listener's port.
        self.listen_ports: dict[str, int] = {}

    def via(self, transport: str, branch: str) -> str:
        prefix = (self._via_udp if transport == "udp"
                  else self._via_tcp if transport == "tcp" else self._via_tls)
        return f"{prefix}{branch};rport"

    def route(self, token: str, transport: str = "udp", flow: str = "") -> str:
        """Our Record-Route naming the server with ``token`` (``<sip:ds<token>@us;lr>``),
        with ``;transport=`` and that listener's port for a stream transport, and the caller's
        flow token (``ds<token>-<flow>``, `flows`) when given."""
        user = f"ds{token}-{flow}" if flow else f"ds{token}"
        if transport == "udp":
            return f"<sip:{user}{self.rr_suffix}"
        port = self.listen_ports.get(transport, self.port)
        return f"<sip:{user}@{self.host}:{port};transport={transport};lr>"

    def path(self, flow: str, transport: str, outbound: bool) -> str:
        """Our Path (RFC 3327) for a REGISTER that came over ``flow``: the service address
        as the servers reach it over ``transport``, ``ob`` when the phone asked for outbound
        (RFC 5626 §5.1). No server token: any server may use it."""
        suffix = ";ob>" if outbound else ">"
        if transport == "udp":
            return f"<sip:ds-{flow}{self.rr_suffix[:-1]}{suffix}"
        port = self.listen_ports.get(transport, self.port)
        return f"<sip:ds-{flow}@{self.host}:{port};transport={transport};lr{suffix}"

    def record_route(self, msg: Request, token: str, server_transport: str, source: Peer,
                     flow: str = "") -> None:
        """RFC 3261 §16.6 step 4, with RFC 5658's double Record-Route when the transport
        changes: the server reaches us by the top one (its transport), the caller by the one
        below (its own, e.g. a phone over TLS in front of servers on UDP). Both carry the
        caller's flow, so requests from the server find it whichever entry they keep."""
        if source.transport != server_transport:
            msg.add_record_route(self.route(token, source.transport, flow))
        msg.add_record_route(self.route(token, server_transport, flow))

    def own_route(self, route: str | None) -> OwnRoute | None:
        """The server token and flow token of a top Route we wrote (Record-Route or Path, any
        transport), else None. A Path has an empty server token."""
        if route is None or not route.startswith("<sip:ds"):
            return None
        at, end = route.find("@"), route.find(">")
        if at < 0 or end < at:
            return None
        rest = route[at + 1 : end]
        hostport, _, params = rest.partition(";")
        if "lr" not in params.split(";") or (
            hostport != self.adv
            and hostport not in {f"{self.host}:{p}" for p in self.listen_ports.values()}
        ):
            return None
        token, _, flow = route[7:at].partition("-")
        return OwnRoute(token, flow)

    def names_us(self, host: str, port: int | None) -> bool:
        """Does host:port name this dispatcher (the advertised address, any listener's port
        on its host)? A port left out counts as 5060 (RFC 3261 §19.1.2)."""
        if host.strip("[]").lower() != self.host.strip("[]").lower():
            return False
        port = port or 5060
        return port == self.port or port in self.listen_ports.values()


class OwnRoute(NamedTuple):
    """What a Route we wrote carries: the server's token ("" in a Path) and the flow token
    ("" when the request came from a server)."""

    token: str
    flow: str


def prepare(msg: Request, source: Peer) -> None:
    """Stamp where a request really came from and take one hop off it. Raises SipParseError
    (status 483) when Max-Forwards is exhausted, before any state is touched."""
    # RFC 3261 §18.2.1 and RFC 3581: remember where the request really came from, so the
    # response finds its way back. Over TCP we always record it: the response must reuse
    # the connection, whose port is not the Via port.
    via = msg.via
    if source.transport != "udp":
        msg.set_top_via(str(via.with_params(received=source.host, rport=str(source.port))))
    elif via.host != source.host or via.has_rport:
        msg.set_via_received(source.host, source.port)
    msg.decrement_max_forwards()


def reply(msg: Request, status: int, source: Peer, stats: RouterStats) -> Send:
    """A response we write ourselves, statelessly."""
    stats.local_replies += 1
    return Send(bytes(build_response(msg, status)), source)
