"""A scheduler that declares ``wants_call_events`` is told of every call started and ended on a
destination through its hooks, wired by the registry without the router naming it: what it
counts from its hooks equals ``active_calls`` after every step (answered, failed over,
rejected, expired, replicated to a standby). One that does not declare it is not called."""

from __future__ import annotations

import random
from collections import Counter
from typing import ClassVar

import pytest

from sipha.dispatcher.router import Router, RouterSettings
from sipha.dispatcher.schedulers import Destination, base
from sipha.dispatcher.schedulers.rr import RoundRobin
from sipha.dispatcher.servers import parse_server
from tests.dispatcher.test_router_decisions_virtual_time import (
    SECRET,
    UAC,
    answer,
    forwarded,
    invite,
)


class CountingRoundRobin(RoundRobin):
    """Round robin that also counts the calls its hooks report."""

    __slots__ = ("counts", "events")
    name = "counting-rr"
    CALL_EVENTS: ClassVar[bool] = True

    def _configure(self, options: object) -> None:
        self.counts: Counter[str] = Counter()
        self.events: list[tuple[str, str]] = []

    def on_call_started(self, *, dest: Destination) -> None:
        self.counts[dest.id] += 1
        self.events.append(("started", dest.id))

    def on_call_ended(self, *, dest: Destination) -> None:
        self.counts[dest.id] -= 1
        self.events.append(("ended", dest.id))


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered for these tests only (monkeypatch restores the registry after each): the
    # registry's own test lists the built-in names.
    monkeypatch.setitem(base._REGISTRY, CountingRoundRobin.name, CountingRoundRobin)


def router(algorithm: str = "counting-rr", **kw: object) -> Router:
    settings = RouterSettings(algorithm=algorithm, **kw)  # type: ignore[arg-type]
    r = Router(settings, advertise=("127.0.0.1", 5060), secret=SECRET, rng=random.Random(1))
    for i in range(3):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    return r


def agree(r: Router) -> CountingRoundRobin:
    sched = r.scheduler
    assert isinstance(sched, CountingRoundRobin)
    for s in r.servers():
        assert sched.counts[s.id] == s.dest.active_calls, s.id
    return sched


def test_answered_call_starts_once_and_ends_with_its_bye() -> None:
    r = router()
    [out] = r.on_request(invite(), UAC, now=0.0)
    sched = agree(r)
    assert sum(sched.counts.values()) == 1
    r.on_response(answer(forwarded(out), 180), out.peer, now=0.01)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.02)
    agree(r)
    assert sum(sched.counts.values()) == 1
    r.on_request(invite(method="BYE", branch="z9hG4bKb", to_tag="s1", cseq=2), UAC, 1.0)
    agree(r)
    assert sum(sched.counts.values()) == 0
    assert [e for e, _ in sched.events] == ["started", "ended", "started", "ended"]


def test_failover_ends_the_call_on_the_first_server_and_starts_it_on_the_next() -> None:
    r = router()
    [first] = r.on_request(invite(), UAC, now=0.0)
    sends = r.on_timer(0.2)
    [retry] = [s for s in sends if forwarded(s).method == "INVITE"]
    sched = agree(r)
    first_id = r.find(f"{first.peer.host}:{first.peer.port}").id  # type: ignore[union-attr]
    retry_id = r.find(f"{retry.peer.host}:{retry.peer.port}").id  # type: ignore[union-attr]
    assert sched.counts[first_id] == 0
    assert sched.counts[retry_id] == 1
    r.on_response(answer(forwarded(retry), 486), retry.peer, now=0.3)
    agree(r)
    assert sum(sched.counts.values()) == 0


def test_expired_and_replicated_calls_keep_hooks_and_counts_equal() -> None:
    r = router(dialog_timeout=10.0)
    for i in range(4):
        [out] = r.on_request(invite(call=f"c{i}", branch=f"z9hG4bK{i}"), UAC, now=0.0)
        if i % 2:
            r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    agree(r)
    standby = router()
    standby.state.apply(r.state.snapshot(now=1.0), now=1.0)
    assert sum(agree(standby).counts.values()) == 4
    standby.state.apply(r.state.snapshot(now=1.0), now=2.0)  # applied twice: no double count
    assert sum(agree(standby).counts.values()) == 4
    r.on_timer(12.0)  # confirmed dialogs expire; pending INVITEs ran out long ago
    r.on_timer(200.0)
    assert sum(agree(r).counts.values()) == 0


def test_a_scheduler_that_does_not_ask_gets_no_call_events() -> None:
    r = router("rr")
    assert not r.scheduler.wants_call_events
    assert r.state.calls is None
    counting = router()
    assert counting.state.calls is counting.scheduler
