"""Running a node's main coroutine on uvloop (a hard dependency on Linux), with the C
allocator told to give memory back after bursts (see :mod:`sipha.common.memory`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from .memory import trim_periodically, tune_allocator

T = TypeVar("T")


async def _trimming(main: Coroutine[Any, Any, T]) -> T:
    trimmer = asyncio.create_task(trim_periodically())
    try:
        return await main
    finally:
        trimmer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trimmer


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop where available, else the default loop."""
    tune_allocator()
    if sys.platform == "linux":
        import uvloop

        return uvloop.run(_trimming(main))
    return asyncio.run(_trimming(main))  # pragma: no cover - non-Linux development machines
