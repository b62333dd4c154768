"""Enums hashed by identity, for the tables the hot paths look up on every message.

``enum.Enum.__hash__`` is a Python-level ``hash(self._name_)``: every lookup in a table keyed
by ``(state, input)`` paid a Python function call per member (a tenth of the server's
transaction-layer time under load). Members are singletons compared by identity, so the
identity hash of ``object`` is equally correct and runs in C.
"""

from __future__ import annotations

import enum

__all__ = ["IdentityEnum"]


class IdentityEnum(enum.Enum):
    """An :class:`enum.Enum` whose members hash by identity (see the module docstring)."""

    __hash__ = object.__hash__
