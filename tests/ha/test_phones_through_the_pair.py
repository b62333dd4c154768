"""Real phones (baresip) through the HA dispatcher pair, over UDP and over TCP: the dispatcher is
their edge (Path with a flow token, Record-Route, outbound keepalives), sipha servers behind it
are registrar and proxy.

Three phones register with digest through the service address; A calls B, the call is held
3 s and A hangs up, then B calls A; B rejects (486); A cancels while B rings; A sends B a
MESSAGE; B transfers A to C (REFER). Then the faults: the server that proxied a call is
SIGKILLed and the BYE still succeeds (another server takes the dialog, edge.py moves the dead
server's Record-Route to it); the active dispatcher is SIGKILLed during a call and the BYE still
gets its 200 through the new active, after which B can be called again (UDP at once: a flow is
an address; TCP once B re-registered over a new connection, its flow recovery).

One pair and one set of phones per transport, shared by the tests of the module, which run in
order (the faults last).
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.phones import Account, Phone
from tests.server.helpers import add_user

from .pair import Pair, pair

pytestmark = pytest.mark.timeout(120)

USERS = ("alice", "bob", "carol")
REGINT = 4  # TCP: re-registration is the phone's flow recovery after a takeover
SERVER_CONFIG = """
[registrar]
min_expires = 2
"""


@dataclass
class Env:
    pair: Pair
    transport: str
    a: Phone
    b: Phone
    c: Phone


def _phone(name: str, p: Pair, tmp: Path, transport: str) -> Phone:
    extra = {"sipnat": "outbound"} if transport == "udp" else {}
    account = Account(
        name, f"{name}-secret", outbound=f"sip:{p.target};transport={transport}",
        regint=REGINT if transport == "tcp" else 60, extra=extra,
    )
    # The message command writes to the selected contact: alice's is bob.
    contacts = ("sip:bob@sipha.local",) if name == "alice" else ()
    return Phone(name, account, tmp, transport=transport, contacts=contacts)


@pytest.fixture(scope="module", params=["udp", "tcp"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    transport: str = request.param
    tmp = tmp_path_factory.mktemp(f"phones-{transport}")
    for user in USERS:
        add_user(f"sqlite:{tmp / 'cluster.db'}", user, f"{user}-secret")
    config = tmp / "server.toml"
    config.write_text(SERVER_CONFIG)
    # The servers know the service address as an alias (docs/security.md): they judge what
    # the dispatchers relay by the phone below, and leave the edge's own Record-Route and
    # Path in place. Flow-Timer 2 s: the UDP phones' STUN keepalives come within the test.
    vip = f"127.0.{random.randint(1, 250)}.{random.randint(10, 250)}"
    with pair(tmp, n_servers=3, server_extra=("--config", str(config), "--alias", vip),
              extra=("--flow-timer", "2"), vip=vip) as p:
        phones = [_phone(u, p, tmp, transport) for u in USERS]
        try:
            for phone in phones:
                phone.start()
            for phone in phones:
                phone.registered()
            yield Env(p, transport, *phones)
        finally:
            for phone in phones:
                phone.stop()


def _call(caller: Phone, callee: Phone) -> None:
    caller.forget()
    callee.forget()
    caller.command("dial", f"sip:{callee.account.user}@sipha.local")
    callee.wait_event("CALL_ESTABLISHED")
    caller.wait_event("CALL_ESTABLISHED")


def _hang_up(who: Phone, other: Phone, timeout: float = 10.0) -> None:
    who.command("hangup")
    other.wait_event("CALL_CLOSED", timeout=timeout)
    who.wait_event("CALL_CLOSED")


_BYE_200 = re.compile(r"SIP/2\.0 200 OK\r?\n(?:[^\r\n]+\r?\n)*?CSeq: *\d+ BYE", re.IGNORECASE)


def _byes_answered(phone: Phone) -> int:
    """200s to BYE in the phone's SIP trace (baresip -s)."""
    return len(_BYE_200.findall(phone.tail(10_000_000)))


def _bye_answered(phone: Phone, before: int) -> None:
    """The phone's BYE got its 200 (baresip reports the call closed when it sends the BYE)."""
    deadline = time.monotonic() + 10
    while _byes_answered(phone) <= before:
        assert time.monotonic() < deadline, f"no 200 to the BYE\n{phone.tail()}"
        time.sleep(0.1)


def _proxied(p: Pair) -> list[int]:
    return [int(s.get("/status")["calls"]["proxied"]) for s in p.servers if s.proc.poll() is None]


def test_call_with_media_held_then_hung_up_both_ways(env: Env) -> None:
    a, b = env.a, env.b
    _call(a, b)
    a.wait_event("CALL_RTPESTAB", timeout=5)  # media flows between the phones
    time.sleep(3)
    before = _byes_answered(a)
    _hang_up(a, b)
    _bye_answered(a, before)
    _call(b, a)
    _hang_up(b, a)
    if env.transport == "udp":
        # The phones' STUN keepalives (RFC 5626 §8) were answered on the SIP port.
        active = env.pair.active()
        assert active is not None
        assert active.status()["transport"]["stun_answered"] > 0


def test_busy_and_cancel_while_ringing(env: Env) -> None:
    a, b = env.a, env.b
    b.command("answermode", "manual")
    try:
        a.forget()
        b.forget()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_INCOMING")
        b.command("hangup")  # rejecting a ringing call answers 486
        closed = a.wait_event("CALL_CLOSED")
        assert "486" in str(closed.get("param")), closed
        b.wait_event("CALL_CLOSED")

        a.forget()
        b.forget()
        a.command("dial", "sip:bob@sipha.local")
        b.wait_event("CALL_INCOMING")
        a.wait_event("CALL_RINGING")
        a.command("hangup")  # CANCEL
        b.wait_event("CALL_CLOSED")
        a.wait_event("CALL_CLOSED")
    finally:
        b.command("answermode", "auto")


def test_message_and_blind_transfer(env: Env) -> None:
    a, b, c = env.a, env.b, env.c
    _call(a, b)
    a.command("message", "hello bob through the edge")
    deadline = time.monotonic() + 5
    while "hello bob through the edge" not in b.tail(10_000_000):
        assert time.monotonic() < deadline, b.tail()
        time.sleep(0.1)
    c.forget()
    b.command("transfer", "sip:carol@sipha.local")  # REFER to alice
    a.wait_event("TRANSFER", timeout=5)
    c.wait_event("CALL_ESTABLISHED", timeout=10)  # alice called carol
    b.wait_event("CALL_CLOSED", timeout=10)  # bob's call ends once the transfer succeeded
    _hang_up(c, a)


def test_bye_succeeds_after_the_calls_server_is_killed(env: Env) -> None:
    a, b, p = env.a, env.b, env.pair
    before = _proxied(p)
    _call(a, b)
    after = _proxied(p)
    [server] = [s for s, n, m in zip(p.servers, before, after, strict=True) if m > n]
    server.kill()
    active = p.active()
    assert active is not None
    # The dispatcher's probes find it dead (inactive), then its dialogs move on the next request.
    deadline = time.monotonic() + 10
    while True:
        states = {s["id"]: s["state"] for s in active._call("GET", "/servers")["servers"]}
        if states[server.uri] == "inactive":
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    rescued = active.status()["stats"]["dialogs_rescued"]
    before_byes = _byes_answered(a)
    _hang_up(a, b)
    _bye_answered(a, before_byes)
    assert active.status()["stats"]["dialogs_rescued"] > rescued


def test_call_survives_a_takeover_and_the_callee_stays_reachable(env: Env) -> None:
    a, b, p = env.a, env.b, env.pair
    _call(a, b)
    time.sleep(0.5)  # the dialog is replicated to the standby
    b.forget()
    p.a.signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while p.active() is not p.b:
        assert time.monotonic() < deadline, "the standby did not take over"
        time.sleep(0.1)
    before = _byes_answered(a)
    # TCP: B's connection died with the old active, and its Contact names that connection's
    # port. The BYE reaches B once B registered over a new connection (every REGINT s here),
    # by the server's retransmission: the edge learnt B's new flow from that registration.
    _hang_up(a, b, timeout=10 + 2 * REGINT)
    _bye_answered(a, before)
    if env.transport == "tcp":
        # B's connection died with the old active: it is callable again once it registered
        # over a new one (a call before that is answered 430 at once, not after Timer B).
        b.wait_event("REGISTER_OK", timeout=3 * REGINT)
    _call(a, b)
    _hang_up(b, a)
