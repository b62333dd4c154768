"""[expect] in plans: per-profile criteria, and every malformed one refused at load, with the
field and the fix, before anything starts (``sipha run`` exits 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.cli import main
from sipha.common.config import ConfigError
from sipha.common.expect import Criteria
from sipha.testbed.plan import apply_profile, expect_for, load_plan

PLANS = Path(__file__).resolve().parents[2] / "plans"

PLAN = """
name = "ok"
[[testers]]
name = "t1"
[[phases]]
duration = 10
rate = 5
[[faults]]
at = 3
action = "kill"
target = "active-dispatcher"
"""


def _plan(tmp_path: Path, expect: str) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(PLAN + expect)
    return p


def test_keys_apply_to_both_profiles_and_profile_tables_override(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, """
[expect]
max_unfinished_calls = 0
max_takeover_ms = 300
[expect.default]
max_failed_calls = 0
[expect.paper]
min_success_ratio = 0.85
max_takeover_ms = 600
"""))
    assert expect_for(plan, "default") == Criteria(max_failed_calls=0, max_takeover_ms=300,
                                                   max_unfinished_calls=0)
    assert expect_for(apply_profile(plan, "paper")) == Criteria(
        min_success_ratio=0.85, max_takeover_ms=600, max_unfinished_calls=0)
    assert expect_for(load_plan(_plan(tmp_path, ""))).is_empty()


@pytest.mark.parametrize(("expect", "field", "fix"), [
    ("max_failed = 0", "expect.max_failed", "write one of: max_failed_calls"),
    ("max_failed_calls = -1", "expect.max_failed_calls", "whole number >= 0"),
    ("max_takeover_ms = -5.0", "expect.max_takeover_ms", "milliseconds >= 0"),
    ("min_success_ratio = 1.5", "expect.min_success_ratio", "between 0 and 1"),
    ('max_failed_calls = "none"', "expect.max_failed_calls", "whole number >= 0"),
    ("max_failed_calls = 0.5", "expect.max_failed_calls", "whole number >= 0"),
    ("max_unfinished_calls = true", "expect.max_unfinished_calls", "whole number >= 0"),
    ("[expect.papr]\nmax_failed_calls = 0", "expect.papr", "[expect.paper]"),
    ("[expect.paper]\nmin_success_ratio = -0.1", "expect.paper.min_success_ratio",
     "between 0 and 1"),
])
def test_malformed_expect_names_field_and_fix(
    tmp_path: Path, expect: str, field: str, fix: str
) -> None:
    text = expect if expect.startswith("[") else "[expect]\n" + expect
    with pytest.raises(ConfigError) as info:
        load_plan(_plan(tmp_path, text))
    assert info.value.field == field
    assert fix in info.value.fix


def test_criteria_the_plan_cannot_measure_are_refused(tmp_path: Path) -> None:
    no_switch = _plan(tmp_path, "[expect.paper]\nmax_takeover_ms = 300\n")
    no_switch.write_text(no_switch.read_text().replace('"active-dispatcher"', '"s1"'))
    with pytest.raises(ConfigError) as info:
        load_plan(no_switch)
    assert info.value.field == "expect.paper.max_takeover_ms"
    assert "kill or stop of active-dispatcher" in info.value.fix
    sipp_only = _plan(tmp_path, "[expect]\nmax_setup_p99_ms = 200\n")
    sipp_only.write_text(
        sipp_only.read_text().replace('name = "t1"', 'name = "t1"\nengine = "sipp"'))
    with pytest.raises(ConfigError, match="SIPp's files hold only a mean") as info2:
        load_plan(sipp_only)
    assert info2.value.field == "expect.max_setup_p99_ms"


def test_sipha_run_refuses_a_malformed_expect_with_exit_2_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _plan(tmp_path, "[expect]\nmax_failed_calls = -1\n")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expect.max_failed_calls" in err
    assert "fix: write a whole number >= 0" in err
    assert not out.exists()  # nothing started, nothing written


def test_shipped_plans_carry_the_papers_claims() -> None:
    c = load_plan(PLANS / "case-c-dispatcher-failure.toml")
    default, paper = expect_for(c, "default"), expect_for(c, "paper")
    assert (default.max_failed_calls, default.max_takeover_ms) == (0, 300)
    # The paper's setup is expected to lose calls, within a bound.
    assert paper.max_failed_calls is None
    assert paper.min_success_ratio is not None
    assert 0.5 < paper.min_success_ratio < 1
    b = load_plan(PLANS / "case-b-server-failure.toml")
    assert expect_for(b, "default").max_failed_calls == 0
    assert expect_for(b, "paper").min_success_ratio is not None
