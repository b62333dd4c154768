"""Which step of a call a received message is for: SIPp's matching, as a pure function.

Theory of operation
-------------------
SIPp (``call::process_incoming``) looks for the message:

1. forward from the call's current step, over optional ``recv``s, stopping after the first
   step that is not an optional ``recv`` (a ``send``, ``pause`` or mandatory ``recv``);
2. else backward from the step before the current one, over earlier ``recv``s: a match there
   counts if every step between is an optional ``recv`` (contiguous), or the matched ``recv``
   is ``optional="global"``;
3. else, if a non-contiguous earlier ``recv`` matches a response to an INVITE and the step
   after it sends the ACK, the answer is to send that ACK again (the peer retransmits its
   final answer because our ACK was lost);
4. else the message is unexpected.

A ``recv`` matches a response by status code and CSeq method (the method of the last request
sent before it in the file, or of its ``response_txn``), a request by method (a regular
expression with ``regexp_match``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.sipmsg import Received

__all__ = ["Located", "locate", "matches"]


class Located(Enum):
    FOUND = "found"  # the index is the matching recv
    ACK_AGAIN = "ack-again"  # the index is the send of the ACK to resend
    UNEXPECTED = "unexpected"


def matches(step: m.Step, msg: Received, txns: dict[str, tuple[str, str]]) -> bool:
    """Whether ``step`` is a ``recv`` that ``msg`` answers."""
    if not isinstance(step, m.Recv):
        return False
    if step.response:
        if msg.status != step.response:
            return False
        method = step.cseq_method
        if step.response_txn:
            method = txns.get(step.response_txn, ("", ""))[0]
        return not method or msg.cseq_method == method
    if not msg.method:
        return False
    if step.request_regexp is not None:
        return step.request_regexp.search(msg.method) is not None
    return msg.method == step.request


def _optional(step: m.Step) -> bool:
    return isinstance(step, m.Recv) and step.optional


def locate(steps: Sequence[m.Step], current: int, msg: Received,
           txns: dict[str, tuple[str, str]]) -> tuple[Located, int]:
    """Where ``msg`` belongs for a call at step ``current`` (see the module docstring)."""
    for i in range(current, len(steps)):
        if matches(steps[i], msg, txns):
            return Located.FOUND, i
        if not _optional(steps[i]):
            break
    contiguous = True
    ack_again = -1
    for i in range(min(current, len(steps)) - 1, -1, -1):
        s = steps[i]
        if not _optional(s):
            contiguous = False
        if not matches(s, msg, txns):
            continue
        if contiguous or (isinstance(s, m.Recv) and s.optional_global):
            return Located.FOUND, i
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if (ack_again < 0 and msg.status and msg.cseq_method == "INVITE"
                and isinstance(nxt, m.Send) and nxt.message is not None
                and nxt.message.method == "ACK"):
            ack_again = i + 1
    if ack_again >= 0:
        return Located.ACK_AGAIN, ack_again
    return Located.UNEXPECTED, -1
