"""The load controller's view of one agent, as a table: (phase, input) -> (next phase, effects).

Theory of operation
-------------------
An agent *joins* (Hello answered with Welcome), is *running* once it has its Plan, and ends
*done* (its Done arrived) or *lost* (silent for ``lost_after``).  In between it may go
*missing*: silent for ``missing_after``, it no longer holds back the rows of the seconds it
has not reported, and the run says so; heard again (any message) it is *running* again, as
Locust's workers heal.  *Done* and *lost* are final: a lost agent that comes back has its
reports kept (nothing it counted is thrown away) but not its liveness.

Inputs are what the coordinator makes of a frame or of the clock; a frame is classified
before the table is consulted, so a report that fails validation (:mod:`admission`, a bad
snapshot) is ``REJECTED``, never a ``REPORT``.  Every pair has an answer (``TABLE`` is total,
checked at import and walked by a property test); the pairs that cannot happen in a correct
run (a report before the plan, a second start) answer *drop* or *ignore*, never raise.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TABLE", "AgentInput", "AgentPhase", "Effect", "RunStage", "transition"]


class AgentPhase(enum.Enum):
    JOINED = "joined"  # welcomed, waiting for the plan
    RUNNING = "running"  # has its plan, heard within missing_after
    MISSING = "missing"  # silent for missing_after; heals when heard
    DONE = "done"  # its Done arrived (final)
    LOST = "lost"  # silent for lost_after (final)


class RunStage(enum.Enum):
    JOINING = "joining"  # waiting for expect_agents Hellos (bounded by join_timeout)
    RUNNING = "running"  # plans sent; merging reports, writing rows
    FINISHED = "finished"  # every agent done or lost; all rows written
    FAILED = "failed"  # not enough agents joined in time


class AgentInput(enum.Enum):
    HELLO = "hello"
    HEARTBEAT = "heartbeat"
    REPORT = "report"  # a StatsReport that passed validation
    DONE = "done"  # a Done whose totals passed validation
    REJECTED = "rejected"  # undecodable, implausible, or a message agents never send
    START = "start"  # the coordinator sends the plans
    SILENT = "silent"  # missing_after passed since it was last heard
    SILENT_TOO_LONG = "silent-too-long"  # lost_after passed since it was last heard


class Effect(enum.Enum):
    WELCOME = "welcome"  # answer the Hello (negotiate)
    SEND_PLAN = "send-plan"
    HEARD = "heard"  # last_heard = now
    MERGE = "merge"  # the report goes into the run (deduplicated per agent and second)
    FINISH = "finish"  # take the Done's totals and reconcile them with the merged reports
    NOTE_MISSING = "note-missing"
    NOTE_BACK = "note-back"
    NOTE_LOST = "note-lost"
    DROP = "drop"  # count the frame as dropped, with its reason
    IGNORE = "ignore"


_P = AgentPhase
_I = AgentInput
_E = Effect

_LIVE_ANSWERS: Final = {
    _I.HELLO: (_E.HEARD,),
    _I.HEARTBEAT: (_E.HEARD,),
    _I.REPORT: (_E.HEARD, _E.MERGE),
    _I.DONE: (_E.HEARD, _E.FINISH),
    _I.REJECTED: (_E.DROP,),
    _I.START: (_E.IGNORE,),
}

TABLE: Final[dict[tuple[AgentPhase, AgentInput], tuple[AgentPhase, tuple[Effect, ...]]]] = {
    # Before the plan: a repeated Hello gets its Welcome again; nothing else is expected.
    (_P.JOINED, _I.HELLO): (_P.JOINED, (_E.WELCOME,)),
    (_P.JOINED, _I.HEARTBEAT): (_P.JOINED, (_E.IGNORE,)),
    (_P.JOINED, _I.REPORT): (_P.JOINED, (_E.DROP,)),
    (_P.JOINED, _I.DONE): (_P.JOINED, (_E.DROP,)),
    (_P.JOINED, _I.REJECTED): (_P.JOINED, (_E.DROP,)),
    (_P.JOINED, _I.START): (_P.RUNNING, (_E.SEND_PLAN, _E.HEARD)),
    (_P.JOINED, _I.SILENT): (_P.JOINED, (_E.IGNORE,)),  # join_timeout bounds this stage
    (_P.JOINED, _I.SILENT_TOO_LONG): (_P.JOINED, (_E.IGNORE,)),
    # Running: every message is a sign of life.
    **{(_P.RUNNING, i): (_P.DONE if i is _I.DONE else _P.RUNNING, e)
       for i, e in _LIVE_ANSWERS.items()},
    (_P.RUNNING, _I.SILENT): (_P.MISSING, (_E.NOTE_MISSING,)),
    (_P.RUNNING, _I.SILENT_TOO_LONG): (_P.LOST, (_E.NOTE_LOST,)),
    # Missing: heard again, it is running again (a Done ends it as usual).
    **{(_P.MISSING, i): (_P.DONE if i is _I.DONE else _P.RUNNING, (_E.NOTE_BACK, *e))
       for i, e in _LIVE_ANSWERS.items() if i not in (_I.REJECTED, _I.START)},
    (_P.MISSING, _I.REJECTED): (_P.MISSING, (_E.DROP,)),
    (_P.MISSING, _I.START): (_P.MISSING, (_E.IGNORE,)),
    (_P.MISSING, _I.SILENT): (_P.MISSING, (_E.IGNORE,)),
    (_P.MISSING, _I.SILENT_TOO_LONG): (_P.LOST, (_E.NOTE_LOST,)),
    # Done: reports may still be in flight behind nothing (Done comes last); a repeated
    # Done or a late beat changes nothing.
    (_P.DONE, _I.HELLO): (_P.DONE, (_E.IGNORE,)),
    (_P.DONE, _I.HEARTBEAT): (_P.DONE, (_E.IGNORE,)),
    (_P.DONE, _I.REPORT): (_P.DONE, (_E.MERGE,)),
    (_P.DONE, _I.DONE): (_P.DONE, (_E.IGNORE,)),
    (_P.DONE, _I.REJECTED): (_P.DONE, (_E.DROP,)),
    (_P.DONE, _I.START): (_P.DONE, (_E.IGNORE,)),
    (_P.DONE, _I.SILENT): (_P.DONE, (_E.IGNORE,)),
    (_P.DONE, _I.SILENT_TOO_LONG): (_P.DONE, (_E.IGNORE,)),
    # Lost: its reports are kept (the merge deduplicates), its liveness is not.
    (_P.LOST, _I.HELLO): (_P.LOST, (_E.IGNORE,)),
    (_P.LOST, _I.HEARTBEAT): (_P.LOST, (_E.IGNORE,)),
    (_P.LOST, _I.REPORT): (_P.LOST, (_E.MERGE,)),
    (_P.LOST, _I.DONE): (_P.LOST, (_E.IGNORE,)),
    (_P.LOST, _I.REJECTED): (_P.LOST, (_E.DROP,)),
    (_P.LOST, _I.START): (_P.LOST, (_E.IGNORE,)),
    (_P.LOST, _I.SILENT): (_P.LOST, (_E.IGNORE,)),
    (_P.LOST, _I.SILENT_TOO_LONG): (_P.LOST, (_E.IGNORE,)),
}

_missing = [(p, i) for p in AgentPhase for i in AgentInput if (p, i) not in TABLE]
if _missing:  # pragma: no cover - a table edit that leaves a hole fails at import
    raise AssertionError(f"agent phase table has no answer for {_missing}")


def transition(phase: AgentPhase, event: AgentInput) -> tuple[AgentPhase, tuple[Effect, ...]]:
    """The next phase and the effects, in order, for ``event`` in ``phase``."""
    return TABLE[phase, event]
