"""The live page beside a run that owns its own event loop (`sipha load`, `sipha run`).

The run keeps its loop and its timing to itself: the page's server runs on a loop in a thread
of its own (`LivePage`), and everything crosses between the two with ``call_soon_threadsafe``:
the run's per-second rows and events go onto the page's loop (the `Board` is only ever touched
there), and the page's controls come back onto the run's loop as calls of the run's `Controls`.
A slow browser can therefore never delay a call, and the page stays up when a node dies.

`LoadView` is the load tester's `LiveView` (one merged second at a time) feeding the board.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sipha.loadtest.stats import IntervalStats, failures_by_reason
from sipha.report.live.board import Board, Event
from sipha.report.live.server import ControlRefused, Controls, LiveServer

__all__ = ["LateControls", "LivePage", "LoadView", "RunControls"]

T = TypeVar("T")
CONTROL_TIMEOUT = 10.0


class RunControls:
    """`Controls` whose actions run on the run's own loop: each hop waits at most
    CONTROL_TIMEOUT for the run to act, and a refusal travels back as `ControlRefused`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *,
                 set_rate: Callable[[float], Awaitable[str]] | None = None,
                 stop: Callable[[], Awaitable[str]] | None = None,
                 fault: Callable[[str, str], Awaitable[str]] | None = None,
                 server_state: Callable[[str, str], Awaitable[str]] | None = None,
                 network: Callable[[str, str, Mapping[str, float]], Awaitable[str]]
                 | None = None) -> None:
        self.loop = loop
        self._set_rate, self._stop, self._fault, self._server_state = (
            set_rate, stop, fault, server_state)
        self._network = network

    @property
    def names(self) -> tuple[str, ...]:
        pairs = (("rate", self._set_rate), ("stop", self._stop), ("fault", self._fault),
                 ("server_state", self._server_state), ("network", self._network))
        return tuple(name for name, f in pairs if f is not None)

    async def _on_run_loop(self, make: Callable[[], Awaitable[T]] | None) -> T:
        if make is None:
            raise ControlRefused("this run does not take that control")
        future = asyncio.run_coroutine_threadsafe(_call(make), self.loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), CONTROL_TIMEOUT)
        except (TimeoutError, concurrent.futures.CancelledError) as exc:
            raise ControlRefused(f"the run did not act within {CONTROL_TIMEOUT:g} s") from exc
        except ValueError as exc:
            raise ControlRefused(str(exc)) from exc

    async def set_rate(self, rate: float) -> str:
        f = self._set_rate
        return await self._on_run_loop(None if f is None else lambda: f(rate))

    async def stop(self) -> str:
        return await self._on_run_loop(self._stop)

    async def fault(self, action: str, node: str) -> str:
        f = self._fault
        return await self._on_run_loop(None if f is None else lambda: f(action, node))

    async def server_state(self, server: str, state: str) -> str:
        f = self._server_state
        return await self._on_run_loop(None if f is None else lambda: f(server, state))

    async def network(self, kind: str, node: str, params: Mapping[str, float]) -> str:
        f = self._network
        return await self._on_run_loop(None if f is None else lambda: f(kind, node, params))


async def _call(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class LateControls:
    """The page's controls before the run has a loop to act on: refused until `bound` is set
    (the page must be up first, e.g. bound in the host's network namespace before a run
    enters another)."""

    def __init__(self) -> None:
        self.bound: RunControls | None = None

    def _target(self) -> RunControls:
        if self.bound is None:
            raise ControlRefused("the run is still starting")
        return self.bound

    async def set_rate(self, rate: float) -> str:
        return await self._target().set_rate(rate)

    async def stop(self) -> str:
        return await self._target().stop()

    async def fault(self, action: str, node: str) -> str:
        return await self._target().fault(action, node)

    async def server_state(self, server: str, state: str) -> str:
        return await self._target().server_state(server, state)

    async def network(self, kind: str, node: str, params: Mapping[str, float]) -> str:
        return await self._target().network(kind, node, params)


class LivePage:
    """The page's server on its own thread and loop; `update` runs a board edit there."""

    def __init__(self, board: Board, controls: Controls | None, *, host: str, port: int,
                 token: str | None = None, record_controls: bool = True,
                 results: Path | None = None) -> None:
        self.board = board
        self._server = LiveServer(board, controls, host=host, port=port, token=token,
                                  record_controls=record_controls, results=results)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sipha-live-page",
                                        daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def token(self) -> str:
        return self._server.token

    def start(self) -> None:
        """Bind and serve; raises OSError when the address is taken."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(10)

    def update(self, edit: Callable[[Board], Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the page's loop already closed
            self._loop.call_soon_threadsafe(edit, self.board)

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class LoadView:
    """A `LiveView` of the load tester that feeds the page; it may run beside the terminal
    view (`views` are called too)."""

    def __init__(self, page: LivePage, *views: Any) -> None:
        self.page = page
        self.views = [v for v in views if v is not None]
        self._last_calls: dict[str, int] = {}

    def second(self, second: int, stats: IntervalStats, totals: IntervalStats,
               target_rate: float) -> None:
        for v in self.views:
            v.second(second, stats, totals, target_rate)
        p = stats.percentiles("setup_200") if stats.calls_successful else {}
        row: dict[str, object] = {
            "attempted": stats.calls_attempted, "successful": stats.calls_successful,
            "failed": stats.calls_failed, "active": stats.concurrent_calls,
            "retransmissions": stats.retransmissions, "rate": target_rate,
            "failed_by_reason": failures_by_reason(stats.failed_by_reason),
        }
        for key in ("p50", "p90", "p99"):
            if key in p:
                row[f"{key}_ms"] = p[key]
        self.page.update(lambda board: board.add_row(second + 1, row))

    def agents(self, second: int, agents: dict[str, tuple[str, int]]) -> None:
        """Each agent's phase and the calls it has reported so far (from the controller)."""
        last = dict(self._last_calls)
        self._last_calls = {name: calls for name, (_phase, calls) in agents.items()}

        def edit(board: Board) -> None:
            for name, (phase, calls) in agents.items():
                rate = calls - last[name] if name in last else None
                board.set_agent(name, state=phase, rate=rate, calls=calls)

        self.page.update(edit)

    def event(self, text: str) -> None:
        for v in self.views:
            v.event(text)
        self.page.update(lambda board: board.add_event(
            Event(float(board.rows[-1]["t"]) if board.rows else 0.0, text[:64], "", "observed")))

    def close(self) -> None:
        for v in self.views:
            v.close()
        self.page.update(lambda board: board.finish())
