"""Which hosts a netns run has: one per node, and which of them carry their traffic through a
bump in the wire (the delay, reorder and corrupt faults on a kernel without sch_netem)."""

from __future__ import annotations

from sipha.testbed.addresses import AddressBlock
from sipha.testbed.plan import Plan, group_members
from sipha.testbed.redisnodes import store_addresses

__all__ = ["NETEM_ONLY", "netns_hosts", "wired_hosts"]

# Fault actions only sch_netem can apply.
NETEM_ONLY = frozenset({"delay", "reorder", "corrupt"})


def netns_hosts(plan: Plan, block: AddressBlock) -> dict[str, str]:
    """Host name -> address of every host of a netns run."""
    hosts = {f"d{i}": block.dispatcher(i) for i in range(1, plan.dispatchers.count + 1)}
    hosts |= {f"s{i}": block.server(i) for i in range(1, plan.servers.count + 1)}
    hosts |= store_addresses(plan, block)
    hosts["controller"] = block.controller
    hosts |= {t.name: block.tester(i) for i, t in enumerate(plan.testers, 1)}
    return hosts


def wired_hosts(plan: Plan) -> list[str]:
    """The hosts that carry a delay, reorder or corrupt fault's traffic through a bump in the
    wire when the kernel has no netem: each named host (a group's members), a link's first."""
    groups = group_members(plan)
    wired: list[str] = []
    for f in plan.faults:
        if f.action in NETEM_ONLY:
            for h in [f.link[0]] if f.link else groups.get(f.target, [f.target]):
                if h not in wired:
                    wired.append(h)
    return wired
