"""A `ProxyCore` driven in memory on virtual time: a caller, N contacts, labels for what leaves.

A label is ``<method or status>><who>``: ``uac`` is the caller, ``b0``.. the branches (the
contacts, in binding order). `Respond` and `ForwardUpstream` both go to ``uac``.
"""

from __future__ import annotations

from sipha.server.local import Local
from sipha.server.proxy_core import (
    Action,
    Branch,
    Call,
    ForwardUpstream,
    LookUp,
    ProxyCore,
    Resolve,
    Respond,
    SendBranch,
    SendCancel,
)
from sipha.server.status import NodeStats
from sipha.sip import Request, Response, build_response, parse_message
from sipha.sip.transaction import (
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    TerminationReason,
)
from sipha.store import Binding
from sipha.transport import ListenSpec, Peer
from sipha.transport.resolver import ip_literal

UAC = Peer("udp", "127.0.0.9", 5099)
TIMER_C = 180.0


def cached_hop(spec: tuple[str, int | None, str | None], transport: str) -> Peer | None:
    host, port, param = spec
    return None if ip_literal(host) is None else Peer(param or transport, host, port or 5060)


def caller_request(method: str = "INVITE", user: str = "bob") -> Request:
    data = (
        f"{method} sip:{user}@sipha.local SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKcaller;rport\r\n"
        f"From: <sip:alice@sipha.local>;tag=fa\r\nTo: <sip:{user}@sipha.local>\r\n"
        f"Call-ID: call-1\r\nCSeq: 1 {method}\r\nContact: <sip:alice@127.0.0.9:5099>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def binding(i: int, host: str = "127.0.0.1") -> Binding:
    contact = f"sip:bob@{host}:{6000 + i}"
    return Binding(aor="bob@sipha.local", contact=contact, expires_at=1e12, call_id=f"r{i}",
                   cseq=1, raw=f"<{contact}>")


class ProxyHarness:
    """One call through a fresh core; every action it returns is kept in :attr:`sent`."""

    def __init__(self, method: str = "INVITE", *, timer_c: float = TIMER_C) -> None:
        self.local = Local([ListenSpec("udp", "127.0.0.1", 5060)], "sipha.local")
        self.stats = NodeStats()
        self.core = ProxyCore(local=self.local, stats=self.stats, domain="sipha.local",
                              record_route=True, timer_c=timer_c, secret=b"k" * 16,
                              cached_hop=cached_hop)
        self.request = caller_request(method)
        self.txn: ServerTransaction
        if method == "INVITE":
            self.txn = ServerInviteTransaction(self.request, reliable=False, auto_trying=False)
        else:
            self.txn = ServerNonInviteTransaction(self.request, reliable=False)
        self.branches: list[Branch] = []
        self.lookup: LookUp | None = None
        self.sent: list[Action] = []

    @property
    def call(self) -> Call:
        assert self.lookup is not None
        return self.lookup.call

    def start(self, now: float = 0.0) -> set[str]:
        """The caller's request reaches the core: 100 (INVITE) and a lookup."""
        out = self.run(self.core.to_user(self.request, self.txn, UAC, now))
        assert self.lookup is not None
        return out

    def locate(self, n: int, now: float = 0.0) -> set[str]:
        return self.run(self.core.on_bindings(self.call, [binding(i) for i in range(n)],
                                              user_exists=True, now=now))

    def fork(self, n: int, now: float = 0.0) -> set[str]:
        self.start(now)
        return self.locate(n, now)

    def answer(self, i: int, status: int, now: float = 1.0, tag: str = "") -> set[str]:
        """Branch ``i`` answers ``status`` (the bytes a callee would send, parsed again)."""
        b = self.branches[i]
        resp = build_response(b.request, status, to_tag=tag or f"t{i}") if status > 100 else \
            build_response(b.request, status)
        parsed = parse_message(bytes(resp))
        assert isinstance(parsed, Response)
        return self.run(self.core.on_response(b, parsed, now))

    def end(self, i: int, reason: TerminationReason, now: float = 1.0) -> set[str]:
        return self.run(self.core.on_branch_ended(self.branches[i], reason, now))

    def cancel(self, now: float = 1.0) -> set[str]:
        return self.run(self.core.on_cancel(self.txn, now) or [])

    def timer(self, now: float) -> set[str]:
        return self.run(self.core.on_timer(now))

    def run(self, actions: list[Action]) -> set[str]:
        self.sent.extend(actions)
        return {self.label(a) for a in actions}

    def label(self, a: Action) -> str:
        if isinstance(a, Respond | ForwardUpstream):
            return f"{a.response.status}>uac"
        if isinstance(a, SendBranch):
            self.branches.append(a.branch)
            return f"{a.branch.request.method}>b{len(self.branches) - 1}"
        if isinstance(a, SendCancel):
            who = next(i for i, b in enumerate(self.branches) if b.peer == a.peer)
            return f"CANCEL>b{who}"
        if isinstance(a, LookUp):
            self.lookup = a
            return "lookup"
        if isinstance(a, Resolve):
            return "resolve"
        raise AssertionError(a)

    def upstream(self) -> list[int]:
        """Every status that went to the caller, in order."""
        return [a.response.status for a in self.sent if isinstance(a, Respond | ForwardUpstream)]
