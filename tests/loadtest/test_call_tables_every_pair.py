"""The load tester's call tables, every (state, input) pair: each has the documented answer, and
a real call put in that state and given that input does what its rule says (sends, outcome,
next state).

The documented answers are the grids below, written apart from the tables; a pair a grid does
not name is documented as dropped (no action, state unchanged).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.options import AnswerMix, ScenarioOptions
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.uac_call import InviteCall
from sipha.loadtest.uac_table import CALL_TABLE, CallInput, CallState, classify_response
from sipha.loadtest.uac_txn import TXN_TABLE, RequestTxn, TxnInput, TxnState
from sipha.loadtest.uas import UasEngine
from sipha.loadtest.uas_call import UAS_TABLE, UasCall, UasInput, UasState
from sipha.loadtest.wire import scan
from sipha.sip.auth import DigestVerifier, NonceAuthority
from tests.loadtest.helpers import make_plan

PEER = ("127.0.0.1", 5060)
FAR = MessageBuilder(local_host="127.0.0.1", local_port=5060, transport="udp",
                     target="127.0.0.1:5555", domain="example.com")
CHALLENGE = str(DigestVerifier(NonceAuthority(b"k" * 32), "example.com")
                .challenge(now=0.0, salt=b"s"))
USERS = UserRange(prefix="u", first=1, count=1, domain="example.com", password="pw")

# state input -> next state: actions [reason]
CALL_GRID = """
CALLING INVITE_100 -> PROCEEDING: ARM_RING_TIMEOUT
CALLING INVITE_18X -> PROCEEDING: NOTE_RINGING ARM_RING_TIMEOUT
CALLING INVITE_2XX -> CONFIRMED: CONFIRM ACK_2XX ARM_HOLD
CALLING INVITE_CHALLENGE -> CALLING: ACK_FINAL AUTHENTICATE
CALLING INVITE_REJECTED -> COMPLETED: ACK_FINAL FAIL
CALLING BYE_RECEIVED -> ENDED: FAIL [unexpected]
CALLING RETRANSMIT_DUE -> CALLING: RETRANSMIT_INVITE
CALLING DEADLINE -> ENDED: FAIL [timeout]
CALLING ABANDON -> ENDED: FAIL [drain-timeout]
PROCEEDING INVITE_18X -> PROCEEDING: NOTE_RINGING
PROCEEDING INVITE_2XX -> CONFIRMED: CONFIRM ACK_2XX ARM_HOLD
PROCEEDING INVITE_CHALLENGE -> CALLING: ACK_FINAL AUTHENTICATE
PROCEEDING INVITE_REJECTED -> COMPLETED: ACK_FINAL FAIL
PROCEEDING BYE_RECEIVED -> ENDED: FAIL [unexpected]
PROCEEDING DEADLINE -> CANCELLING: SEND_CANCEL
PROCEEDING ABANDON -> ENDED: FAIL [drain-timeout]
CANCELLING INVITE_18X -> CANCELLING: NOTE_RINGING
CANCELLING INVITE_2XX -> CONFIRMED: CONFIRM ACK_2XX ARM_HOLD
CANCELLING INVITE_CHALLENGE -> COMPLETED: ACK_FINAL FAIL [timeout]
CANCELLING INVITE_REJECTED -> COMPLETED: ACK_FINAL FAIL [timeout]
CANCELLING BYE_RECEIVED -> ENDED: FAIL [unexpected]
CANCELLING CANCEL_ANSWERED -> CANCELLING: STOP_CANCEL
CANCELLING RETRANSMIT_DUE -> CANCELLING: RETRANSMIT_REQUEST
CANCELLING DEADLINE -> ENDED: FAIL [timeout]
CANCELLING ABANDON -> ENDED: FAIL [drain-timeout]
CONFIRMED INVITE_2XX -> CONFIRMED: RESEND_ACK
CONFIRMED BYE_RECEIVED -> ENDED: SUCCEED
CONFIRMED DEADLINE -> BYE_SENT: SEND_BYE
CONFIRMED ABANDON -> ENDED: FAIL [drain-timeout]
BYE_SENT INVITE_2XX -> BYE_SENT: RESEND_ACK
BYE_SENT BYE_2XX -> ENDED: SUCCEED
BYE_SENT BYE_CHALLENGE -> BYE_SENT: BYE_WITH_CREDENTIALS
BYE_SENT BYE_REJECTED -> ENDED: FAIL [bye-failed]
BYE_SENT BYE_RECEIVED -> ENDED: SUCCEED
BYE_SENT RETRANSMIT_DUE -> BYE_SENT: RETRANSMIT_REQUEST
BYE_SENT DEADLINE -> ENDED: FAIL [bye-failed]
BYE_SENT ABANDON -> ENDED: FAIL [drain-timeout]
COMPLETED INVITE_CHALLENGE -> COMPLETED: RESEND_ACK
COMPLETED INVITE_REJECTED -> COMPLETED: RESEND_ACK
COMPLETED DEADLINE -> ENDED:
"""

UAS_GRID = """
RINGING ANSWER_DUE -> ANSWERED: ANSWER START_RETRANSMISSIONS
RINGING BUSY_DUE -> REJECTED: REJECT START_RETRANSMISSIONS FAIL
RINGING NO_ANSWER_DUE -> REJECTED: REJECT START_RETRANSMISSIONS FAIL [480]
RINGING INVITE -> RINGING: RESEND_LAST
RINGING BYE -> RINGING: REPLY_481
RINGING CANCEL -> REJECTED: REPLY_OK REJECT START_RETRANSMISSIONS FAIL [487]
ANSWERED INVITE -> ANSWERED: RESEND_LAST
ANSWERED ACK -> CONFIRMED: STOP_RETRANSMISSIONS
ANSWERED BYE -> ENDED: REPLY_OK SUCCEED
ANSWERED CANCEL -> ANSWERED: REPLY_OK
ANSWERED RETRANSMIT_DUE -> ANSWERED: RETRANSMIT_LAST
ANSWERED DEADLINE -> ENDED: FAIL [timeout]
REJECTED INVITE -> REJECTED: RESEND_LAST
REJECTED ACK -> ENDED:
REJECTED BYE -> REJECTED: REPLY_481
REJECTED CANCEL -> REJECTED: REPLY_OK
REJECTED RETRANSMIT_DUE -> REJECTED: RETRANSMIT_LAST
REJECTED DEADLINE -> ENDED:
CONFIRMED INVITE -> CONFIRMED: RESEND_LAST
CONFIRMED BYE -> ENDED: REPLY_OK SUCCEED
CONFIRMED CANCEL -> CONFIRMED: REPLY_OK
ENDED BYE -> ENDED: REPLY_OK
"""

TXN_GRID = """
TRYING PROVISIONAL -> PROCEEDING:
TRYING SUCCESS -> DONE: SUCCEED
TRYING CHALLENGE -> TRYING: AUTHENTICATE
TRYING REJECTED -> DONE: FAIL
TRYING RETRANSMIT_DUE -> TRYING: RETRANSMIT
TRYING DEADLINE -> DONE: FAIL
TRYING ABORT -> DONE: FAIL
PROCEEDING PROVISIONAL -> PROCEEDING:
PROCEEDING SUCCESS -> DONE: SUCCEED
PROCEEDING CHALLENGE -> TRYING: AUTHENTICATE
PROCEEDING REJECTED -> DONE: FAIL
PROCEEDING RETRANSMIT_DUE -> PROCEEDING: RETRANSMIT_AT_T2
PROCEEDING DEADLINE -> DONE: FAIL
PROCEEDING ABORT -> DONE: FAIL
"""

Answer = tuple[str, tuple[str, ...], str]  # next state, actions, reason ("" if none)


def grid(text: str, states: type, inputs: type) -> dict[tuple[str, str], Answer]:
    """Every pair: the grid's line, else dropped."""
    out: dict[tuple[str, str], Answer] = {
        (s.name, i.name): (s.name, (), "") for s in states for i in inputs  # type: ignore[attr-defined]
    }
    for line in text.strip().splitlines():
        left, right = line.split(" -> ")
        state, event = left.split()
        nxt, _, rest = right.partition(":")
        reason = ""
        if "[" in rest:
            rest, _, reason = rest.partition("[")
            reason = reason.rstrip("]")
        assert (state, event) in out, line
        out[state, event] = (nxt, tuple(rest.split()), reason)
    return out


def _reason(rule: object) -> str:
    reason = getattr(rule, "reason", None)
    if reason is not None:
        return str(reason.value)
    status = getattr(rule, "status", 0)
    return str(status) if status else ""


@pytest.mark.parametrize(("table", "text", "states", "inputs"), [
    (CALL_TABLE, CALL_GRID, CallState, CallInput),
    (UAS_TABLE, UAS_GRID, UasState, UasInput),
    (TXN_TABLE, TXN_GRID, TxnState, TxnInput),
], ids=["uac-call", "uas-call", "uac-transaction"])
def test_every_pair_has_its_documented_answer(
    table: dict, text: str, states: type, inputs: type  # type: ignore[type-arg]
) -> None:
    expected = grid(text, states, inputs)
    assert len(table) == len(expected)
    for (state, event), rule in table.items():
        got = (rule.next_state.name, tuple(a.name for a in rule.actions), _reason(rule))
        assert got == expected[state.name, event.name], (state, event)


# -- the UAC call, driven -----------------------------------------------------------------------

def uac(users: UserRange | None = USERS) -> UacEngine:
    plan = make_plan(5060, rate=1.0, max_calls=1, duration=None, hold=10.0, users=users,
                     ring_timeout=5.0)
    return UacEngine(plan, plan.options, local_host="127.0.0.1", local_port=5555, t0=0.0,
                     rng=random.Random(1))


def _respond(e: UacEngine, call: InviteCall, status: int, method: str, now: float,
             extra: bytes = b"", cseq: int = 0) -> None:
    cseq = cseq or (call.cseq if method == "BYE" else call.invite_cseq)
    raw = FAR.request(method, "sip:x@y", branch="z9hG4bKx", from_=call.from_hdr,
                      to=call.to_hdr, call_id=call.call_id, cseq=cseq)
    req = scan(raw)
    call.on_response(scan(FAR.response(req, status, "X", to_tag=b"callee", extra=extra)),
                     b"", now)


def call_in(state: CallState) -> tuple[UacEngine, InviteCall, float]:
    """A call put in ``state`` through its inputs; its engine's queue emptied."""
    e = uac()
    e.advance(0.01)
    call = next(iter(e.dialogs.values()))
    assert isinstance(call, InviteCall)
    now = 0.02
    contact = b"Contact: <sip:callee@127.0.0.1:5060>"
    if state in (CallState.PROCEEDING, CallState.CANCELLING):
        _respond(e, call, 180, "INVITE", now)
    if state is CallState.CANCELLING:
        now = 5.1
        e.advance(now)
    if state in (CallState.CONFIRMED, CallState.BYE_SENT):
        _respond(e, call, 200, "INVITE", now, contact)
    if state is CallState.BYE_SENT:
        now = 10.1
        e.advance(now)
    if state in (CallState.COMPLETED, CallState.ENDED):
        _respond(e, call, 486, "INVITE", now)
    if state is CallState.ENDED:
        now = 60.0
        e.advance(now)
    assert call.state is state
    e.out.clear()
    return e, call, now


_CALL_SENDS = {
    "RETRANSMIT_INVITE": "INVITE", "AUTHENTICATE": "INVITE", "ACK_2XX": "ACK",
    "RESEND_ACK": "ACK", "ACK_FINAL": "ACK", "SEND_CANCEL": "CANCEL", "SEND_BYE": "BYE",
    "BYE_WITH_CREDENTIALS": "BYE",
}


def _feed_call(e: UacEngine, call: InviteCall, event: CallInput, now: float) -> None:
    auth = f"WWW-Authenticate: {CHALLENGE}".encode()
    feeds: dict[CallInput, Callable[[], None]] = {
        CallInput.INVITE_100: lambda: _respond(e, call, 100, "INVITE", now),
        CallInput.INVITE_18X: lambda: _respond(e, call, 183, "INVITE", now),
        CallInput.INVITE_2XX: lambda: _respond(e, call, 200, "INVITE", now),
        CallInput.INVITE_CHALLENGE: lambda: _respond(e, call, 401, "INVITE", now, auth),
        CallInput.INVITE_REJECTED: lambda: _respond(e, call, 603, "INVITE", now),
        CallInput.BYE_1XX: lambda: _respond(e, call, 100, "BYE", now),
        CallInput.BYE_2XX: lambda: _respond(e, call, 200, "BYE", now),
        CallInput.BYE_CHALLENGE: lambda: _respond(e, call, 401, "BYE", now, auth),
        CallInput.BYE_REJECTED: lambda: _respond(e, call, 500, "BYE", now),
        CallInput.CANCEL_ANSWERED: lambda: _respond(e, call, 200, "CANCEL", now),
        CallInput.OTHER_RESPONSE: lambda: _respond(e, call, 200, "INVITE", now, cseq=99),
        CallInput.BYE_RECEIVED: lambda: call.on_bye(now),
        CallInput.RETRANSMIT_DUE: lambda: call.on_timer(min(now, call.deadline - 1e-6)),
        CallInput.DEADLINE: lambda: call.on_timer(max(now, call.deadline)),
        CallInput.ABANDON: lambda: call.abandon(now),
    }
    feeds[event]()


@pytest.mark.parametrize("state", list(CallState), ids=lambda s: s.name)
@pytest.mark.parametrize("event", list(CallInput), ids=lambda i: i.name)
def test_a_uac_call_does_what_its_rule_says(state: CallState, event: CallInput) -> None:
    e, call, now = call_in(state)
    nxt, actions, reason = grid(CALL_GRID, CallState, CallInput)[state.name, event.name]
    e.flush_partial_second()
    _feed_call(e, call, event, now + 0.001)
    e.flush_partial_second()
    again = "CANCEL" if state is CallState.CANCELLING else "BYE"  # RETRANSMIT_REQUEST
    assert [scan(m).method.decode() for m in e.out] == [
        _CALL_SENDS.get(a, again) for a in actions if a in _CALL_SENDS or a == "RETRANSMIT_REQUEST"
    ]
    last = e.reports[-1][1]
    assert last.calls_successful == ("SUCCEED" in actions)
    if "FAIL" in actions:
        assert last.calls_failed == 1
        status = {"INVITE_CHALLENGE": "401", "INVITE_REJECTED": "603"}.get(event.name, "")
        assert set(last.failed_by_reason) == {reason or status}
    else:
        assert last.calls_failed == 0
    assert call.state.name == nxt
    assert (call.key in e.dialogs) == (call.state is not CallState.ENDED)


def test_the_classifier_reads_status_cseq_and_whether_a_challenge_may_be_answered() -> None:
    assert classify_response(200, True, True, True) is CallInput.INVITE_2XX
    assert classify_response(401, True, True, False) is CallInput.INVITE_REJECTED
    assert classify_response(401, False, True, True) is CallInput.BYE_CHALLENGE
    assert classify_response(200, True, False, True) is CallInput.OTHER_RESPONSE
    assert classify_response(200, False, True, True, cancel=True) is CallInput.CANCEL_ANSWERED
    assert classify_response(100, False, True, True, cancel=True) is CallInput.OTHER_RESPONSE


def test_a_challenge_without_a_usable_header_fails_with_its_status() -> None:
    e, call, now = call_in(CallState.CALLING)
    _respond(e, call, 407, "INVITE", now)  # no Proxy-Authenticate: the otherwise rule
    e.flush_partial_second()
    assert [scan(m).method for m in e.out] == [b"ACK"]
    assert e.reports[-1][1].failed_by_reason == {"407": 1}
    assert call.state is CallState.COMPLETED


# -- the UAS call, driven -----------------------------------------------------------------------

CALLER = MessageBuilder(local_host="127.0.0.1", local_port=5070, transport="udp",
                        target="127.0.0.1:5080", domain="127.0.0.1")


def _request(method: str, to_tag: str = "") -> bytes:
    to = "<sip:service@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return CALLER.request(method, "sip:service@127.0.0.1:5080", branch=f"z9hG4bK{method}",
                          from_="<sip:a@127.0.0.1>;tag=f1", to=to, call_id="c1",
                          cseq=2 if method == "BYE" else 1)


def uas_call_in(state: UasState) -> tuple[UasEngine, UasCall]:
    mix = AnswerMix(answer=0.0, busy=1.0) if state is UasState.REJECTED else AnswerMix()
    opts = ScenarioOptions(mix=mix, ring_time=0.0 if state is not UasState.RINGING else 9.0)
    e = UasEngine(opts, transport="udp", local_host="127.0.0.1", local_port=5080, t0=0.0,
                  rng=random.Random(5))
    e.on_message(_request("INVITE"), PEER, 0.0)
    call = e.calls[b"c1"]
    tag = call.to_tag.decode()
    if state in (UasState.CONFIRMED, UasState.ENDED):
        e.on_message(_request("ACK", tag), PEER, 0.1)
    if state is UasState.ENDED:
        e.on_message(_request("BYE", tag), PEER, 0.2)
    assert call.state is state
    e.replies.clear()
    return e, call


_UAS_REPLIES = {"ANSWER": "200", "REJECT": "final", "RETRANSMIT_LAST": "last",
                "RESEND_LAST": "last", "REPLY_OK": "200", "REPLY_481": "481"}


@pytest.mark.parametrize("state", list(UasState), ids=lambda s: s.name)
@pytest.mark.parametrize("event", list(UasInput), ids=lambda i: i.name)
def test_a_uas_call_does_what_its_rule_says(state: UasState, event: UasInput) -> None:
    e, call = uas_call_in(state)
    nxt, actions, reason = grid(UAS_GRID, UasState, UasInput)[state.name, event.name]
    last = scan(call.last).status
    e.flush_partial_second()
    method = {UasInput.INVITE: "INVITE", UasInput.ACK: "ACK", UasInput.BYE: "BYE",
              UasInput.CANCEL: "CANCEL"}.get(event)
    msg = scan(_request(method, call.to_tag.decode())) if method else None
    now = 1.0 if event is not UasInput.DEADLINE else 40.0
    call.handle(event, now, msg, PEER)
    e.flush_partial_second()
    final = {"BUSY_DUE": 486, "NO_ANSWER_DUE": 480, "CANCEL": 487}.get(event.name, 0)
    expected = []
    for a in actions:
        kind = _UAS_REPLIES.get(a)
        if kind == "final":
            expected.append(final)
        elif kind == "last":
            expected.append(last)
        elif kind is not None:
            expected.append(int(kind))
    assert [scan(d).status for d, _ in e.replies] == expected
    stats = e.reports[-1][1]
    assert stats.calls_successful == ("SUCCEED" in actions)
    if "FAIL" in actions:
        assert stats.failed_by_reason == {reason or str(final): 1}
    else:
        assert stats.calls_failed == 0
    assert call.state.name == nxt
    assert (b"c1" in e.calls) == (call.state is not UasState.ENDED)


# -- the non-INVITE transaction, driven ---------------------------------------------------------

def txn_in(state: TxnState) -> tuple[UacEngine, RequestTxn, list[tuple[bool, int]]]:
    e = uac()
    outcomes: list[tuple[bool, int]] = []
    txn = RequestTxn(e, e.builder, method="REGISTER", user="u1", domain="example.com",
                     call_id="r1", cseq=1, tag="t", password="pw", expires=60,
                     on_done=lambda t, ok, status, now: outcomes.append((ok, status)),
                     rng=random.Random(3))
    txn.start(0.0)
    if state is TxnState.PROCEEDING:
        txn.on_response(scan(FAR.response(scan(e.out[-1]), 100, "Trying")), b"", 0.1)
    if state is TxnState.DONE:
        txn.on_response(scan(FAR.response(scan(e.out[-1]), 200, "OK")), b"", 0.1)
    assert txn.state is state
    e.out.clear()
    outcomes.clear()
    return e, txn, outcomes


@pytest.mark.parametrize("state", list(TxnState), ids=lambda s: s.name)
@pytest.mark.parametrize("event", list(TxnInput), ids=lambda i: i.name)
def test_a_transaction_does_what_its_rule_says(state: TxnState, event: TxnInput) -> None:
    e, txn, outcomes = txn_in(state)
    nxt, actions, _ = grid(TXN_GRID, TxnState, TxnInput)[state.name, event.name]
    req = scan(FAR.request("REGISTER", "sip:example.com", branch="z9hG4bKr", from_="<sip:u1@x>",
                           to="<sip:u1@x>", call_id="r1", cseq=txn.cseq))
    status = {TxnInput.PROVISIONAL: 100, TxnInput.SUCCESS: 200, TxnInput.CHALLENGE: 401,
              TxnInput.REJECTED: 403, TxnInput.OTHER_RESPONSE: 200}.get(event)
    if status is not None:
        if event is TxnInput.OTHER_RESPONSE:
            req.cseq_num += 5
        extra = f"WWW-Authenticate: {CHALLENGE}".encode() if status == 401 else b""
        txn.on_response(scan(FAR.response(req, status, "X", extra=extra)), b"", 1.0)
    elif event is TxnInput.RETRANSMIT_DUE:
        txn.on_timer(min(1.0, txn.deadline - 1e-6))
    elif event is TxnInput.DEADLINE:
        txn.on_timer(txn.deadline)
    else:
        txn.abort(1.0)
    sends = [a for a in actions if a in ("RETRANSMIT", "RETRANSMIT_AT_T2", "AUTHENTICATE")]
    assert [scan(m).method for m in e.out] == [b"REGISTER"] * len(sends)
    if "SUCCEED" in actions:
        assert outcomes == [(True, 200)]
    elif "FAIL" in actions:
        assert outcomes == [(False, status if status and status >= 300 else 0)]
    else:
        assert outcomes == []
    assert txn.state.name == nxt
