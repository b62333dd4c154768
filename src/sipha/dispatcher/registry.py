"""The server registry: which SIP servers exist, how to find one, and the scheduler over them.

Every lookup the hot path needs is one dict access: by source address (is this message from
a server?), by scheduler destination (which server did the scheduler pick?) and by the token
our Record-Route and branches carry. The scheduler gets its inputs only through its hooks:
membership changes through ``on_destinations_changed`` (here), health changes through
``on_health_change`` (`supervision`), calls started and ended through ``on_call_started`` /
``on_call_ended`` (the load accounting in `state`, wired here when the scheduler declares
``wants_call_events``). It declares which request fields it reads (`key_fields`), so the
registry builds the parsed `RequestKey` only for the algorithms that need it. Nothing here
names an algorithm.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Mapping

from sipha.sip import Request
from sipha.sip.uri import SipUri, host_port
from sipha.transport import Peer

from .context import Stamp
from .health import HealthSettings, HealthState
from .schedulers import CHEAP_KEY_FIELDS, Destination, RequestKey, Scheduler, create
from .servers import ServerSpec, literal_peer
from .state import DispatcherState, Server

__all__ = ["ServerRegistry"]

_AUTH_USER = re.compile(r'username\s*=\s*"([^"]*)"', re.IGNORECASE)


class ServerRegistry:
    """The servers of one dispatcher and its scheduler (see the module docstring)."""

    __slots__ = ("_by_dest", "_parsed_key", "by_addr", "health", "scheduler", "stamp", "state")

    def __init__(
        self,
        state: DispatcherState,
        stamp: Stamp,
        *,
        algorithm: str,
        options: Mapping[str, object],
        health: HealthSettings,
        rng: random.Random,
    ) -> None:
        self.state = state
        self.stamp = stamp
        self.health = health
        self.scheduler: Scheduler = create(algorithm, [], rng=rng, options=options)
        self._parsed_key = not self.scheduler.key_fields <= CHEAP_KEY_FIELDS
        state.calls = self.scheduler if self.scheduler.wants_call_events else None
        self.by_addr: dict[tuple[str, int], Server] = {}
        """Servers by (host, port): tells a server's message from a caller's."""
        self._by_dest: dict[int, Server] = {}

    def servers(self) -> list[Server]:
        return [s for s in self.state.servers.values() if not s.removed]

    def find(self, key: str) -> Server | None:
        """A server by uid (decimal), id, or HOST:PORT."""
        for s in self.servers():
            if key in (str(s.uid), s.id, s.uri, f"{s.peer.host}:{s.peer.port}",
                       host_port(s.peer.host, s.peer.port)):
                return s
        return None

    def by_token(self, token: str) -> Server | None:
        """The server a Record-Route or branch token (its uid in hex) names."""
        try:
            uid = int(token, 16)
        except ValueError:
            return None
        return self.state.servers.get(uid)

    def of(self, dest: Destination | None) -> Server | None:
        """The server behind a scheduler's pick."""
        return None if dest is None else self._by_dest.get(id(dest))

    def pick(
        self, msg: Request, source: Peer, now: float, exclude: frozenset[str] = frozenset()
    ) -> Server | None:
        """The scheduler's choice for ``msg``; when no server is eligible, a suspect one;
        None when there is none of either."""
        dest = self.scheduler.pick(key=self.request_key(msg, source), now=now, exclude=exclude)
        if dest is not None:
            return self._by_dest.get(id(dest))
        # Every server suspect at once is mostly our own stall (all failover deadlines fire
        # together when the loop wakes) or a lossy network, and one silent transaction is
        # weak evidence: a suspect server is a better answer than a 503. Inactive (a failed
        # probe confirmed it), disabled and draining servers stay out.
        suspects = [s for s in self.servers()
                    if s.state is HealthState.SUSPECT and s.dest.weight > 0
                    and s.id not in exclude]
        if not suspects:
            return None
        return suspects[zlib.crc32(msg.call_id.encode("utf-8", "surrogateescape"))
                        % len(suspects)]

    def request_key(self, msg: Request, source: Peer) -> RequestKey:
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

    # -- membership -------------------------------------------------------------------------
    def add(self, spec: ServerSpec) -> Server:
        """Add a server in its configured initial state (active unless a Kamailio flag said
        inactive or disabled). Raises ValueError for a duplicate id."""
        if any(s.id == spec.key() for s in self.servers()):
            raise ValueError(f"server {spec.key()!r} already exists")
        st = self.state
        uid = st.next_uid
        st.next_uid += 1
        # A name is resolved off the loop (`destinations`); until then the server is unused.
        peer = literal_peer(spec)
        dest = Destination(
            spec.key(), weight=spec.weight, priority=spec.priority, maxload=spec.maxload,
            usable=spec.state is HealthState.ACTIVE and peer is not None,
        )
        server = Server(
            uid, dest, spec.uri, peer or Peer(spec.transport, spec.host, spec.port),
            probing=spec.probing, settings=self.health, state=spec.state,
        )
        server.resolved = peer is not None
        server.route = self.stamp.route(server.token, spec.transport)
        st.servers[uid] = server
        if peer is not None:
            self.by_addr[(peer.host, peer.port)] = server
        self._by_dest[id(dest)] = server
        self.destinations_changed()
        return server

    def remove(self, server: Server) -> None:
        """Stop using a server. Its dialogs keep routing to it until they end."""
        server.removed = True
        server.dest.usable = False
        if self.by_addr.get((server.peer.host, server.peer.port)) is server:
            del self.by_addr[(server.peer.host, server.peer.port)]
        if server.pending == 0 and server.dialogs == 0:
            self.state.servers.pop(server.uid, None)
        self.destinations_changed()

    def set_weight(self, server: Server, weight: int) -> None:
        """Raises ValueError for a negative weight."""
        if weight < 0:
            raise ValueError("weight must be >= 0")
        server.dest.weight = weight
        self.destinations_changed()

    def destinations_changed(self) -> None:
        self.scheduler.on_destinations_changed(destinations=[s.dest for s in self.servers()])


def _user_of(uri: object) -> str:
    return (uri.user or "") if isinstance(uri, SipUri) else ""
