"""Helpers shared by the store tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sipha.store import Store, open_store

T = TypeVar("T")


def run_with(url: str, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store in a fresh event loop, run `fn`, close it."""

    async def main() -> T:
        store = open_store(url)
        try:
            return await asyncio.wait_for(fn(store), timeout=60)
        finally:
            await store.close()

    return asyncio.run(main())
