"""Real phones (baresip) through one sipha server as registrar and proxy: digest registration,
calls in both directions with media, busy, cancel while ringing, hold/resume (re-INVITE),
MESSAGE, blind transfer (REFER/NOTIFY) between three phones, parallel forking to two phones of
one user (RFC 3261 §16.7).

Through the dispatcher pair is issue 13's next step (the dispatcher must act as the edge)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.phones import Account, Phone, phones
from tests.server.helpers import Server, add_user, server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    # A server and store per test: a phone killed at the end of one test leaves its binding,
    # and the next test's INVITE would fork to it too and wait out its Timer B (RFC 3261 §16.7).
    store = f"sqlite:{tmp_path / 'users.db'}"
    for user in ("alice", "bob", "carol"):
        add_user(store, user, f"{user}-secret")
    with server(tmp_path, store=store, answer=()) as s:
        yield s


def _phone(name: str, srv: Server, tmp_path: Path, answermode: str = "auto") -> Phone:
    account = Account(name, f"{name}-secret", outbound=f"sip:{srv.target};transport=udp",
                      answermode=answermode)
    return Phone(name, account, tmp_path)


def test_phones_register_call_and_hang_up_both_ways(srv: Server, tmp_path: Path) -> None:
    with phones(_phone("alice", srv, tmp_path), _phone("bob", srv, tmp_path)) as (a, b):
        a.registered()
        b.registered()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_ESTABLISHED")
        a.wait_event("CALL_ESTABLISHED")
        a.wait_event("CALL_RTPESTAB", timeout=5)  # media flows between the phones
        a.command("hangup")
        b.wait_event("CALL_CLOSED")
        a.wait_event("CALL_CLOSED")

        b.command("dial", "sip:alice@sipha.local")
        a.wait_event("CALL_ESTABLISHED")
        b.wait_event("CALL_ESTABLISHED")
        b.command("hangup")
        a.wait_event("CALL_CLOSED")
        b.wait_event("CALL_CLOSED")


def test_busy_phone_rejects_with_486(srv: Server, tmp_path: Path) -> None:
    with phones(_phone("alice", srv, tmp_path),
                _phone("bob", srv, tmp_path, answermode="manual")) as (a, b):
        a.registered()
        b.registered()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_INCOMING")
        b.command("hangup")  # rejecting a ringing call answers 486
        closed = a.wait_event("CALL_CLOSED")
        assert "486" in str(closed.get("param")), closed


def test_cancel_while_ringing(srv: Server, tmp_path: Path) -> None:
    with phones(_phone("alice", srv, tmp_path),
                _phone("bob", srv, tmp_path, answermode="manual")) as (a, b):
        a.registered()
        b.registered()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_INCOMING")
        a.wait_event("CALL_RINGING")
        a.command("hangup")  # CANCEL
        b.wait_event("CALL_CLOSED")
        a.wait_event("CALL_CLOSED")


def test_hold_resume_and_message(srv: Server, tmp_path: Path) -> None:
    alice = _phone("alice", srv, tmp_path)
    alice.contacts = ("sip:bob@sipha.local",)
    with phones(alice, _phone("bob", srv, tmp_path)) as (a, b):
        a.registered()
        b.registered()
        a.command("message", "hello bob")
        a.command("dial", "sip:bob@sipha.local")
        a.wait_event("CALL_ESTABLISHED")
        b.wait_event("CALL_ESTABLISHED")
        a.forget()
        a.command("hold")  # re-INVITE with a=sendonly; its answer arrives as the remote SDP
        a.wait_event("CALL_REMOTE_SDP", timeout=5)
        a.forget()
        a.command("resume")  # re-INVITE with a=sendrecv
        a.wait_event("CALL_REMOTE_SDP", timeout=5)
        a.command("hangup")
        b.wait_event("CALL_CLOSED")
        trace = b.tail(1_000_000)  # bob's SIP trace: what reached him through the server
        assert "hello bob" in trace
        invites = trace.split("\nINVITE sip:")[1:]
        assert len(invites) == 3, trace
        assert "a=sendonly" in invites[1]
        assert "a=sendrecv" in invites[2]


def test_blind_transfer_between_three_phones(srv: Server, tmp_path: Path) -> None:
    with phones(_phone("alice", srv, tmp_path), _phone("bob", srv, tmp_path),
                _phone("carol", srv, tmp_path)) as (a, b, c):
        for p in (a, b, c):
            p.registered()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_ESTABLISHED")
        b.command("transfer", "sip:carol@sipha.local")  # REFER to alice
        a.wait_event("TRANSFER", timeout=5)
        c.wait_event("CALL_ESTABLISHED", timeout=10)  # alice called carol
        b.wait_event("CALL_CLOSED", timeout=10)  # bob's call ends once the transfer succeeded


def test_parallel_forking_to_two_phones_of_one_user(srv: Server, tmp_path: Path) -> None:
    # RFC 3261 §16.6/§16.7: bob registered two phones; both ring, the first to answer gets the
    # call, the other is CANCELled.
    bob1 = Phone("bob1", Account("bob", "bob-secret", outbound=f"sip:{srv.target};transport=udp",
                                 answermode="manual"), tmp_path)
    bob2 = Phone("bob2", Account("bob", "bob-secret", outbound=f"sip:{srv.target};transport=udp",
                                 answermode="manual"), tmp_path)
    with phones(_phone("alice", srv, tmp_path), bob1, bob2) as (a, b1, b2):
        for p in (a, b1, b2):
            p.registered()
        a.command("dial", "sip:bob@sipha.local")
        b1.wait_event("CALL_INCOMING")
        b2.wait_event("CALL_INCOMING")
        b1.command("accept")
        a.wait_event("CALL_ESTABLISHED")
        b1.wait_event("CALL_ESTABLISHED")
        b2.wait_event("CALL_CLOSED")  # the loser's INVITE was CANCELled
        assert "\nCANCEL sip:bob" in b2.tail(1_000_000)
        a.command("hangup")
        b1.wait_event("CALL_CLOSED")
