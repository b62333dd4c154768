"""Shared messages and a virtual-time driver for the transaction tests."""

from __future__ import annotations

from sipha.sip.message import Request, Response, build_response
from sipha.sip.parser import parse_message
from sipha.sip.transaction import (
    Action,
    AnyTransaction,
    PassUp,
    Send,
    StartTimer,
    Terminate,
    TransactionTable,
)


def sipp_request(
    method: str = "INVITE",
    *,
    transport: str = "UDP",
    branch: str = "z9hG4bK-3456-1-0",
    cseq: int = 1,
    routes: tuple[str, ...] = (),
    to_tag: str | None = None,
) -> Request:
    """A request shaped like SIPp's uac scenario, with a second Via to check 'top Via only'."""
    to = "<sip:service@10.0.0.2:5060>" + (f";tag={to_tag}" if to_tag else "")
    route_lines = "".join(f"Route: {r}\r\n" for r in routes)
    body = b"v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\n"
    text = (
        f"{method} sip:service@10.0.0.2:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.1:5061;branch={branch}\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.9:5070;branch=z9hG4bK-upstream\r\n"
        f"{route_lines}"
        "From: sipp <sip:sipp@10.0.0.1:5061>;tag=3456SIPpTag001\r\n"
        f"To: {to}\r\n"
        "Call-ID: 1-3456@10.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: sip:sipp@10.0.0.1:5061\r\n"
        "Max-Forwards: 69\r\n"
        "Subject: Performance Test\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode() + body
    message = parse_message(text)
    assert isinstance(message, Request)
    return message


def response(request: Request, status: int, *, to_tag: str | None = "srv-tag") -> Response:
    return build_response(request, status, to_tag=None if status == 100 else to_tag)


def ack_for(request: Request, to_tag: str = "srv-tag") -> Request:
    """An ACK a UAC sends for a non-2xx final: same branch as the INVITE."""
    return sipp_request("ACK", branch=request.via.branch or "", to_tag=to_tag)


def sends(actions: list[Action]) -> list[Request | Response]:
    return [a.message for a in actions if isinstance(a, Send)]


def passed_up(actions: list[Action]) -> list[Request | Response]:
    return [a.message for a in actions if isinstance(a, PassUp)]


def started(actions: list[Action]) -> dict[str, float]:
    return {a.timer.value: a.delay for a in actions if isinstance(a, StartTimer)}


def terminations(actions: list[Action]) -> list[Terminate]:
    return [a for a in actions if isinstance(a, Terminate)]


def run_timers(
    table: TransactionTable, until: float
) -> list[tuple[float, AnyTransaction, Action]]:
    """Advance virtual time deadline by deadline up to ``until``; every action with its time."""
    out: list[tuple[float, AnyTransaction, Action]] = []
    while (deadline := table.next_deadline()) is not None and deadline <= until:
        out.extend((deadline, txn, action) for txn, action in table.handle_timers(deadline))
    return out


def send_times(log: list[tuple[float, AnyTransaction, Action]]) -> list[float]:
    return [t for t, _, action in log if isinstance(action, Send)]
