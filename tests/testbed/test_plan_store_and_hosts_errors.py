"""Plan checks of the Sentinel store, register+call phases and SSH hosts: each broken plan is
refused naming the field and the fix, and the good forms give the nodes and placement."""

from __future__ import annotations

from typing import Any

import pytest

from sipha.common.config import ConfigError
from sipha.testbed.addresses import AddressBlock
from sipha.testbed.commands import sipha_controller_command
from sipha.testbed.plan import node_names, parse_plan
from sipha.testbed.plan_hosts import placement
from sipha.testbed.redisnodes import sentinel_url, store_addresses, store_commands


def _data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "p", "testers": [{"name": "t1"}],
        "phases": [{"duration": 5, "rate": 5}],
        "servers": {"count": 2, "users": {"count": 10}},
    }
    data.update(extra)
    return data


def _host(name: str, nodes: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "address": "192.0.2.1", "key": "k", "known_hosts": "kh",
            "nodes": nodes, **extra}


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"store": {"kind": "redis-sentinel", "url": "redis://h:1/0"}}, "store.url",
         "redis-sentinel://"),
        ({"store": {"kind": "redis-sentinel", "options": "hold=5; rm -rf"}}, "store.options",
         "hold=5&cache_ttl=5"),
        ({"store": {"kind": "sqlite", "options": "hold=5"}}, "store.options", "redis-sentinel"),
        ({"store": {"kind": "redis-sentinel", "replicas": 9}}, "store.replicas", "<= 4"),
        ({"phases": [{"duration": 5, "rate": 5, "scenario": "register+call"}],
          "testers": [{"name": "t1", "engine": "sipp"}]}, "phases[0].scenario", "sipha"),
        ({"phases": [{"duration": 5, "rate": 5, "scenario": "register+call"}],
          "servers": {"count": 2}}, "servers.users.count", "servers.users.count"),
        ({"hosts": {"mode": "ssh"}}, "hosts.ssh", "[[hosts.ssh]]"),
        ({"hosts": {"mode": "loopback", "ssh": [_host("a", ["s1"])]}}, "hosts.ssh",
         'mode = "ssh"'),
        ({"hosts": {"mode": "ssh", "ssh": [_host("a", ["s9"])]}}, "hosts.ssh[0].nodes", "s1"),
        ({"hosts": {"mode": "ssh", "ssh": [_host("a", ["s1"]), _host("b", ["s1"])]}},
         "hosts.ssh[1].nodes", "one host"),
        ({"hosts": {"mode": "ssh", "ssh": [_host("a", [], key="")]}}, "hosts.ssh[0].key",
         "known_hosts"),
        ({"hosts": {"mode": "ssh", "ssh": [_host("a", [], workdir="rel")]}},
         "hosts.ssh[0].workdir", "/var/tmp"),
        ({"hosts": {"mode": "ssh", "block": "10.0.300", "ssh": [_host("a", [])]}},
         "hosts.block", "10.0.0"),
        ({"hosts": {"mode": "ssh", "ssh": [_host("a", ["s1"]), _host("b", ["s2"])]}},
         "store.kind", "place every server on one host"),
    ],
)
def test_broken_plan_names_field_and_fix(extra: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_plan(_data(**extra), source="t")
    assert info.value.field == field
    assert words in f"{info.value.problem} {info.value.fix}"


def test_sentinel_store_nodes_addresses_and_url(tmp_path: Any) -> None:
    plan = parse_plan(_data(store={"kind": "redis-sentinel", "replicas": 2,
                                   "options": "hold=5&cache_ttl=5"}))
    block = AddressBlock(7, 8)
    assert store_addresses(plan, block) == {
        "redis": "127.7.8.5", "redis-r1": "127.7.8.6", "redis-r2": "127.7.8.7",
        "sentinel1": "127.7.8.2", "sentinel2": "127.7.8.3", "sentinel3": "127.7.8.4"}
    assert set(store_addresses(plan, block)) <= set(node_names(plan))
    assert sentinel_url(plan, block) == ("redis-sentinel://127.7.8.2:26379,127.7.8.3:26379,"
                                         "127.7.8.4:26379/sipha/0?hold=5&cache_ttl=5")
    cmds = store_commands(plan, block, tmp_path, tmp_path)
    assert cmds[0].name == "redis"
    replica = next(c for c in cmds if c.name == "redis-r1")
    assert replica.argv[-3:] == ["--replicaof", "127.7.8.5", "6379"]
    conf = (tmp_path / "sentinel2.conf").read_text()
    assert "sentinel monitor sipha 127.7.8.5 6379 2" in conf
    assert "sentinel announce-ip 127.7.8.3" in conf


def test_register_call_phase_gives_the_controller_the_users(tmp_path: Any) -> None:
    plan = parse_plan(_data(phases=[{"duration": 5, "rate": 5, "scenario": "register+call",
                                     "expires": 20}]))
    cmd = sipha_controller_command(plan, 1, plan.phases[0], AddressBlock(7, 8),
                                   tmp_path / "x.jsonl", "controller")
    argv = cmd.argv
    assert "register+call" in argv
    assert argv[argv.index("--users") + 1] == "10"
    assert argv[argv.index("--expires") + 1] == "20"


def test_placement_by_node_name() -> None:
    plan = parse_plan(_data(store={"kind": "redis-sentinel"}, hosts={
        "mode": "ssh", "ssh": [_host("a", ["s1", "s2", "redis"]), _host("b", ["t1"])]}))
    assert placement(plan) == {"s1": "a", "s2": "a", "redis": "a", "t1": "b"}
