"""The server node's request-handling tasks and its draining (``SIGTERM``, ``sipha server``'s
graceful stop): tasks whose exceptions are logged, never propagated, and counted until they end,
so that a draining node knows when every request it received has had its final answer.

Mixed into :class:`sipha.server.node.ServerNode`, whose attributes these are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

log = logging.getLogger("sipha.server.node")

__all__ = ["Tasks"]

if TYPE_CHECKING:
    from sipha.server.answering import AnsweringService
    from sipha.server.proxy import Proxy


class Tasks:
    """Spawned tasks and draining (mixed into the node)."""

    draining: bool
    idle: asyncio.Event
    _inflight: int
    _spawn_task: Callable[[Coroutine[Any, Any, Any]], object] | None
    _tasks: set[asyncio.Task[Any]]
    proxy: Proxy
    answering: AnsweringService

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> object:
        """Run ``coro`` as a task whose exceptions are logged, never propagated."""
        self._inflight += 1  # counted from now: the task may not start before a drain check
        guarded = self._guard(coro)
        if self._spawn_task is not None:
            return self._spawn_task(guarded)
        task = asyncio.get_running_loop().create_task(guarded)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("request handling task failed")
        finally:
            self._inflight -= 1
            self._check_idle()

    def start_draining(self) -> None:
        """Refuse new calls and registrations (503); :attr:`idle` is set once every request
        received has had its final response."""
        self.draining = True
        self._check_idle()

    def _check_idle(self) -> None:
        # Transactions that only wait out Timer J/K/L absorb retransmissions; what must finish
        # is every request still without a final answer: proxied ones, ringing calls, and
        # requests waiting on the store.
        if (
            self.draining
            and not self.proxy.pending
            and not self.answering.unanswered
            and not self._inflight
        ):
            self.idle.set()

    async def wait_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
