"""Each agent's share of a plan: rates divided, bounds and users split so the shares add up."""

from __future__ import annotations

import msgspec

from sipha.loadtest import protocol as p
from sipha.loadtest.scenario.wire import share_xml

__all__ = ["share_plan"]


def _split_int(total: int, k: int, index: int) -> int:
    base, extra = divmod(total, k)
    return base + (1 if index < extra else 0)


def share_plan(plan: p.Plan, *, agents: int, index: int, start_at: float) -> p.Plan:
    """Agent ``index``'s share of ``plan`` among ``agents``: rates divided, bounds split so the
    shares add up to the whole, users in disjoint ranges, a distinct seed, the common start;
    an XML scenario's injection rows in disjoint slices."""
    k = agents
    ramp = plan.ramp
    if ramp is not None:
        ramp = p.Ramp(start=ramp.start / k, step=ramp.step / k, interval=ramp.interval,
                      max=ramp.max / k)
    users = plan.users
    if users is not None and users.count >= k:
        first = users.first + sum(_split_int(users.count, k, i) for i in range(index))
        users = msgspec.structs.replace(users, first=first,
                                        count=_split_int(users.count, k, index))
    return msgspec.structs.replace(
        plan,
        rate=plan.rate / k,
        ramp=ramp,
        max_calls=None if plan.max_calls is None else _split_int(plan.max_calls, k, index),
        max_concurrent=(None if plan.max_concurrent is None
                        else max(_split_int(plan.max_concurrent, k, index), 1)),
        users=users,
        xml=None if plan.xml is None else share_xml(plan.xml, agents=k, index=index),
        seed=plan.seed + 7919 * index,
        start_at=start_at,
    )
