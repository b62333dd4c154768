"""The membership table of an HA pair: roles, inputs and (role, input) -> (actions, next role).

Data only; `ha.membership` explains the design (its theory of operation) and runs the table.
Every pair has an answer: the defaults below, overridden by the rules of each role.
"""

from __future__ import annotations

import enum

__all__ = [
    "HOLDING_ROLES",
    "IDLE_ROLES",
    "SAME",
    "TABLE",
    "TAKE_OVER",
    "Do",
    "Entry",
    "Failback",
    "Input",
    "Next",
    "Role",
]


class Role(enum.Enum):
    STARTING = "starting"
    STANDBY = "standby"
    FENCING = "fencing"
    CLAIMING = "claiming"
    ACQUIRING = "acquiring"
    ACTIVE = "active"
    RELEASING = "releasing"


HOLDING_ROLES = frozenset({Role.ACTIVE, Role.RELEASING, Role.ACQUIRING})
"""Roles in which a node may have the address (bound, added or half-way)."""
IDLE_ROLES = frozenset({Role.STARTING, Role.STANDBY})
"""Roles in which a node certainly holds nothing."""


class Failback(enum.Enum):
    STICKY = "sticky"
    """A recovered node joins as standby (Pacemaker's resource-stickiness)."""
    PREEMPT = "preempt"
    """A recovered node of higher priority takes the address back once it is in sync."""


class Input(enum.Enum):
    STARTUP_WAIT_ENDED = "startup wait ended without a word from the peer"
    PEER_LOST = "peer lost"
    PEER_CRASHED = "replication stream lost and the peer's heartbeat silent"
    PEER_IDLE_WE_LEAD = "peer idle and we outrank it"
    PEER_IDLE_PEER_LEADS = "peer idle and it outranks us"
    PEER_HOLDING = "peer holds the address"
    PEER_HOLDING_PREEMPTIBLE = "peer holds the address, we outrank it and are in sync (preempt)"
    PEER_HOLDING_LOSES = "peer also active but its term/rank loses to ours"
    PEER_CLAIMING = "peer claims the address"
    FENCE_SUCCEEDED = "fence succeeded"
    FENCE_FAILED = "fence failed"
    ADDRESS_ACQUIRED = "address acquired"
    ADDRESS_RELEASED = "address released"
    PROMOTE_REQUESTED = "operator promote"
    DEMOTE_REQUESTED = "operator demote"
    CLAIM_TIMED_OUT = "peer did not release the address in time"


class Do(enum.Enum):
    """The imperative kinds used in the table; `Membership` turns them into `Action` values."""

    FENCE = "fence the peer"
    ACQUIRE = "acquire the address"
    RELEASE = "release the address"


class _Pseudo(enum.Enum):
    TAKE_OVER = "take over"
    SAME = "same"


TAKE_OVER = _Pseudo.TAKE_OVER
SAME = _Pseudo.SAME

Next = Role | _Pseudo
Entry = tuple[tuple[Do, ...], Next]

_R = Role
_I = Input


def _build_table() -> dict[tuple[Role, Input], Entry]:
    t: dict[tuple[Role, Input], Entry] = {}
    # Defaults, overridden below: every pair has an answer. Stray completions are ignored,
    # except a late ADDRESS_ACQUIRED, which must be undone (we no longer want the address).
    for r in Role:
        for i in Input:
            t[(r, i)] = ((), SAME)
        t[(r, _I.ADDRESS_ACQUIRED)] = ((Do.RELEASE,), SAME)
    none: tuple[Do, ...] = ()

    # STARTING: the first heartbeat (or the end of the wait) decides.
    t[(_R.STARTING, _I.STARTUP_WAIT_ENDED)] = (none, TAKE_OVER)
    t[(_R.STARTING, _I.PEER_LOST)] = (none, TAKE_OVER)
    t[(_R.STARTING, _I.PEER_CRASHED)] = (none, TAKE_OVER)
    t[(_R.STARTING, _I.PEER_IDLE_WE_LEAD)] = (none, TAKE_OVER)
    for i in (_I.PEER_IDLE_PEER_LEADS, _I.PEER_HOLDING, _I.PEER_HOLDING_PREEMPTIBLE,
              _I.PEER_HOLDING_LOSES, _I.PEER_CLAIMING, _I.DEMOTE_REQUESTED):
        t[(_R.STARTING, i)] = (none, _R.STANDBY)
    t[(_R.STARTING, _I.PROMOTE_REQUESTED)] = (none, TAKE_OVER)

    # STANDBY
    for i in (_I.PEER_LOST, _I.PEER_CRASHED, _I.PEER_IDLE_WE_LEAD,
              _I.PEER_HOLDING_PREEMPTIBLE, _I.PROMOTE_REQUESTED):
        t[(_R.STANDBY, i)] = (none, TAKE_OVER)

    # FENCING: once ordered, the fence's outcome decides; peer words are not trusted.
    t[(_R.FENCING, _I.FENCE_SUCCEEDED)] = ((Do.ACQUIRE,), _R.ACQUIRING)
    t[(_R.FENCING, _I.FENCE_FAILED)] = (none, SAME)  # retried by the timer (fence_retry)
    t[(_R.FENCING, _I.DEMOTE_REQUESTED)] = (none, _R.STANDBY)

    # CLAIMING: wait for the holder to turn idle.
    t[(_R.CLAIMING, _I.PEER_IDLE_WE_LEAD)] = ((Do.ACQUIRE,), _R.ACQUIRING)
    t[(_R.CLAIMING, _I.PEER_IDLE_PEER_LEADS)] = ((Do.ACQUIRE,), _R.ACQUIRING)
    t[(_R.CLAIMING, _I.PEER_LOST)] = (none, TAKE_OVER)
    t[(_R.CLAIMING, _I.PEER_CRASHED)] = (none, TAKE_OVER)
    t[(_R.CLAIMING, _I.PEER_CLAIMING)] = (none, _R.STANDBY)  # both claim: back off, rank decides
    t[(_R.CLAIMING, _I.CLAIM_TIMED_OUT)] = (none, _R.STANDBY)
    t[(_R.CLAIMING, _I.DEMOTE_REQUESTED)] = (none, _R.STANDBY)

    # ACQUIRING
    t[(_R.ACQUIRING, _I.ADDRESS_ACQUIRED)] = (none, _R.ACTIVE)
    t[(_R.ACQUIRING, _I.PEER_HOLDING)] = ((Do.RELEASE,), _R.RELEASING)
    t[(_R.ACQUIRING, _I.PEER_HOLDING_PREEMPTIBLE)] = ((Do.RELEASE,), _R.RELEASING)
    t[(_R.ACQUIRING, _I.DEMOTE_REQUESTED)] = ((Do.RELEASE,), _R.RELEASING)

    # ACTIVE
    t[(_R.ACTIVE, _I.ADDRESS_ACQUIRED)] = (none, SAME)
    t[(_R.ACTIVE, _I.PEER_HOLDING)] = ((Do.RELEASE,), _R.RELEASING)
    t[(_R.ACTIVE, _I.PEER_CLAIMING)] = ((Do.RELEASE,), _R.RELEASING)
    t[(_R.ACTIVE, _I.DEMOTE_REQUESTED)] = ((Do.RELEASE,), _R.RELEASING)
    # The address vanished under us (removed by hand): take it again.
    t[(_R.ACTIVE, _I.ADDRESS_RELEASED)] = ((Do.ACQUIRE,), _R.ACQUIRING)

    # RELEASING: finish the release whatever happens; STANDBY then re-decides.
    t[(_R.RELEASING, _I.ADDRESS_RELEASED)] = (none, _R.STANDBY)
    t[(_R.RELEASING, _I.ADDRESS_ACQUIRED)] = (none, SAME)  # the pending release covers it
    return t


TABLE: dict[tuple[Role, Input], Entry] = _build_table()
"""(role, input) -> (actions, next role); complete over all pairs."""
