"""Plans: a good plan loads; every broken one names the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.testbed.plan import apply_profile, load_plan, parse_plan

PLANS = Path(__file__).resolve().parents[2] / "plans"

GOOD = """
name = "ok"
[servers]
count = 2
weights = [1, 2]
[[testers]]
name = "t1"
[[phases]]
duration = 10
rate = 5
[[faults]]
at = 3
action = "kill"
target = "s2"
"""


def _plan(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(text)
    return p


def test_good_plan_loads_with_defaults(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, GOOD))
    assert plan.servers.weights == [1, 2]
    assert plan.dispatchers.count == 2
    assert plan.testers[0].engine == "sipha"
    assert plan.load_duration == 10


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (("count = 2", "count = 3"), "servers.weights", "exactly 3 weights"),
        (("rate = 5", "rate = -5"), "phases[0].rate", ">= 0.0"),
        (("rate = 5", 'rate = "fast"'), "phases[0].rate", "type float"),
        (('target = "s2"', 'target = "s9"'), "faults[0].target", "name one of s1, s2, d1, d2"),
        (('action = "kill"', 'action = "nuke"'), "faults[0].action", "one of: kill, stop"),
        (("at = 3", "at = 99"), "faults[0].at", "inside the load phases"),
        (("weights = [1, 2]", "weigths = [1, 2]"), "servers.weigths", "check its spelling"),
        (('name = "t1"', 'name = "T 1"'), "testers[0].name", "a-z0-9"),
        (('name = "ok"', 'name = "ok"\n[dispatchers]\ntoken = 0.05'), "dispatchers.token",
         "heartbeat"),
        (("rate = 5", "rate = 5\nramp_step = 1"), "phases[0].ramp_max", "set ramp_max"),
        (('name = "ok"', 'name = "ok"\n[dispatchers]\nha = "keepalived"'), "dispatchers.ha",
         'mode = "netns"'),
    ],
)
def test_broken_plan_names_field_and_fix(
    tmp_path: Path, edit: tuple[str, str], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_plan(_plan(tmp_path, GOOD.replace(*edit, 1)))
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_sections_are_named() -> None:
    with pytest.raises(ConfigError, match="testers") as info:
        parse_plan({"name": "x", "phases": [{"duration": 1, "rate": 1}]})
    assert "[[testers]]" in info.value.fix
    with pytest.raises(ConfigError) as info2:
        parse_plan({"name": "x", "testers": [{"name": "a"}]})
    assert info2.value.field == "phases"


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_plan(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(_plan(tmp_path, "name = "))


def test_paper_profile_is_ipvs_like(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, "time_scale = 10\n" + GOOD))
    paper = apply_profile(plan, "paper")
    d = paper.dispatchers
    assert paper.profile == "paper"
    assert (d.scheduler, d.failover, d.failback) == (plan.dispatchers.scheduler, False, "preempt")
    assert d.probe.interval >= 1.0
    assert d.probe.probing_threshold == 3
    # The default profile leaves the plan's own settings alone.
    assert apply_profile(plan, "default").dispatchers == plan.dispatchers


@pytest.mark.parametrize(("scheduler", "paper_scheduler"),
                         [("wlc", "wlc"), ("wrr", "wrr"), ("hash-callid", "rr"), ("cl", "rr")])
def test_paper_profile_keeps_an_ipvs_scheduler(
    tmp_path: Path, scheduler: str, paper_scheduler: str
) -> None:
    # The paper's Case A ran IPVS's rr and wlc: Figure 7 must stay wlc in the paper profile.
    text = GOOD + f'[dispatchers]\nscheduler = "{scheduler}"\n'
    paper = apply_profile(load_plan(_plan(tmp_path, text)), "paper")
    assert paper.dispatchers.scheduler == paper_scheduler


@pytest.mark.parametrize("path", sorted(PLANS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_plans_validate_in_both_profiles(path: Path) -> None:
    plan = load_plan(path)
    for profile in ("default", "paper"):
        assert apply_profile(plan, profile).profile == profile  # type: ignore[arg-type]
