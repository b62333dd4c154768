"""Server health as a state machine: OPTIONS probes, passive failures and operator commands.

Theory of operation
-------------------
Each server is in one `HealthState`. Inputs are `HealthInput` values: the result of one OPTIONS
probe, a passive failure seen by the failover path (no answer to an INVITE within the failover
time, or a 503), the end of a passive hold for a server that is not probed, and the operator's
commands. `TABLE` maps every (state, input) pair to an `Effect` on the counters and the next
state; there is no pair without an answer (a test walks all of them).

Thresholds work like Kamailio's dispatcher: an active server turns inactive after
`probing_threshold` consecutive failed probes (``ds_probing_threshold``) and an inactive one turns
active again after `inactive_threshold` consecutive good probes (``ds_inactive_threshold``).

A passive failure (an INVITE unanswered within the failover time, or a 503) makes an active
server `SUSPECT` at once: it gets no new call, but its dialogs and open transactions stay with
it, because one silent transaction is weak evidence (a lost datagram, or our own stall) and
moving a live server's dialogs sends their ACKs and BYEs where nobody knows them. The router
probes a suspect server at once: a failed probe confirms it (`INACTIVE`: its dialogs move to
the others, its ringing transactions fail over), `inactive_threshold` good probes clear it. A
server with probing off has nothing to confirm or clear it, so the passive failure holds it
suspect for `suspect_hold` seconds and the `HOLD_EXPIRED` input returns it.

Operators own `DISABLED` and `DRAINING`: probes and passive failures never move a server out of
them (a draining server keeps its dialogs whatever its probes say); only a command does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "OPERATOR_STATES",
    "TABLE",
    "Effect",
    "HealthChange",
    "HealthInput",
    "HealthSettings",
    "HealthState",
    "ServerHealth",
]


class HealthState(enum.Enum):
    ACTIVE = "active"
    """Receives new calls."""
    SUSPECT = "suspect"
    """Failed one transaction (passive detection): no new calls, keeps its dialogs; probed at
    once to confirm (inactive) or clear (active) it."""
    INACTIVE = "inactive"
    """Down, by probes or an operator: no new calls, its dialogs move; probed until it
    recovers."""
    DISABLED = "disabled"
    """Taken out by an operator: no new calls, no probes."""
    DRAINING = "draining"
    """Set by an operator: no new calls; existing dialogs continue."""


OPERATOR_STATES = (
    HealthState.ACTIVE, HealthState.INACTIVE, HealthState.DISABLED, HealthState.DRAINING
)
"""The states an operator may set (a suspicion is the router's to raise)."""


class HealthInput(enum.Enum):
    PROBE_OK = "probe answered with an accepted code"
    PROBE_FAILED = "probe failed"
    PASSIVE_FAILURE = "passive failure"
    HOLD_EXPIRED = "passive hold expired"
    SET_ACTIVE = "operator set active"
    SET_INACTIVE = "operator set inactive"
    SET_DISABLED = "operator set disabled"
    SET_DRAINING = "operator set draining"


class Effect(enum.Enum):
    NONE = "none"
    COUNT_SUCCESS = "count a success; move when inactive_threshold is reached"
    COUNT_FAILURE = "count a failure; move when probing_threshold is reached"
    RESET = "reset both counters and move"


_S = HealthState
_I = HealthInput
_E = Effect


def _build_table() -> dict[tuple[HealthState, HealthInput], tuple[Effect, HealthState]]:
    table: dict[tuple[HealthState, HealthInput], tuple[Effect, HealthState]] = {}
    # Operator commands apply from every state.
    for s in _S:
        table[(s, _I.SET_ACTIVE)] = (_E.RESET, _S.ACTIVE)
        table[(s, _I.SET_INACTIVE)] = (_E.RESET, _S.INACTIVE)
        table[(s, _I.SET_DISABLED)] = (_E.RESET, _S.DISABLED)
        table[(s, _I.SET_DRAINING)] = (_E.RESET, _S.DRAINING)
    table[(_S.ACTIVE, _I.PROBE_OK)] = (_E.COUNT_SUCCESS, _S.ACTIVE)
    table[(_S.ACTIVE, _I.PROBE_FAILED)] = (_E.COUNT_FAILURE, _S.INACTIVE)
    table[(_S.ACTIVE, _I.PASSIVE_FAILURE)] = (_E.RESET, _S.SUSPECT)
    table[(_S.ACTIVE, _I.HOLD_EXPIRED)] = (_E.NONE, _S.ACTIVE)
    table[(_S.SUSPECT, _I.PROBE_OK)] = (_E.COUNT_SUCCESS, _S.ACTIVE)
    table[(_S.SUSPECT, _I.PROBE_FAILED)] = (_E.RESET, _S.INACTIVE)  # the suspicion confirmed
    table[(_S.SUSPECT, _I.PASSIVE_FAILURE)] = (_E.NONE, _S.SUSPECT)
    table[(_S.SUSPECT, _I.HOLD_EXPIRED)] = (_E.RESET, _S.ACTIVE)
    table[(_S.INACTIVE, _I.PROBE_OK)] = (_E.COUNT_SUCCESS, _S.ACTIVE)
    table[(_S.INACTIVE, _I.PROBE_FAILED)] = (_E.COUNT_FAILURE, _S.INACTIVE)
    table[(_S.INACTIVE, _I.PASSIVE_FAILURE)] = (_E.RESET, _S.INACTIVE)
    table[(_S.INACTIVE, _I.HOLD_EXPIRED)] = (_E.NONE, _S.INACTIVE)  # holds are for suspects
    # Operator states ignore everything but commands (counters still track probe results so
    # the API can show whether a draining server still answers).
    for s in (_S.DISABLED, _S.DRAINING):
        table[(s, _I.PROBE_OK)] = (_E.COUNT_SUCCESS, s)
        table[(s, _I.PROBE_FAILED)] = (_E.COUNT_FAILURE, s)
        table[(s, _I.PASSIVE_FAILURE)] = (_E.NONE, s)
        table[(s, _I.HOLD_EXPIRED)] = (_E.NONE, s)
    return table


TABLE = _build_table()
"""(state, input) -> (effect on counters, next state); complete over all pairs."""


@dataclass(frozen=True, slots=True)
class HealthSettings:
    probing_threshold: int = 2
    """Failed probes in a row that make an active server inactive (ds_probing_threshold)."""
    inactive_threshold: int = 2
    """Good probes in a row that make an inactive server active (ds_inactive_threshold)."""
    suspect_hold: float = 5.0
    """Seconds a passive failure holds an unprobed server suspect."""


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A state change, with the reason it happened (logged and shown by the API)."""

    server_id: str
    old: HealthState
    new: HealthState
    cause: str
    at: float


class ServerHealth:
    """The health of one server: state plus consecutive success/failure counters."""

    __slots__ = ("failures", "hold_until", "settings", "state", "successes")

    def __init__(self, settings: HealthSettings, state: HealthState = HealthState.ACTIVE) -> None:
        self.settings = settings
        self.state = state
        self.successes = 0
        self.failures = 0
        self.hold_until: float | None = None

    def observe(
        self, event: HealthInput, *, server_id: str, now: float, detail: str = "", probing: bool
    ) -> HealthChange | None:
        """Apply one input; return the change it caused, or None."""
        effect, target = TABLE[(self.state, event)]
        old = self.state
        new = old
        if effect is Effect.COUNT_SUCCESS:
            self.failures = 0
            self.successes += 1
            if self.successes >= self.settings.inactive_threshold:
                new = target
        elif effect is Effect.COUNT_FAILURE:
            self.successes = 0
            self.failures += 1
            if self.failures >= self.settings.probing_threshold:
                new = target
        elif effect is Effect.RESET:
            self.successes = 0
            self.failures = 0
            new = target
        if event is HealthInput.PASSIVE_FAILURE and new is HealthState.SUSPECT and not probing:
            self.hold_until = now + self.settings.suspect_hold
        elif new is not HealthState.SUSPECT:
            self.hold_until = None
        if new is old:
            return None
        self.state = new
        cause = event.value if not detail else f"{event.value}: {detail}"
        if effect is Effect.COUNT_SUCCESS:
            cause += f" ({self.successes} in a row)"
        elif effect is Effect.COUNT_FAILURE:
            cause += f" ({self.failures} in a row)"
        return HealthChange(server_id, old, new, cause, now)
