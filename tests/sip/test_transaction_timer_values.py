"""Timer values of RFC 3261 Table 4 and RFC 6026 §8.4, per transport kind."""

from __future__ import annotations

import pytest

from sipha.sip.transaction import DEFAULT_TIMERS, TimerConfig, TimerName

T = TimerName


@pytest.mark.parametrize(
    ("timer", "udp", "tcp"),
    [
        (T.B, 32.0, 32.0),
        (T.D, 32.0, 0.0),
        (T.F, 32.0, 32.0),
        (T.H, 32.0, 32.0),
        (T.I, 5.0, 0.0),
        (T.J, 32.0, 0.0),
        (T.K, 5.0, 0.0),
        (T.L, 32.0, 32.0),
        (T.M, 32.0, 32.0),
    ],
)
def test_one_shot_timers_with_defaults(timer: TimerName, udp: float, tcp: float) -> None:
    assert DEFAULT_TIMERS.wait(timer, reliable=False) == udp
    assert DEFAULT_TIMERS.wait(timer, reliable=True) == tcp


def test_defaults_are_the_rfc_values() -> None:
    assert TimerConfig() == TimerConfig(t1=0.5, t2=4.0, t4=5.0)
    assert DEFAULT_TIMERS.timeout == 32.0


def test_scaled_t1_scales_64_t1_timers() -> None:
    fast = TimerConfig(t1=0.1, t2=1.0, t4=2.0)
    assert fast.wait(T.B, reliable=False) == pytest.approx(6.4)
    assert fast.wait(T.J, reliable=False) == pytest.approx(6.4)
    assert fast.wait(T.K, reliable=False) == 2.0
    assert fast.wait(T.D, reliable=False) == 32.0  # "at least 32 s", not 64*T1


def test_retransmit_intervals() -> None:
    c = DEFAULT_TIMERS
    assert [c.first_interval(t) for t in (T.A, T.E, T.G)] == [0.5, 0.5, 0.5]
    a = [0.5]
    e = [0.5]
    for _ in range(5):
        a.append(c.next_interval(T.A, a[-1]))
        e.append(c.next_interval(T.E, e[-1]))
    assert a == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]  # A is not capped
    assert e == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # E (and G) stop at T2
    assert c.next_interval(T.G, 4.0) == 4.0


def test_misuse_of_timer_kinds_and_bad_values_raise() -> None:
    with pytest.raises(ValueError, match="retransmit"):
        DEFAULT_TIMERS.wait(T.A, reliable=False)
    with pytest.raises(ValueError, match="not a retransmit"):
        DEFAULT_TIMERS.first_interval(T.B)
    with pytest.raises(ValueError, match="not a retransmit"):
        DEFAULT_TIMERS.next_interval(T.H, 1.0)
    with pytest.raises(ValueError, match="positive"):
        TimerConfig(t1=0)
    with pytest.raises(ValueError, match="T2"):
        TimerConfig(t1=5.0, t2=4.0)
