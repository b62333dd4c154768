"""Two server processes on one store (one SQLite file; one Redis): registrations made through
one are used by the other, and a call answered by one is ended through the other after the
first died."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sipha.sip import Response
from tests.messages import SDP
from tests.server.helpers import SCENARIOS, SipClient, add_user, server
from tests.sipp import run_uac, uas

# SIPp's uac has no credentials and its built-in uas does not echo Record-Route, so BYEs
# reach the proxy with the callee's Contact and no dialog token: here SIPp stands for a
# trusted peer (authorization itself: test_open_relay.py).
OPEN = ("--trusted", "127.0.0.1")


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.db'}"
    base: str = request.getfixturevalue("redis_url")
    return f"{base}?prefix=srv{uuid.uuid4().hex[:10]}:"


def test_user_registered_through_one_server_is_reachable_through_the_other(
    tmp_path: Path, shared_store: str
) -> None:
    add_user(shared_store, "callee", "pw")
    with (
        server(tmp_path, store=shared_store, name="a", extra=OPEN) as a,
        server(tmp_path, store=shared_store, name="b", extra=OPEN) as b,
        uas() as (uas_port, _),
    ):
        reg = run_uac(
            a.target, rate=10, calls=1, scenario=("-sf", str(SCENARIOS / "register_auth.xml")),
            extra=("-s", "callee", "-au", "callee", "-ap", "pw",
                   "-set", "cip", "127.0.0.1", "-set", "cport", str(uas_port)),
            timeout=20,
        )
        assert (reg.successful, reg.failed) == (1, 0), reg.stdout
        calls = run_uac(
            b.target, rate=20, calls=20, timeout=30,
            scenario=("-sf", str(SCENARIOS / "uac_record_route.xml")), extra=("-s", "callee"),
        )
        assert (calls.successful, calls.failed) == (20, 0), calls.stdout
        assert b.status()["calls"]["proxied"] == 20  # type: ignore[index]
        assert a.status()["calls"]["proxied"] == 0  # type: ignore[index]


def test_call_answered_by_a_dead_server_is_ended_by_the_other(
    tmp_path: Path, shared_store: str
) -> None:
    with (
        server(tmp_path, store=shared_store, name="a") as a,
        server(tmp_path, store=shared_store, name="b") as b,
        SipClient(a.port) as ua,
    ):
        ruri = f"sip:service@127.0.0.1:{a.port}"
        call_id = ua.request("INVITE", ruri, body=SDP)
        ok = ua.recv_final()
        assert ok.status == 200
        to = ok.get("to") or ""
        from_ = ok.get("from") or ""
        contact = ok.contacts[0].uri  # type: ignore[index]

        def in_dialog(method: str, cseq: int, target: tuple[str, int]) -> None:
            lines = [
                f"{method} {contact} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{method}{cseq}{call_id}",
                f"From: {from_}", f"To: {to}", f"Call-ID: {call_id}",
                f"CSeq: {cseq} {method}", "Max-Forwards: 70", "Content-Length: 0",
            ]
            ua.send("\r\n".join(lines) + "\r\n\r\n", target)

        in_dialog("ACK", 1, ("127.0.0.1", a.port))
        assert a.status()["active_dialogs"] == 1
        a.kill()  # a crash: no draining, no BYE
        # The dispatcher would now send the BYE to the surviving server.
        in_dialog("BYE", 2, ("127.0.0.1", b.port))
        bye_ok = ua.recv_final()
        assert isinstance(bye_ok, Response)
        assert (bye_ok.status, bye_ok.method) == (200, "BYE")
        assert b.status()["calls"]["byes_for_other_servers"] == 1  # type: ignore[index]
        # The record was taken atomically: the dialog is gone for everybody now.
        in_dialog("BYE", 3, ("127.0.0.1", b.port))
        assert ua.recv_final().status == 481
