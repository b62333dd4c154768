"""A registering UAS refreshes before the expiry the registrar *granted* (RFC 3261 §10.2.4),
not the one it asked for: against a sipha server whose registrar clamps 3600 s to 3 s, the
binding never lapses during the run."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import msgspec

from sipha.common.loop import run
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.registration import granted_expiry
from sipha.loadtest.runner import AgentRunner
from sipha.store import open_store
from tests.loadtest.helpers import make_plan
from tests.server.helpers import add_user, server

OURS = "<sip:user1@127.0.0.1:5099>"


def ok(*headers: str) -> bytes:
    lines = [
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKx",
        "From: <sip:user1@d>;tag=a",
        "To: <sip:user1@d>;tag=b",
        "Call-ID: reg-1",
        "CSeq: 2 REGISTER",
        *headers,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_granted_expiry_is_our_contacts_param_else_the_header_else_the_request() -> None:
    # Our binding among others (another UA's first): its own expires counts.
    both = ok("Contact: <sip:user1@10.0.0.9:5060>;expires=50, <sip:user1@127.0.0.1:5099>"
              ";expires=120", "Expires: 900")
    assert granted_expiry(both, contact=OURS, requested=3600) == 120
    # Separate Contact headers, host case differs (RFC 3261 §19.1.4 comparison).
    split = ok("Contact: <sip:user1@10.0.0.9:5060>;expires=50",
               "Contact: <sip:user1@127.0.0.1:5099>;expires=7;received=\"sip:1.2.3.4\"")
    assert granted_expiry(split, contact=OURS, requested=3600) == 7
    # Our Contact without expires: the Expires header.
    assert granted_expiry(ok(f"Contact: {OURS}", "Expires: 30"), contact=OURS,
                          requested=3600) == 30
    # Neither: what we asked for.
    assert granted_expiry(ok(f"Contact: {OURS}"), contact=OURS, requested=3600) == 3600
    # Another UA's expires is not ours.
    assert granted_expiry(ok("Contact: <sip:user1@10.0.0.9:5060>;expires=50"), contact=OURS,
                          requested=3600) == 3600
    # Unreadable answers never raise.
    assert granted_expiry(b"garbage", contact=OURS, requested=60) == 60
    assert granted_expiry(ok(f"Contact: {OURS};expires=soon"), contact=OURS,
                          requested=60) == 60


REGISTRAR = """
[registrar]
min_expires = 1
max_expires = 3
default_expires = 3
"""


def test_refresh_comes_before_a_clamped_expiry(tmp_path: Path) -> None:
    store_url = f"sqlite:{tmp_path / 'users.db'}"
    names = ("user1", "user2")
    for name in names:
        add_user(store_url, name, "pw")
    with server(tmp_path, store=store_url, config=REGISTRAR) as srv:
        users = UserRange(prefix="user", first=1, count=2, domain="127.0.0.1", password="pw")
        plan = make_plan(srv.port, scenario="uas", duration=6.5, users=users, t1=0.1,
                         register_expires=3600)
        plan = msgspec.structs.replace(plan, start_at=time.time() + 0.2)
        runner = AgentRunner(plan, plan.options)
        # user -> [(seen at, binding expiry)], one entry per successful REGISTER.
        seen: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        lapses: list[tuple[str, float]] = []

        async def watch() -> None:
            store = open_store(store_url)
            task = asyncio.get_running_loop().create_task(runner.run())
            try:
                async with asyncio.timeout(20):
                    while not task.done():
                        await asyncio.sleep(0.02)
                        uas = runner.uas
                        if uas is None:
                            continue
                        now = time.monotonic()
                        for name, expiry in uas.binding_expiry.items():
                            if not seen[name] or seen[name][-1][1] != expiry:
                                seen[name].append((now, expiry))
                        # The registrar's view: once registered, a binding must stay.
                        if len(uas.binding_expiry) == len(names):
                            for name in names:
                                if not await store.get_bindings(f"{name}@sipha.local",
                                                                time.time()):
                                    lapses.append((name, now))
                    await task
            finally:
                await store.close()

        run(watch())

    assert lapses == [], f"bindings lapsed at the registrar: {lapses}"
    for name, history in seen.items():
        # Initial registration plus at least two refreshes (at 2.7 s and 5.4 s) in 6.5 s: the
        # 3 s grant was used (the requested 3600 s would have meant no refresh at all).
        assert len(history) >= 3, (name, history)
        for at, expiry in history:
            # Sampled after the 200 arrived, so expiry - at <= the grant.
            assert 2.5 < expiry - at <= 3.0, (name, history)
        for (_, previous_expiry), (at, _) in itertools.pairwise(history):
            assert at < previous_expiry, f"{name} refreshed after its binding lapsed: {history}"
