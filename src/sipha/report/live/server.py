"""The live page's web server: the page, a WebSocket that pushes the `Board` every second, and
token-guarded controls.

Reading is open (whoever reaches the address sees the run, as with a Locust or Grafana page on
a lab network); acting is not. Every control is a POST with ``Authorization: Bearer TOKEN``: the
token is made at random, printed once on the console, and never put in a URL (URLs end up in
logs and browser histories). The page asks for it and keeps it in the tab's sessionStorage.

Bounds: request bodies at most 4 KiB, JSON objects with known keys only, rates within
(0, 100000], node and server names among those the board knows; anything else is a 4xx with
the reason. The owner's `Controls` decides what each action means and returns a line for the
run's events; the board records the action as an event with source ``control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from sipha.report.live.board import Board, Event
from sipha.report.live.results import add_results_routes

__all__ = ["FAULT_ACTIONS", "NETWORK_KINDS", "SERVER_STATES", "ControlRefused", "Controls",
           "LiveServer"]

log = logging.getLogger(__name__)

PUSH_INTERVAL = 1.0
MAX_BODY = 4096
MAX_RATE = 100_000.0
MAX_PAGES = 64  # WebSocket clients at once
FAULT_ACTIONS = frozenset({"kill", "stop", "cont", "start"})
SERVER_STATES = frozenset({"active", "draining", "disabled"})
NETWORK_KINDS = frozenset({"loss", "delay", "partition", "split_pair", "heal"})
# Bounds of a network fault's numbers: (low, high], as the plan's faults take them.
NETWORK_PARAMS = {"percent": 100.0, "delay_ms": 10_000.0, "duration": 600.0}
_STATIC = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
           "/app.css": ("app.css", "text/css"),
           "/uPlot.iife.min.js": ("uPlot.iife.min.js", "text/javascript"),
           "/uPlot.min.css": ("uPlot.min.css", "text/css")}


class ControlRefused(Exception):
    """The owner cannot do this now (e.g. the node is already killed): HTTP 409."""


class Controls(Protocol):
    """What a run lets the page do; each returns a short description for the events."""

    async def set_rate(self, rate: float) -> str: ...

    async def stop(self) -> str: ...

    async def fault(self, action: str, node: str) -> str: ...

    async def server_state(self, server: str, state: str) -> str: ...

    async def network(self, kind: str, node: str, params: Mapping[str, float]) -> str: ...


class LiveServer:
    """Serves one board on HOST:PORT until `close`."""

    def __init__(self, board: Board, controls: Controls | None, *, host: str = "127.0.0.1",
                 port: int = 0, token: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 epoch: float | None = None, record_controls: bool = True,
                 results: Path | None = None) -> None:
        self.board = board
        self.controls = controls
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(18)
        self._clock = clock
        # False when the owner records each control in its own events (the test bed does, on
        # the run's timeline), so the page does not show it twice.
        self.record_controls = record_controls
        # Second 0 of the run on `clock`: control events are placed on the rows' timeline.
        self._started = clock() if epoch is None else epoch
        self._runner: web.AppRunner | None = None
        self._pages: set[web.WebSocketResponse] = set()
        self.refused = 0  # control requests turned away (no/bad token, bad body)
        self.app = web.Application(client_max_size=MAX_BODY)
        for path in _STATIC:
            self.app.router.add_get(path, self._static)
        self.app.router.add_get("/ws", self._ws)
        self.app.router.add_get("/api/state", self._state)
        self.app.router.add_post("/api/control", self._control)
        if results is not None:  # the results index beside the run (read-only)
            add_results_routes(self.app, results)
            board.results_index = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp keeps the asyncio server here; we need the real port
        if server is not None and self.port == 0:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def close(self) -> None:
        for ws in list(self._pages):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def now(self) -> float:
        """Seconds since the server started: the time of control events."""
        return round(self._clock() - self._started, 3)

    # -- pages ----------------------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name, kind = _STATIC[request.path]
        body = resources.files("sipha.report.live").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=kind,
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": "default-src 'self'; "
                                     "connect-src 'self'; style-src 'self' 'unsafe-inline'"})

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.board.snapshot())

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if len(self._pages) >= MAX_PAGES:
            return web.json_response({"error": "too many pages open"}, status=503)
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_BODY)
        await ws.prepare(request)
        self._pages.add(ws)
        try:
            await ws.send_str(json.dumps(self.board.snapshot()))
            rows, events, version = self.board.rows_added, self.board.events_added, -1
            reader = asyncio.ensure_future(ws.receive())
            while not ws.closed:
                done, _ = await asyncio.wait({reader}, timeout=PUSH_INTERVAL)
                if done:
                    msg = reader.result()
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    reader = asyncio.ensure_future(ws.receive())  # the page says nothing: ignore
                    continue
                if self.board.version != version:
                    version = self.board.version
                    update = self.board.update_since(rows, events)
                    rows, events = self.board.rows_added, self.board.events_added
                    await ws.send_str(json.dumps(update))
            reader.cancel()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self._pages.discard(ws)
        return ws

    # -- controls -------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refused += 1
        return web.json_response({"error": reason}, status=status)

    async def _control(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._refuse(401, "missing or bad token: controls need the run's token")
        if self.controls is None:
            return self._refuse(409, "this run accepts no controls")
        try:
            body = await request.json()
        except (ValueError, web.HTTPRequestEntityTooLarge):
            return self._refuse(400, f"body: expected a JSON object of at most {MAX_BODY} bytes")
        if not isinstance(body, dict):
            return self._refuse(400, "body: expected a JSON object")
        action = body.get("action")
        if action not in self.board.controls:
            return self._refuse(400, f"action {action!r}: this run accepts "
                                     f"{', '.join(self.board.controls) or 'nothing'}")
        try:
            what, target, detail = await self._act(str(action), body)
        except ValueError as exc:
            return self._refuse(400, str(exc))
        except ControlRefused as exc:
            return self._refuse(409, str(exc))
        event = Event(self.now(), what, target, "control", detail)
        if self.record_controls:
            self.board.add_event(event)
        log.warning("control from the live page: %s %s %s", what, target, detail)
        return web.json_response({"ok": True, "event": event.as_dict()})

    async def _act(self, action: str, body: dict[str, Any]) -> tuple[str, str, str]:
        assert self.controls is not None
        _only(body, {"action", "rate", "node", "server", "state", "kind", *NETWORK_PARAMS})
        if action == "rate":
            rate = body.get("rate")
            if isinstance(rate, bool) or not isinstance(rate, int | float) \
                    or not 0 < rate <= MAX_RATE:
                raise ValueError(f"rate: expected a number of calls/s in (0, {MAX_RATE:g}]")
            return "rate", "", await self.controls.set_rate(float(rate))
        if action == "stop":
            return "stop", "", await self.controls.stop()
        if action == "fault":
            kind, node = body.get("state"), body.get("node")
            if kind not in FAULT_ACTIONS:
                raise ValueError(f"state: expected one of {sorted(FAULT_ACTIONS)}")
            if node not in self.board.nodes:
                raise ValueError(f"node {str(node)[:64]!r}: not a node of this run")
            return str(kind), str(node), await self.controls.fault(str(kind), str(node))
        if action == "network":
            return await self._network(body)
        # server_state
        server, state = body.get("server"), body.get("state")
        if state not in SERVER_STATES:
            raise ValueError(f"state: expected one of {sorted(SERVER_STATES)}")
        if server not in self.board.nodes:
            raise ValueError(f"server {str(server)[:64]!r}: not a node of this run")
        return str(state), str(server), await self.controls.server_state(str(server), str(state))


    async def _network(self, body: dict[str, Any]) -> tuple[str, str, str]:
        assert self.controls is not None
        kind, node = body.get("kind"), body.get("node", "")
        if kind not in NETWORK_KINDS:
            raise ValueError(f"kind: expected one of {sorted(NETWORK_KINDS)}")
        if kind not in ("heal", "split_pair") and node not in self.board.nodes:
            raise ValueError(f"node {str(node)[:64]!r}: not a node of this run")
        params: dict[str, float] = {}
        for name, high in NETWORK_PARAMS.items():
            value = body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 < value <= high:
                raise ValueError(f"{name}: expected a number in (0, {high:g}]")
            params[name] = float(value)
        target = str(node) if kind not in ("heal", "split_pair") else ""
        return str(kind), target, await self.controls.network(str(kind), target, params)


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ValueError(f"unknown field(s) {extra[:5]}: expected {sorted(allowed)}")
