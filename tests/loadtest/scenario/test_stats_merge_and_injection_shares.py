"""What distributing a scenario over agents will rest on: statistics that merge exactly, and
injection files cut into disjoint shares that together are the whole file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.injection import load_injection
from sipha.loadtest.scenario.stats import RtdStats, ScenarioStats, StepStats
from tests.loadtest.scenario.helpers import engine, pump


def _run(calls: int, seed: int) -> ScenarioStats:
    a = engine(builtin_text("uac").decode(), seed=seed)
    b = engine(builtin_text("uas").decode(), port=5062, remote=5061, seed=seed)
    for _ in range(calls):
        a.start_call(0.0)
    pump(a, b, until=0.05)
    return a.stats


def test_two_agents_merge_to_the_sum() -> None:
    one, two = _run(3, 1), _run(5, 2)
    total = ScenarioStats(steps=[StepStats() for _ in one.steps])
    total.merge(one)
    total.merge(two)
    assert (total.created, total.successful, total.failed_calls) == (8, 8, 0)
    assert [s.messages for s in total.steps] == [
        x.messages + y.messages for x, y in zip(one.steps, two.steps, strict=True)]
    assert total.rtd["1"].count == 8
    assert total.rtd["1"].low == min(one.rtd["1"].low, two.rtd["1"].low)
    assert sum(total.rtd["1"].buckets) == 8


# Each example builds three HDR histograms (17k buckets each): no deadline on a loaded host.
@settings(deadline=None, max_examples=50)
@given(st.lists(st.floats(0, 20), max_size=30), st.lists(st.floats(0, 20), max_size=30))
def test_rtd_merge_equals_one_stream(xs: list[float], ys: list[float]) -> None:
    bounds = (10.0, 100.0, 1000.0)
    a, b, both = RtdStats(), RtdStats(), RtdStats()
    for x in xs:
        a.add(x, bounds)
        both.add(x, bounds)
    for y in ys:
        b.add(y, bounds)
        both.add(y, bounds)
    a.merge(b)
    assert (a.count, a.low, a.high, a.buckets) == (both.count, both.low, both.high,
                                                   both.buckets)
    assert a.total == pytest.approx(both.total)
    # The HDR histograms add: the merged one is the histogram of every sample.
    assert (a.hist is None) == (both.hist is None)
    if a.hist is not None and both.hist is not None:
        assert a.hist.get_total_count() == both.hist.get_total_count() == len(xs) + len(ys)
        for q in (0.0, 50.0, 99.0, 100.0):
            assert a.hist.get_value_at_percentile(q) == both.hist.get_value_at_percentile(q)


def test_different_scenarios_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different scenarios"):
        ScenarioStats(steps=[StepStats()]).merge(ScenarioStats(steps=[]))


@pytest.mark.parametrize("agents", [1, 2, 3, 7])
def test_shares_are_disjoint_and_whole(tmp_path: Path, agents: int) -> None:
    f = tmp_path / "users.csv"
    f.write_text("SEQUENTIAL,PRINTF=10\nuser%02d;pw\nspare%02d;pw\n")
    whole = load_injection(f)
    seen: list[str] = []
    for k in range(agents):
        share = load_injection(f)
        share.share(k, agents)
        rng = random.Random(0)
        seen += [share.line(share.pick(rng=rng, userid=0)) for _ in range(len(share))]
    assert sorted(seen) == sorted(whole.line(v) for v in range(len(whole)))
    assert len(set(seen)) == len(seen) == 20


def test_an_empty_share_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "two.csv"
    f.write_text("USER\na\nb\n")
    inj = load_injection(f)
    with pytest.raises(ValueError, match="share 2 of 3"):
        inj.share(2, 3)
