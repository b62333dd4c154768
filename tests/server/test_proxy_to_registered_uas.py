"""A SIPp uas registered as a user receives the calls the server proxies from a SIPp uac."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import SCENARIOS, add_user, server
from tests.sipp import run_uac, uas

# SIPp's uac has no credentials and its built-in uas does not echo Record-Route, so BYEs
# reach the proxy with the callee's Contact and no dialog token: here SIPp stands for a
# trusted peer (authorization itself: test_open_relay.py).
OPEN = ("--trusted", "127.0.0.1")


def _register(target: str, user: str, password: str, contact_port: int) -> None:
    result = run_uac(
        target, rate=10, calls=1, scenario=("-sf", str(SCENARIOS / "register_auth.xml")),
        extra=("-s", user, "-au", user, "-ap", password,
               "-set", "cip", "127.0.0.1", "-set", "cport", str(contact_port)),
        timeout=20,
    )
    assert (result.successful, result.failed) == (1, 0), result.stdout


def test_proxied_calls_reach_the_registered_uas_and_bye_follows_record_route(
    tmp_path: Path,
) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "callee", "pw")
    trace = tmp_path / "uas-messages.log"
    with (
        server(tmp_path, store=store, extra=OPEN) as srv,
        uas(extra=("-trace_msg", "-message_file", str(trace))) as (uas_port, _),
    ):
        _register(srv.target, "callee", "pw", uas_port)
        result = run_uac(
            srv.target, rate=50, calls=200, timeout=40,
            scenario=("-sf", str(SCENARIOS / "uac_record_route.xml")), extra=("-s", "callee"),
        )
        assert (result.successful, result.failed) == (200, 0), result.stdout
        status = srv.status()
        # Every INVITE, ACK and BYE went through the proxy (Record-Route), none answered by it
        # except the 100 Trying.
        requests = status["requests"]
        assert requests["INVITE"] == requests["ACK"] == requests["BYE"] == 200  # type: ignore[index]
        assert status["calls"]["proxied"] == 200  # type: ignore[index]
        assert status["responses"]["100"] == 200  # type: ignore[index]
        assert status["proxy_pending"] == 0
    text = trace.read_text(errors="replace")
    # The uas got its BYEs from the proxy: addressed to its Contact, with the proxy's Via on top.
    byes = [block for block in text.split("\n\n") if "BYE sip:" in block]
    assert len(byes) == 200
    assert all(f"Via: SIP/2.0/UDP 127.0.0.1:{srv.port};branch=z9hG4bK" in b for b in byes)
    invites = [block for block in text.split("\n\n") if "INVITE sip:" in block]
    assert all(f"Record-Route: <sip:127.0.0.1:{srv.port};lr;ftag=" in b for b in invites)


def test_uac_ignoring_record_route_still_reaches_the_callee(tmp_path: Path) -> None:
    """SIPp's built-in uac sends ACK and BYE to the server's address, not along the route set;
    the server finds the callee from the Request-URI user."""
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "callee", "pw")
    with server(tmp_path, store=store, extra=OPEN) as srv, uas() as (uas_port, _):
        _register(srv.target, "callee", "pw", uas_port)
        result = run_uac(srv.target, rate=50, calls=100, timeout=30, extra=("-s", "callee"))
        assert (result.successful, result.failed) == (100, 0), result.stdout
