"""The dispatcher's rate limiter (pike + htable ban list) on virtual time: only initial
requests count, sources over the limit window after window are banned, memory stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.protection import RateLimiter, Verdict, counted
from sipha.transport import Peer
from tests.dispatcher.test_router_decisions_virtual_time import (
    UAC,
    answer,
    forwarded,
    invite,
    make_router,
)


def test_only_initial_requests_count() -> None:
    assert counted("INVITE", in_dialog=False)
    assert counted("REGISTER", in_dialog=False)
    assert counted("OPTIONS", in_dialog=False)
    for method in ("ACK", "CANCEL"):
        assert not counted(method, in_dialog=False)
    for method in ("BYE", "ACK", "INVITE", "UPDATE", "INFO"):
        assert not counted(method, in_dialog=True)


def test_a_20_calls_per_second_caller_is_never_throttled_at_50_per_second() -> None:
    r = make_router(rate_limit=50)
    for n in range(100):  # five seconds of INVITE, 200, ACK, BYE, 200
        now = n / 20
        [out] = r.on_request(invite(call=f"c{n}", branch=f"z9hG4bKi{n}"), UAC, now)
        fwd = forwarded(out)
        r.on_response(answer(fwd, 200), out.peer, now + 0.01)
        ack = invite(call=f"c{n}", branch=f"z9hG4bKa{n}", method="ACK", to_tag="s1")
        bye = invite(call=f"c{n}", branch=f"z9hG4bKb{n}", method="BYE", to_tag="s1", cseq=2)
        assert len(r.on_request(ack, UAC, now + 0.02)) == 1
        assert len(r.on_request(bye, UAC, now + 0.03)) == 1
    assert r.stats.rate_limited == 0


def test_in_dialog_requests_of_a_throttled_source_still_pass() -> None:
    r = make_router(rate_limit=2)
    passed = [r.on_request(invite(call=f"c{i}", branch=f"z9hG4bK{i}"), UAC, 0.0) for i in range(5)]
    assert [len(x) for x in passed] == [1, 1, 0, 0, 0]
    bye = invite(call="c0", branch="z9hG4bKbye", method="BYE", to_tag="s1", cseq=2)
    assert len(r.on_request(bye, UAC, 0.1)) == 1
    cancel = invite(call="c1", branch="z9hG4bK1", method="CANCEL")
    assert len(r.on_request(cancel, UAC, 0.1)) == 1  # reaches the INVITE's server


def test_servers_are_exempt() -> None:
    r = make_router(rate_limit=1)
    server = next(iter(r.servers())).peer
    results = [
        r.on_request(invite(call=f"s{i}", branch=f"z9hG4bKs{i}"), Peer("udp", server.host,
                                                                        server.port), 0.0)
        for i in range(5)
    ]
    assert all(results)
    assert r.stats.rate_limited == 0


def test_over_the_limit_window_after_window_is_banned_then_released() -> None:
    lim = RateLimiter(3, 1.0, ban_after=2, ban_time=10.0)
    verdicts = [lim.check("10.0.0.1", 0.0) for _ in range(5)]
    assert verdicts == [Verdict.ALLOWED] * 3 + [Verdict.THROTTLED] * 2
    assert [lim.check("10.0.0.1", 1.0) for _ in range(5)][-1] is Verdict.THROTTLED
    # The second window over the limit ends: banned, even for its first request of a window.
    assert lim.check("10.0.0.1", 2.0) is Verdict.BANNED
    assert lim.banned("10.0.0.1", 11.9)
    assert lim.check("10.0.0.2", 2.0) is Verdict.ALLOWED  # others are not affected
    assert lim.check("10.0.0.1", 12.5) is Verdict.ALLOWED  # the ban expired (autoexpire)
    assert lim.bans == 1


def test_a_window_within_the_limit_clears_the_strikes() -> None:
    lim = RateLimiter(3, 1.0, ban_after=2, ban_time=10.0)
    for start in (0.0, 2.0, 4.0):  # over, within, over: never two in a row
        for _ in range(5):
            lim.check("10.0.0.1", start)
        lim.check("10.0.0.1", start + 1.0)
    assert lim.check("10.0.0.1", 6.0) is not Verdict.BANNED
    assert lim.bans == 0


def test_the_ban_list_is_bounded() -> None:
    lim = RateLimiter(1, 1.0, ban_after=1, ban_time=100.0, max_banned=10)
    for n in range(50):
        ip = f"10.1.0.{n}"
        lim.check(ip, float(n))
        lim.check(ip, float(n))
    lim.check("10.9.9.9", 60.0)
    assert lim.bans == 50
    assert lim.tracked_sources <= 10 + 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.floats(0, 0.2, allow_nan=False)), max_size=300
    )
)
def test_memory_bounded_and_a_polite_source_never_refused_among_a_flood(
    script: list[tuple[int, float]],
) -> None:
    lim = RateLimiter(5, 1.0, ban_after=2, ban_time=5.0, max_banned=8)
    now = 0.0
    next_polite = 0.0
    for source, dt in script:
        now += dt
        lim.check(f"10.2.0.{source}", now)
        if now >= next_polite:  # two requests a second, under a limit of five
            assert lim.check("192.0.2.1", now) is Verdict.ALLOWED
            next_polite = now + 0.5
        assert lim.tracked_sources <= 32 + 31 + 8


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimiter(5, ban_time=0)
