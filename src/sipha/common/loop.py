"""Running a node's main coroutine on uvloop (a hard dependency on Linux)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop where available, else the default loop."""
    if sys.platform == "linux":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)  # pragma: no cover - non-Linux development machines
