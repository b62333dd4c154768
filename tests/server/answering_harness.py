"""An `AnsweringCore` driven in memory on virtual time, with labels for what it does.

Labels: ``<status>>uac`` a response to the INVITE, ``200+>uac`` a retransmitted 2xx,
``200>bye`` the answer to a BYE, ``BYE>uac`` our BYE, ``store``/``delete`` the dialog record,
``verify`` the peer's retransmission budget.
"""

from __future__ import annotations

from sipha.server.answering_core import (
    Action,
    AnsweredCall,
    AnsweringCore,
    DeleteDialog,
    Respond,
    Retransmit,
    SendBye,
    StoreDialog,
    VerifyPeer,
)
from sipha.server.dialplan import Action as DialplanAction
from sipha.server.dialplan import ActionKind
from sipha.server.local import Local
from sipha.server.status import NodeStats
from sipha.sip import Request, parse_message
from sipha.sip.transaction import (
    DEFAULT_TIMERS,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
)
from sipha.transport import ListenSpec, Peer

UAC = Peer("udp", "127.0.0.9", 5099)
UAC_TCP = Peer("tcp", "127.0.0.9", 5099)


def invite(user: str = "service", call_id: str = "a-1", record_route: str = "") -> Request:
    rr = f"Record-Route: {record_route}\r\n" if record_route else ""
    data = (
        f"INVITE sip:{user}@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKinv;rport\r\n"
        f"From: <sip:alice@sipha.local>;tag=fa\r\nTo: <sip:{user}@127.0.0.1:5060>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.9:5099>\r\n{rr}"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def in_dialog(method: str, call: AnsweredCall, cseq: int = 2) -> Request:
    data = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bK{method.lower()}{cseq}\r\n"
        f"From: <sip:alice@sipha.local>;tag=fa\r\n"
        f"To: <sip:service@127.0.0.1:5060>;tag={call.local_tag}\r\n"
        f"Call-ID: {call.invite.call_id}\r\nCSeq: {cseq if method != 'ACK' else 1} {method}\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def answer(ring_time: float = 0.0, max_hold: float = 3600.0) -> DialplanAction:
    return DialplanAction(ActionKind.ANSWER, 200, ring_time=ring_time, max_hold=max_hold)


def ring(ring_timeout: float = 30.0) -> DialplanAction:
    return DialplanAction(ActionKind.RING, 180, ring_timeout=ring_timeout)


class AnsweringHarness:
    def __init__(self) -> None:
        self.local = Local([ListenSpec("udp", "127.0.0.1", 5060)], "sipha.local")
        self.stats = NodeStats()
        self.core = AnsweringCore(local=self.local, stats=self.stats, timers=DEFAULT_TIMERS)
        self.txn: ServerInviteTransaction | None = None
        self.current: AnsweredCall | None = None
        self.sent: list[Action] = []

    def invite(self, action: DialplanAction, now: float = 0.0, peer: Peer = UAC,
               request: Request | None = None) -> set[str]:
        request = request or invite()
        self.txn = ServerInviteTransaction(request, reliable=peer.transport != "udp",
                                           auto_trying=False)
        out = self.run(self.core.invite(request, self.txn, peer, action, now, 1_700_000_000.0))
        self.current = self.core.calls.get(request.call_id, self.current)
        return out

    @property
    def call(self) -> AnsweredCall:
        assert self.current is not None
        return self.current

    def stored(self, now: float) -> set[str]:
        return self.run(self.core.on_stored(self.call, now))

    def cancel(self, now: float) -> set[str]:
        assert self.txn is not None
        return self.run(self.core.on_cancel(self.txn, now) or [])

    def ack(self, now: float) -> set[str]:
        return self.run(self.core.on_ack(in_dialog("ACK", self.call), now))

    def bye(self, now: float) -> set[str]:
        bye = in_dialog("BYE", self.call)
        txn = ServerNonInviteTransaction(bye, reliable=False)
        return self.run(self.core.on_bye(bye, txn, now) or [])

    def timer(self, now: float) -> set[str]:
        return self.run(self.core.on_timer(now))

    def run(self, actions: list[Action]) -> set[str]:
        self.sent.extend(actions)
        return {self.label(a) for a in actions}

    def label(self, a: Action) -> str:
        if isinstance(a, Respond):
            if a.response.method == "BYE":
                return f"{a.response.status}>bye"
            return f"{a.response.status}>uac"
        if isinstance(a, Retransmit):
            return f"{a.response.status}+>uac"
        if isinstance(a, SendBye):
            return "BYE>uac"
        if isinstance(a, StoreDialog):
            return "store"
        if isinstance(a, DeleteDialog):
            return "delete"
        if isinstance(a, VerifyPeer):
            return "verify"
        raise AssertionError(a)
