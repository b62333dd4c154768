"""register+call: the agent's UAS registers its users at a sipha server, its UAC calls them
through it (the server proxies to the registered contacts)."""

from __future__ import annotations

from pathlib import Path

from sipha.common.loop import run
from sipha.loadtest.api import run_local
from sipha.loadtest.protocol import UserRange
from tests.loadtest.helpers import make_plan
from tests.server.helpers import add_user, server


def test_users_register_then_receive_the_calls(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    for n in (1, 2):
        add_user(store, f"user{n}", "pw")
    # Trusted: the agent's UAC calls without credentials and its UAS does not echo the
    # Record-Route, so ACK and BYE carry no dialog token; a server with users forwards
    # neither for an untrusted source (tests/server/test_open_relay.py).
    with server(tmp_path, store=store, extra=("--trusted", "127.0.0.1")) as srv:
        users = UserRange(prefix="user", first=1, count=2, domain="127.0.0.1", password="pw")
        plan = make_plan(srv.port, scenario="register+call", rate=20, max_calls=40,
                         duration=None, users=users, t1=0.1)
        totals = run(run_local(plan)).totals
        status = srv.status()
    assert totals.transactions_ok == 2
    assert totals.transactions_failed == 0
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (40, 40, 0)
    assert status["calls"]["proxied"] == 40  # type: ignore[index]
