"""The dialplan: which Request-URI users the server answers itself, and how (pure).

Like an Asterisk extension list: rules are tried in order, the first whose pattern fully
matches the user part of the Request-URI wins. A user no rule matches is a subscriber: the
proxy looks it up in the location service.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sipha.server.config import AnswerRule, parse_action

__all__ = ["Action", "ActionKind", "Dialplan"]


class ActionKind(enum.Enum):
    ANSWER = "answer"  # 180, then 200 with SDP; hold until BYE or max_hold
    REJECT = "reject"  # a final error response (busy = 486)
    RING = "ring"  # 180 until CANCEL, or 480 at ring_timeout


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    status: int
    ring_time: float = 0.0
    max_hold: float = 3600.0
    ring_timeout: float = 120.0
    pattern: str = ""


class Dialplan:
    """Ordered answering rules. Raises ValueError for a bad pattern or action."""

    __slots__ = ("_cache", "_rules")

    def __init__(self, rules: Sequence[AnswerRule]) -> None:
        compiled: list[tuple[re.Pattern[str], Action]] = []
        for rule in rules:
            kind, status = parse_action(rule.action)
            action = Action(
                ActionKind(kind),
                status,
                ring_time=rule.ring_time,
                max_hold=rule.max_hold,
                ring_timeout=rule.ring_timeout,
                pattern=rule.pattern,
            )
            compiled.append((re.compile(rule.pattern), action))
        self._rules = compiled
        # Load tests call a handful of users millions of times: remember the verdicts.
        self._cache: dict[str, Action | None] = {}

    def __len__(self) -> int:
        return len(self._rules)

    def match(self, user: str | None) -> Action | None:
        """The action for Request-URI user ``user``, or None (route it as a subscriber)."""
        if user is None:
            return None
        cache = self._cache
        try:
            return cache[user]
        except KeyError:
            pass
        found = None
        for pattern, action in self._rules:
            if pattern.fullmatch(user):
                found = action
                break
        if len(cache) < 10_000:
            cache[user] = found
        return found
