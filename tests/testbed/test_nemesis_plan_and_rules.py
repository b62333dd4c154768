"""The nemesis without a kernel: which pairs a fault acts on, when it starts and heals, the tc
and nftables configuration it asks for; and every broken network fault in a plan names the
field and the fix."""

from __future__ import annotations

import pytest

from sipha.common.config import ConfigError
from sipha.testbed.nemesis import (
    Nemesis,
    netem_args,
    nft_script,
    pairs_of,
    split_params,
    tc_commands,
)
from sipha.testbed.plan import Fault, parse_plan, with_hosts

HOSTS = ["d1", "d2", "s1", "s2"]
GROUPS = {"servers": ["s1", "s2"], "dispatchers": ["d1", "d2"]}
ADDRESSES = {"d1": ["10.0.0.11", "10.0.0.10"], "d2": ["10.0.0.12", "10.0.0.10"],
             "s1": ["10.0.0.21"], "s2": ["10.0.0.22"]}


def pairs(f: Fault) -> set[tuple[str, str]]:
    return pairs_of(f, hosts=HOSTS, groups=GROUPS, dispatchers=["d1", "d2"])


def test_pairs_of_each_kind_of_target() -> None:
    assert pairs(Fault(at=0, action="loss", link=["s1", "d1"], percent=1)) == {
        ("s1", "d1"), ("d1", "s1")}
    assert pairs(Fault(at=0, action="loss", target="s1", percent=1)) == {
        (a, b) for x in HOSTS if x != "s1" for a, b in (("s1", x), (x, "s1"))}
    assert pairs(Fault(at=0, action="split_pair")) == {("d1", "d2"), ("d2", "d1")}
    part = pairs(Fault(at=0, action="partition", groups=[["s1"], ["dispatchers"]]))
    assert part == {("s1", "d1"), ("d1", "s1"), ("s1", "d2"), ("d2", "s1")}
    group = pairs(Fault(at=0, action="delay", target="servers", delay_ms=5))
    assert ("s1", "s2") in group
    assert ("d1", "d2") not in group


def nemesis(*faults: Fault) -> Nemesis:
    return Nemesis(list(faults), addresses=ADDRESSES, groups=GROUPS, dispatchers=["d1", "d2"])


def test_faults_start_and_heal_on_time_by_duration_name_or_heal_all() -> None:
    n = nemesis(Fault(at=1, action="loss", target="s1", percent=5, duration=2),
                Fault(at=1, action="partition", name="cut", groups=[["s2"], ["d1"]]),
                Fault(at=2, action="split_pair"),
                Fault(at=4, action="heal", target="cut"),
                Fault(at=6, action="heal"))
    assert n.next_deadline() == 1
    assert [(t.index, t.started) for t in n.due(1.0)] == [(0, True), (1, True)]
    assert [(t.index, t.started) for t in n.due(3.0)] == [(2, True), (0, False)]
    assert [(t.index, t.started) for t in n.due(4.0)] == [(1, False)]
    assert [f.action for f in n.active] == ["split_pair"]
    # The heal-all at 6 s ends the split; the loss healed itself already and is not repeated.
    assert [(t.index, t.started) for t in n.due(6.0)] == [(2, False)]
    assert n.active == []
    assert n.next_deadline() is None


def test_desired_merges_faults_per_pair_and_never_blocks_own_address() -> None:
    n = nemesis(Fault(at=0, action="loss", target="servers", percent=5),
                Fault(at=0, action="delay", target="servers", delay_ms=20, jitter_ms=10),
                Fault(at=0, action="split_pair"))
    n.due(0.0)
    d = n.desired()
    assert d.netem["d1"]["10.0.0.21"] == {"loss": 5, "loss_correlation": 0.0, "delay_ms": 20,
                                         "jitter_ms": 10, "delay_correlation": 0.0}
    assert "10.0.0.12" not in d.netem["d1"]  # d1 -> d2 is not a server link
    # The peers share the service address: each blocks the other's own address only.
    assert d.blocked["d1"] == frozenset({"10.0.0.12"})
    assert d.blocked["d2"] == frozenset({"10.0.0.11"})
    assert d.blocked["s1"] == frozenset()


def test_netem_arguments() -> None:
    assert netem_args({"delay_ms": 20, "jitter_ms": 10, "delay_correlation": 25}) == [
        "delay", "20ms", "10ms", "25%"]
    assert netem_args({"reorder": 25}) == ["delay", "10ms", "reorder", "25%"]
    assert netem_args({"loss": 5, "loss_correlation": 0}) == ["loss", "5%"]
    assert netem_args({"rate_kbit": 512}) == ["rate", "512kbit"]


def test_tc_tree_has_an_unlimited_default_and_a_class_per_setting() -> None:
    assert tc_commands({}) == [["qdisc", "del", "dev", "eth0", "root"]]
    cmds = tc_commands({"10.0.0.21": {"delay_ms": 20}, "10.0.0.22": {"delay_ms": 20},
                        "10.0.0.11": {"rate_kbit": 64}})
    text = [" ".join(c) for c in cmds]
    assert "qdisc add dev eth0 root handle 1: htb default 1" in text
    assert "class add dev eth0 parent 1: classid 1:1 htb rate 10gbit" in text
    assert any("rate 64kbit ceil 64kbit" in t for t in text)
    assert sum("netem delay 20ms" in t for t in text) == 1  # one class for both servers
    assert sum(t.startswith("filter add") for t in text) == 3


def test_nftables_script_blocks_both_ways_and_draws_random_shares() -> None:
    assert "drop" not in nft_script(frozenset())
    script = nft_script(frozenset({"10.0.0.12"}),
                        random={"10.0.0.21": {"loss": 5}, "10.0.0.22": {"duplicate": 100}})
    assert 'iifname "eth0" ip saddr { 10.0.0.12 } drop' in script
    assert 'oifname "eth0" ip daddr { 10.0.0.12 } drop' in script
    assert "ip daddr 10.0.0.21 numgen random mod 10000 < 500 drop" in script
    assert 'ip daddr 10.0.0.22 dup to 10.0.0.22 device "eth0"' in script
    assert split_params({"loss": 5, "delay_ms": 3}, netem=False) == (
        {"delay_ms": 3}, {"loss": 5})
    assert split_params({"loss": 5}, netem=True) == ({"loss": 5}, {})


BASE = {
    "name": "n",
    "hosts": {"mode": "netns"},
    "servers": {"count": 2},
    "testers": [{"name": "t1"}],
    "phases": [{"duration": 10, "rate": 5}],
}


@pytest.mark.parametrize(
    ("fault", "field", "words"),
    [
        ({"action": "loss", "target": "s1"}, "faults[0].percent", "percent = 5"),
        ({"action": "loss", "target": "s9", "percent": 5}, "faults[0].target", "servers"),
        ({"action": "delay", "target": "s1"}, "faults[0].delay_ms", "delay_ms = 20"),
        ({"action": "rate", "target": "s1"}, "faults[0].kbit", "kbit = 512"),
        ({"action": "loss", "link": ["s1"], "percent": 5}, "faults[0].link", "link = [X, Y]"),
        ({"action": "loss", "link": ["s1", "d1"], "target": "s1", "percent": 5},
         "faults[0].target", "give one"),
        ({"action": "partition", "groups": [["s1"]]}, "faults[0].groups", "two or more"),
        ({"action": "partition", "groups": [["s1"], ["s1", "d1"]]}, "faults[0].groups[1]",
         "one group"),
        ({"action": "heal", "target": "nope"}, "faults[0].target", "leave target empty"),
        ({"action": "cpu_hog", "target": "s1"}, "faults[0].duration", "duration = SECONDS"),
        ({"action": "kill", "target": "s1", "duration": 3}, "faults[0].duration",
         "remove duration"),
        ({"action": "loss", "target": "s1", "percent": 5, "correlation": 150},
         "faults[0].correlation", "0..100"),
    ],
)
def test_broken_network_fault_names_field_and_fix(fault: dict[str, object], field: str,
                                                  words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_plan({**BASE, "faults": [{"at": 1, **fault}]})
    assert info.value.field == field
    assert words in str(info.value)


def test_network_faults_need_netns_hosts_and_split_pair_a_pair() -> None:
    plan = {**BASE, "faults": [{"at": 1, "action": "split_pair", "duration": 2}]}
    assert parse_plan(plan).hosts.mode == "netns"
    with pytest.raises(ConfigError) as info:
        parse_plan({**plan, "hosts": {"mode": "loopback"}})
    assert info.value.field == "faults[0].action"
    assert "--hosts netns" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_plan({**plan, "dispatchers": {"count": 1}})
    assert "dispatchers.count = 2" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_plan({**BASE, "testers": [{"name": "s1"}]})
    assert info.value.field == "testers[0].name"
    loopback = parse_plan({**BASE, "hosts": {"mode": "loopback"}})
    assert with_hosts(loopback, "netns").hosts.mode == "netns"
    assert with_hosts(loopback, None) is loopback
