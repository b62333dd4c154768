"""The dispatcher's decisions: where each message goes. Pure: messages, sources and ``now`` in,
`Send` actions out; no sockets, no clock.

Theory of operation
-------------------
*Initial requests* (no To tag) open a `Pending` transaction keyed by `branch_digest_input`
(equal for a request, its retransmissions, its CANCEL and the ACK of a non-2xx). The scheduler
picks a server (or the Call-ID's affinity entry names one, so the retry after a 401 lands on the
server that issued the nonce); we stamp ``received``/``rport`` on the client's Via, decrement
Max-Forwards, add a Record-Route ``<sip:ds<uid>@us;lr>`` for dialog-creating methods and push
our Via whose branch ``make_branch(<uid>, key#attempt)`` is signed: a forged response cannot
steer us, and retransmissions get the same branch, so the server matches them.

*Failover inside the transaction*: if the server sends nothing within ``failover_timeout``
(200 ms, below the 500 ms T1 retransmission) or answers a code in ``failover_codes`` (503), the
request is rebuilt from the bytes it arrived as and sent to the next server the scheduler picks
with the tried ones excluded (``max_attempts`` in all), and the first is marked failed at once
(passive health). We ACK the 503 we absorb (RFC 3261 §17.1.1.3). Late answers from a server we
gave up on are handled so no ghost call survives:

* the first 2xx from *any* attempt wins: it goes upstream and the dialog is accounted on that
  server; attempts that had answered provisionally are CANCELled (§9.1);
* a 2xx from another attempt after that is ACKed and BYEd by us (§13.2.2.4: the dispatcher is
  the only element that knows nobody wants it);
* a provisional from an abandoned attempt after the final answer is CANCELled; a non-2xx final
  from an abandoned attempt is ACKed and absorbed.

*Responses* carry our Via on top: we verify its signature, pop it and send the response by the
next Via (RFC 3261 §18.2.2 with received/rport, RFC 3581).

*In-dialog requests* carrying our Record-Route as their Route go to the server the route names
(no lookup); coming from a server, they go on by their next Route or Request-URI (towards the
caller). Without a Route (SIPp's ``uac``) the Call-ID affinity table names the server. A BYE
ends the dialog's accounting; the entry lingers ``linger`` seconds for retransmissions.

Load accounting (pending INVITEs + confirmed dialogs per server) lives in `DispatcherState`.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from sipha.sip import Request, Response, build_response, parse_message
from sipha.sip.branch import branch_digest_input, make_branch, read_branch_token
from sipha.sip.errors import SipParseError
from sipha.sip.uri import SipUri, parse_uri
from sipha.transport import Peer, response_destination

from . import messages
from .health import HealthChange, HealthInput, HealthSettings, HealthState
from .probing import Prober, ProbeSettings
from .protection import RateLimiter, counted
from .schedulers import Destination, RequestKey, Scheduler, create
from .servers import ServerSpec
from .state import DialogPhase, DispatcherState, Pending, Server, ServerStateSet

__all__ = ["Router", "RouterSettings", "RouterStats", "Send"]

# RFC 3261 §12.1 / RFC 6665 §4.1: requests that create dialogs get our Record-Route.
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
# Schedulers that read parsed From/To/Request-URI/credentials; the others get a cheap key.
_PARSED_KEY_ALGORITHMS = frozenset(
    {"hash-from", "hash-to", "hash-ruri", "hash-authuser", "dh", "mh"}
)
_AUTH_USER = re.compile(r'username\s*=\s*"([^"]*)"', re.IGNORECASE)


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
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    health: HealthSettings = field(default_factory=HealthSettings)


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

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Router:
    """Routing decisions for one dispatcher (see the module docstring)."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        advertise: tuple[str, int],
        secret: bytes,
        rng: random.Random | None = None,
        state: DispatcherState | None = None,
    ) -> None:
        self.settings = settings
        self.state = state or DispatcherState()
        self.secret = secret
        self.stats = RouterStats()
        self.changes: list[HealthChange] = []
        """Health changes since the service last drained them (it logs each)."""
        host, port = advertise
        self._adv = f"{host}:{port}"
        self._host = host
        self._rr_suffix = f"@{self._adv};lr>"
        self._via_udp = f"SIP/2.0/UDP {self._adv};branch="
        self._via_tcp = f"SIP/2.0/TCP {self._adv};branch="
        self._scheduler: Scheduler = create(
            settings.algorithm, [], rng=rng or random.Random(), options=settings.algorithm_options
        )
        self._parsed_key = settings.algorithm in _PARSED_KEY_ALGORITHMS
        self._by_addr: dict[tuple[str, int], Server] = {}
        self._by_dest: dict[int, Server] = {}
        self._failover_q: deque[tuple[float, Pending]] = deque()
        self._outbox: list[Send] = []  # sends decided outside a request, timer or response
        self._peers: dict[tuple[str, str, int], Peer] = {}
        self.prober = Prober(
            settings.probe,
            secret=secret,
            via_host=self._adv,
            from_uri=f"sip:dispatcher@{self._adv}",
        )
        self._probe_at = 0.0
        self._limiter = (
            RateLimiter(settings.rate_limit, settings.rate_window) if settings.rate_limit else None
        )

    # -- servers ----------------------------------------------------------------------------
    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def servers(self) -> list[Server]:
        return [s for s in self.state.servers.values() if not s.removed]

    def find(self, key: str) -> Server | None:
        """A server by uid (decimal), id, or HOST:PORT."""
        for s in self.servers():
            if key in (str(s.uid), s.id, s.uri, f"{s.peer.host}:{s.peer.port}"):
                return s
        return None

    def add_server(self, spec: ServerSpec) -> Server:
        """Add a server in its configured initial state (active unless a Kamailio flag said
        inactive or disabled). Raises ValueError for a duplicate id."""
        if any(s.id == spec.key() for s in self.servers()):
            raise ValueError(f"server {spec.key()!r} already exists")
        st = self.state
        uid = st.next_uid
        st.next_uid += 1
        dest = Destination(
            spec.key(), weight=spec.weight, priority=spec.priority, maxload=spec.maxload,
            usable=spec.state is HealthState.ACTIVE,
        )
        peer = Peer(spec.transport, spec.host, spec.port)
        server = Server(
            uid, dest, spec.uri, peer, probing=spec.probing, settings=self.settings.health,
            state=spec.state,
        )
        server.route = f"<sip:ds{server.token}{self._rr_suffix}"
        st.servers[uid] = server
        self._by_addr[(spec.host, spec.port)] = server
        self._by_dest[id(dest)] = server
        self._destinations_changed()
        self._probe_at = 0.0
        return server

    def remove_server(self, server: Server) -> None:
        """Stop using a server. Its dialogs keep routing to it until they end."""
        server.removed = True
        server.dest.usable = False
        self.prober.forget(server)
        if self._by_addr.get((server.peer.host, server.peer.port)) is server:
            del self._by_addr[(server.peer.host, server.peer.port)]
        if server.pending == 0 and server.dialogs == 0:
            self.state.servers.pop(server.uid, None)
        self._destinations_changed()

    def set_weight(self, server: Server, weight: int) -> None:
        if weight < 0:
            raise ValueError("weight must be >= 0")
        server.dest.weight = weight
        self._destinations_changed()

    def set_state(self, server: Server, state: HealthState, now: float, cause: str) -> None:
        event = {
            HealthState.ACTIVE: HealthInput.SET_ACTIVE,
            HealthState.INACTIVE: HealthInput.SET_INACTIVE,
            HealthState.DISABLED: HealthInput.SET_DISABLED,
            HealthState.DRAINING: HealthInput.SET_DRAINING,
        }[state]
        self._health(server, event, now, cause)
        self._probe_at = 0.0

    def adopt_replicated_health(self, now: float) -> None:
        """After an HA promotion: replicated health arrives as states only, so make the
        scheduler agree with them, probe the suspects at once, and give an unprobed suspect
        the hold that returns it (its holder's clock did not travel)."""
        for server in self.servers():
            usable = server.state is HealthState.ACTIVE and not server.removed
            if server.dest.usable != usable:
                server.dest.usable = usable
                self._scheduler.on_health_change(dest=server.dest, usable=usable)
            if server.state is HealthState.SUSPECT:
                if server.probing:
                    self.prober.probe_soon(server, now)
                elif server.health.hold_until is None:
                    server.health.hold_until = now + self.settings.health.suspect_hold
        self._probe_at = now

    def _destinations_changed(self) -> None:
        self._scheduler.on_destinations_changed(destinations=[s.dest for s in self.servers()])

    def _health(self, server: Server, event: HealthInput, now: float, detail: str) -> None:
        change = server.health.observe(
            event, server_id=server.id, now=now, detail=detail, probing=server.probing
        )
        if change is None:
            return
        usable = change.new is HealthState.ACTIVE and not server.removed
        server.dest.usable = usable
        self._scheduler.on_health_change(dest=server.dest, usable=usable)
        self.changes.append(change)
        if self.state.journal:
            self.state.deltas.append(ServerStateSet(server.uid, change.new.value))
        if change.new is HealthState.SUSPECT and server.probing:
            # Confirm or clear the suspicion now, not at the next probe interval.
            self.prober.probe_soon(server, now)
            self._probe_at = now
        if change.new is HealthState.INACTIVE and self.settings.dialog_aware:
            self._rescue(server, now)

    def _rescue(self, server: Server, now: float) -> None:
        """Fail over the transactions still waiting on a server that just went down.

        An INVITE the dead server had answered only provisionally would otherwise hang until
        the caller's Timer B: it goes to the next server now (the caller takes whichever final
        answer comes; the late CANCEL to the dead attempt costs nothing).
        """
        seen: set[int] = set()
        for p in list(self.state.pending.values()):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.final or p.cancelled or not p.attempts or p.attempts[-1] is not server:
                continue
            p.deadline = 0.0
            self._failover(p, now, f"{server.id} went down", self._outbox)

    # -- timers -----------------------------------------------------------------------------
    def next_deadline(self) -> float:
        """The earliest time `on_timer` has work to do."""
        q = self._failover_q
        # Most transactions are answered long before their failover time: drop those entries
        # here so they never cost a timer wake-up.
        while q and q[0][1].deadline != q[0][0]:
            q.popleft()
        soonest = q[0][0] if q else float("inf")
        if self._outbox:
            return 0.0
        probe = self._probe_at
        return probe if probe < soonest else soonest

    def silence_due(self, now: float) -> bool:
        """True when `on_timer(now)` would judge a server by its silence: a failover deadline
        or a probe timeout has come. The service reads what already arrived first."""
        q = self._failover_q
        while q and q[0][1].deadline != q[0][0]:
            q.popleft()
        return bool(q and q[0][0] <= now) or (
            now >= self._probe_at and self.prober.timeout_due(now)
        )

    def on_timer(self, now: float) -> list[Send]:
        out: list[Send] = self._outbox
        self._outbox = []
        q = self._failover_q
        timeout = self.settings.failover_timeout
        while q and q[0][0] <= now:
            deadline, p = q.popleft()
            if p.deadline == deadline and not p.final and not p.cancelled:
                p.deadline = 0.0
                self._failover(p, now, f"no response within {timeout * 1000:g} ms", out)
        if now >= self._probe_at:
            self._probe_tick(now, out)
        _, expired = self.state.sweep(now)
        for p in expired:
            if p.is_invite:
                self.state.dialog_idle(p.call_id, now, self.settings.linger)
        return out

    def _probe_tick(self, now: float, out: list[Send]) -> None:
        failures, sends = self.prober.tick(self.servers(), now)
        for result in failures:
            self._health(result.server, HealthInput.PROBE_FAILED, now, result.detail)
        for server, data in sends:
            out.append(Send(data, server.peer))
        for server in self.servers():
            hold = server.health.hold_until
            if hold is not None and now >= hold:
                self._health(server, HealthInput.HOLD_EXPIRED, now, "")
        nxt = self.prober.next_deadline()
        holds = [s.health.hold_until for s in self.servers() if s.health.hold_until is not None]
        self._probe_at = min([nxt, now + 1.0, *holds])

    # -- requests ---------------------------------------------------------------------------
    def on_request(self, msg: Request, source: Peer, now: float) -> list[Send]:
        """Route one request. Raises SipParseError for a malformed one (the transport answers
        400, or 483 when Max-Forwards is exhausted)."""
        self.stats.requests += 1
        method = msg.method
        to = msg.get("to")
        initial = to is None or "tag" not in to or msg.to_tag is None
        limiter = self._limiter
        if (
            limiter is not None
            and counted(method, in_dialog=not initial)
            and (source.host, source.port) not in self._by_addr
            and not limiter.allow(source.host, now)
        ):
            self.stats.rate_limited += 1
            if self.settings.rate_limit_reply:
                return [self._reply(msg, 503, source)]
            return []
        if initial or method == "ACK" or method == "CANCEL":
            key = branch_digest_input(msg)
            p = self.state.pending.get(key)
            if p is not None:
                return self._to_transaction(p, msg, source, now)
            if method == "CANCEL":
                # RFC 3261 §16.10: no matching transaction -> 481 (statelessly).
                return [self._reply(msg, 481, source)]
            if initial and method != "ACK":
                return self._new_transaction(key, msg, source, now)
        return self._in_dialog(msg, source, now)

    def _reply(self, msg: Request, status: int, source: Peer) -> Send:
        self.stats.local_replies += 1
        return Send(bytes(build_response(msg, status)), source)

    def _prepare(self, msg: Request, source: Peer) -> None:
        # RFC 3261 §18.2.1 and RFC 3581: remember where the request really came from, so the
        # response finds its way back. Over TCP we always record it: the response must reuse
        # the connection, whose port is not the Via port.
        via = msg.via
        if source.transport == "tcp":
            msg.set_top_via(str(via.with_params(received=source.host, rport=str(source.port))))
        elif via.host != source.host or via.has_rport:
            msg.set_via_received(source.host, source.port)
        msg.decrement_max_forwards()

    def _request_key(self, msg: Request, source: Peer) -> RequestKey:
        call_id = msg.call_id
        src = (source.host, source.port)
        if not self._parsed_key:
            return RequestKey(call_id, "", "", "", "", None, src)
        uri = msg.uri
        auth = msg.get("authorization") or msg.get("proxy-authorization")
        m = _AUTH_USER.search(auth) if auth else None
        return RequestKey(
            call_id,
            _user_of(msg.from_.uri),
            _user_of(msg.to.uri),
            msg.ruri,
            uri.user or "" if isinstance(uri, SipUri) else "",
            m.group(1) if m else None,
            src,
        )

    def _new_transaction(self, key: bytes, msg: Request, source: Peer, now: float) -> list[Send]:
        method = msg.method
        if method == "OPTIONS" and "@" not in msg.ruri and self._adv in msg.ruri:
            return [self._reply(msg, 200, source)]  # a keepalive addressed to us
        call_id = msg.call_id
        st = self.state
        d = st.dialogs.get(call_id)
        server: Server | None = None
        if d is not None and d.phase is DialogPhase.CONFIRMED:
            # An INVITE retransmitted after its transaction ended: same server, same branch.
            return self._in_dialog(msg, source, now)
        if d is not None and d.server.dest.usable:
            server = d.server
        else:
            dest = self._scheduler.pick(key=self._request_key(msg, source), now=now)
            server = self._server_of(dest)
        if server is None:
            self.stats.no_server += 1
            return [] if method == "ACK" else [self._reply(msg, 503, source)]
        is_invite = method == "INVITE"
        ttl = self.settings.invite_timeout if is_invite else self.settings.transaction_timeout
        p = Pending(key, bytes(msg), source, call_id, method, now + ttl)
        st.add_pending(p, key)
        self._prepare(msg, source)
        return [self._attempt(p, msg, server, now)]

    def _server_of(self, dest: Destination | None) -> Server | None:
        return None if dest is None else self._by_dest.get(id(dest))

    def _via(self, transport: str, branch: str) -> str:
        prefix = self._via_tcp if transport == "tcp" else self._via_udp
        return f"{prefix}{branch};rport"

    def _attempt(self, p: Pending, msg: Request, server: Server, now: float) -> Send:
        attempt = len(p.attempts)
        branch = make_branch(server.token, p.key + b"#%d" % attempt, self.secret)
        if msg.method in DIALOG_CREATING:
            msg.add_record_route(server.route)
        msg.push_via(self._via(server.peer.transport, branch))
        p.attempts.append(server)
        p.branches.append(branch)
        p.responded.append(False)
        st = self.state
        st.pending[branch] = p
        deadline = p.deadline = now + self.settings.failover_timeout
        self._failover_q.append((deadline, p))
        if p.is_invite:
            st.dialog_early(p.call_id, server, now, self.settings.invite_timeout)
        else:
            st.dialog_touch(p.call_id, server, now, self.settings.linger)
        self.stats.forwarded_requests += 1
        return Send(bytes(msg), server.peer)

    def _failover(self, p: Pending, now: float, cause: str, out: list[Send]) -> bool:
        """Retry ``p`` on the next server; False when there is none or attempts ran out."""
        if not self.settings.dialog_aware:
            return False
        failed = p.attempts[-1]
        retried = self._retry(p, now, out)
        # Health after the retry: a server going down fails over what still waits on it
        # (`_rescue`), and this transaction has already moved on.
        self._health(failed, HealthInput.PASSIVE_FAILURE, now, cause)
        return retried

    def _retry(self, p: Pending, now: float, out: list[Send]) -> bool:
        if len(p.attempts) >= self.settings.max_attempts:
            return False
        msg = parse_message(p.raw)
        assert isinstance(msg, Request)
        exclude = frozenset(s.id for s in p.attempts)
        dest = self._scheduler.pick(key=self._request_key(msg, p.source), now=now, exclude=exclude)
        server = self._server_of(dest)
        if server is None:
            return False
        self._prepare(msg, p.source)
        self.stats.failovers += 1
        out.append(self._attempt(p, msg, server, now))
        return True

    def _to_transaction(self, p: Pending, msg: Request, source: Peer, now: float) -> list[Send]:
        """A retransmission, the CANCEL, or the ACK of a non-2xx of an open transaction."""
        if not p.attempts:
            return []  # answered here, never forwarded: nothing on a server to reach
        server = p.winner or p.attempts[-1]
        idx = p.attempts.index(server)
        method = msg.method
        out: list[Send] = []
        if method == "CANCEL":
            p.cancelled = True
            for i, s in enumerate(p.attempts):
                if s is not server and p.responded[i]:
                    out.append(self._cancel(p, i))
        self._prepare(msg, source)
        if method not in ("ACK", "CANCEL") and method in DIALOG_CREATING:
            msg.add_record_route(server.route)
        msg.push_via(self._via(server.peer.transport, p.branches[idx]))
        self.stats.forwarded_requests += 1
        out.append(Send(bytes(msg), server.peer))
        return out

    def _cancel(self, p: Pending, idx: int) -> Send:
        request = parse_message(p.raw)
        assert isinstance(request, Request)
        server = p.attempts[idx]
        self.stats.cancels_sent += 1
        via = self._via(server.peer.transport, p.branches[idx])
        return Send(messages.cancel_for(request, via), server.peer)

    def _in_dialog(self, msg: Request, source: Peer, now: float) -> list[Send]:
        from_server = self._by_addr.get((source.host, source.port))
        target: Server | None = None
        peer: Peer | None = None
        route = msg.get("route")
        if route is not None and route.startswith("<sip:ds") and self._rr_suffix in route:
            token = route[7 : route.index("@")]
            msg.pop_route()
            if from_server is None:
                target = self._server_by_token(token)
            route = msg.get("route")
        if target is None and from_server is not None:
            # Towards the caller: next Route, else the Request-URI (RFC 3261 §16.12).
            peer = self._uri_peer(_first_uri(route) if route else msg.ruri)
            target = from_server
        if target is None:
            d = self.state.dialogs.get(msg.call_id)
            if d is not None:
                target = d.server
            else:
                dest = self._scheduler.pick(key=self._request_key(msg, source), now=now)
                target = self._server_of(dest)
                if target is None:
                    self.stats.no_server += 1
                    return [] if msg.method == "ACK" else [self._reply(msg, 503, source)]
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
            dest = self._scheduler.pick(
                key=self._request_key(msg, source), now=now, exclude=frozenset((target.id,))
            )
            alternative = self._server_of(dest)
            if alternative is not None:
                self.stats.dialogs_rescued += 1
                self.state.dialog_move(msg.call_id, alternative, now)
                target = alternative
        if msg.method == "BYE":
            self.state.dialog_idle(msg.call_id, now, self.settings.linger)
        if peer is None:
            peer = target.peer
        key = branch_digest_input(msg)
        self._prepare(msg, source)
        branch = make_branch(target.token, key + b"#0", self.secret)
        msg.push_via(self._via(peer.transport, branch))
        self.stats.forwarded_requests += 1
        return [Send(bytes(msg), peer)]

    def _server_by_token(self, token: str) -> Server | None:
        try:
            uid = int(token, 16)
        except ValueError:
            return None
        return self.state.servers.get(uid)

    def _uri_peer(self, text: str) -> Peer:
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise SipParseError(f"cannot route to {text!r}", status=416)
        host, port = uri.host_port
        host = uri.maddr or host
        transport = uri.transport or "udp"
        return self._peer(transport if transport in ("udp", "tcp") else "udp", host, port or 5060)

    def _peer(self, transport: str, host: str, port: int) -> Peer:
        k = (transport, host, port)
        peer = self._peers.get(k)
        if peer is None:
            if len(self._peers) > 10_000:
                self._peers.clear()
            peer = self._peers[k] = Peer(transport, host, port)
        return peer

    # -- responses --------------------------------------------------------------------------
    def on_response(self, msg: Response, source: Peer, now: float) -> list[Send]:
        """Route one response. Raises SipParseError for a malformed one (then dropped)."""
        self.stats.responses += 1
        branch = msg.via.branch
        token = read_branch_token(branch, self.secret)
        if token is None or branch is None:
            self.stats.foreign_responses += 1
            return []
        kind = token[0]
        if kind == "p":
            result = self.prober.on_response(branch, msg.status, now)
            if result is not None:
                result.server.probe_rtt_ms = result.rtt_ms
                if result.rtt_ms is not None:
                    old = result.server.dest.latency_ms
                    rtt = result.rtt_ms
                    result.server.dest.latency_ms = rtt if old is None else 0.8 * old + 0.2 * rtt
                event = HealthInput.PROBE_OK if result.ok else HealthInput.PROBE_FAILED
                self._health(result.server, event, now, result.detail)
            return []
        if kind == "g":
            return []  # the answer to an ACK/BYE/CANCEL we wrote ourselves
        msg.pop_via()
        if "via" not in msg:
            return []
        p = self.state.pending.get(branch)
        if p is not None and msg.cseq.method == p.method:
            return self._transaction_response(p, msg, branch, now)
        if msg.method == "INVITE" and msg.status < 300:
            ghost = self._learn_dialog(msg, token, now)
            if ghost:
                return ghost
        return [self._upstream(msg)]

    def _learn_dialog(self, msg: Response, token: str, now: float) -> list[Send]:
        """An INVITE's 1xx/2xx with no open transaction here: a takeover happened after the
        old active forwarded the INVITE but before it replicated it (the last batch). Our
        signed branch names the server, so the affinity is learnt from the response: the
        caller's ACK and BYE (no Route, SIPp's ``uac``) reach that server, and the server's
        call counts stay right. A 2xx from another server than the dialog's is a ghost."""
        server = self._server_by_token(token)
        if server is None:
            return []
        st = self.state
        d = st.dialogs.get(msg.call_id)
        if msg.status >= 200:
            if d is not None and d.server is not server:
                return self._end_ghost(msg, server)  # the dialog went to its last attempt
            if d is None or d.phase is DialogPhase.EARLY:
                st.dialog_confirmed(msg.call_id, server, now, self.settings.dialog_timeout)
            # CONFIRMED: a retransmitted 2xx; IDLE: one retransmitted after the BYE went by
            # (the caller's ACK was late): neither is a new call.
        elif msg.status > 100 and d is None:
            st.dialog_early(msg.call_id, server, now, self.settings.invite_timeout)
        return []

    def _upstream(self, msg: Response) -> Send:
        via = msg.via
        rport = via.params.get("rport")
        host = via.params.get("received") or via.host
        port = int(rport) if rport else via.port or 5060
        transport = via.transport.lower()
        if transport not in ("udp", "tcp") or via.maddr is not None:
            peer = response_destination(msg)
        else:
            peer = self._peer(transport, host.strip("[]"), port)
        self.stats.forwarded_responses += 1
        return Send(bytes(msg), peer)

    def _transaction_response(
        self, p: Pending, msg: Response, branch: str, now: float
    ) -> list[Send]:
        idx = p.branches.index(branch)
        server = p.attempts[idx]
        status = msg.status
        current = idx == len(p.attempts) - 1
        if not p.responded[idx]:
            p.responded[idx] = True
            if current:
                p.deadline = 0.0  # it answered: no failover on silence any more
        st = self.state
        if status < 200:
            if p.final and server is not p.winner and p.is_invite and status > 100:
                return [self._cancel(p, idx)]
            if p.final:
                return []
            return [self._upstream(msg)]
        if status < 300:
            if p.final:
                if server is p.winner:
                    return [self._upstream(msg)]
                return self._end_ghost(msg, server) if p.is_invite else []
            self._finish(p, server, now)
            out = []
            if p.is_invite:
                st.dialog_confirmed(p.call_id, server, now, self.settings.dialog_timeout)
                for i, s in enumerate(p.attempts):
                    if s is not server and p.responded[i]:
                        out.append(self._cancel(p, i))
            out.append(self._upstream(msg))
            return out
        # Non-2xx final.
        if p.final and server is p.winner:
            return [self._upstream(msg)]  # retransmission: the caller ACKs it
        out = []
        if p.final or not current:
            if p.is_invite:
                out.append(self._ack(p, msg, idx))
            return out
        if status in self.settings.failover_codes and not p.cancelled:
            if p.is_invite:
                out.append(self._ack(p, msg, idx))
            if self._failover(p, now, f"answered {status}", out):
                return out
            out = []  # no server left: the caller gets this answer
        self._finish(p, server, now)
        if p.is_invite:
            st.dialog_idle(p.call_id, now, self.settings.linger)
        out.append(self._upstream(msg))
        return out

    def _finish(self, p: Pending, winner: Server, now: float) -> None:
        p.final = True
        p.winner = winner
        p.deadline = 0.0
        if len(p.attempts) == 1:
            self.state.drop_pending(p)
        else:
            # Keep it to recognise late answers from the attempts we gave up on.
            p.expires = now + self.settings.linger
            self.state.add_pending(p, p.key)

    def _ack(self, p: Pending, response: Response, idx: int) -> Send:
        request = parse_message(p.raw)
        assert isinstance(request, Request)
        server = p.attempts[idx]
        via = self._via(server.peer.transport, p.branches[idx])
        return Send(messages.ack_for_non2xx(request, response, via), server.peer)

    def _end_ghost(self, msg: Response, server: Server) -> list[Send]:
        self.stats.ghost_calls_ended += 1
        seed = f"{msg.call_id}\x00{msg.cseq.seq}".encode("utf-8", "surrogateescape")
        t = server.peer.transport
        ack_via = self._via(t, make_branch(f"g{server.token}", seed + b"a", self.secret))
        bye_via = self._via(t, make_branch(f"g{server.token}", seed + b"b", self.secret))
        try:
            ack, bye = messages.end_ghost_dialog(msg, ack_via, bye_via)
        except ValueError:
            return []
        return [Send(ack, server.peer), Send(bye, server.peer)]

    # -- introspection ----------------------------------------------------------------------
    def dialog_phase(self, call_id: str) -> DialogPhase | None:
        d = self.state.dialogs.get(call_id)
        return None if d is None else d.phase


def _user_of(uri: object) -> str:
    return (uri.user or "") if isinstance(uri, SipUri) else ""


def _first_uri(route: str) -> str:
    value = route.split(",", 1)[0].strip()
    if value.startswith("<"):
        return value[1 : value.index(">")]
    return value.split(";", 1)[0]
