"""The dispatcher's HTTP API (JSON, bearer token) and Prometheus metrics.

=======  ===============================  ==================================================
GET      /servers                          every server: state, weight, calls, probe latency
GET      /status                           servers plus counters
POST     /servers  {"uri": "sip:..."}      add a server (attributes as URI parameters)
DELETE   /servers/{key}                    remove a server (its dialogs finish)
POST     /servers/{key}/state {"state"}    active | inactive | disabled | draining
POST     /servers/{key}/weight {"weight"}  set the weight (0 = quiesce)
POST     /reload                           re-read configured servers
GET      /metrics                          Prometheus text format (no token)
GET      /health                           liveness (no token)
=======  ===============================  ==================================================

``key`` is a server's uid, its id (URL-encoded) or ``HOST:PORT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sipha.common.config import ConfigError
from sipha.common.http import HttpApi, metrics_handler
from sipha.transport import TransportCounters

from .config import DispatcherConfig, check_reachable
from .health import OPERATOR_STATES, HealthState
from .router import Router
from .servers import parse_server
from .state import Server


class DispatcherControl(Protocol):
    """What the API needs of the running dispatcher (`service.DispatcherControl`), no more."""

    @property
    def router(self) -> Router | None: ...
    @property
    def cfg(self) -> DispatcherConfig: ...
    @property
    def counters(self) -> TransportCounters: ...
    def now(self) -> float: ...
    def kick(self) -> None: ...
    def log_changes(self) -> None: ...
    def reload(self) -> dict[str, list[str]]: ...

MAX_SERVER_URI = 512  # longer is no server URI, only log-filling (issue 14)
MAX_WEIGHT = 1_000_000


def server_json(s: Server) -> dict[str, Any]:
    return {
        "uid": s.uid,
        "id": s.id,
        "uri": s.uri,
        "address": str(s.peer) if s.resolved else None,  # None: its name is not resolved yet
        "state": s.state.value,
        "weight": s.dest.weight,
        "priority": s.dest.priority,
        "maxload": s.dest.maxload,
        "probing": s.probing,
        "active_calls": s.dest.active_calls,
        "dialogs": s.dialogs,
        "pending_invites": s.pending,
        "calls_total": s.calls_total,
        "probe_latency_ms": None if s.probe_rtt_ms is None else round(s.probe_rtt_ms, 3),
    }


class _Collector(Collector):
    def __init__(self, service: DispatcherControl) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        router = self.service.router
        if router is None:
            return
        for name, value in router.stats.as_dict().items():
            c = CounterMetricFamily(f"sipha_dispatcher_{name}", f"Dispatcher {name}")
            c.add_metric([], value)
            yield c
        t = self.service.counters
        for name in ("received", "sent", "malformed", "dropped", "send_errors"):
            c = CounterMetricFamily(f"sipha_dispatcher_transport_{name}", f"Transport {name}")
            c.add_metric([], getattr(t, name))
            yield c
        calls = GaugeMetricFamily(
            "sipha_dispatcher_server_active_calls",
            "Dialogs plus pending INVITEs",
            labels=["server"],
        )
        dialogs = GaugeMetricFamily("sipha_dispatcher_server_dialogs", "Dialogs", labels=["server"])
        total = CounterMetricFamily(
            "sipha_dispatcher_server_calls", "Calls answered", labels=["server"]
        )
        up = GaugeMetricFamily(
            "sipha_dispatcher_server_state", "1 for the current state", labels=["server", "state"]
        )
        for s in router.servers():
            calls.add_metric([s.id], s.dest.active_calls)
            dialogs.add_metric([s.id], s.dialogs)
            total.add_metric([s.id], s.calls_total)
            for st in HealthState:
                up.add_metric([s.id, st.value], 1.0 if s.state is st else 0.0)
        yield from (calls, dialogs, total, up)
        g = GaugeMetricFamily("sipha_dispatcher_affinity_entries", "Call-ID affinity entries")
        g.add_metric([], router.affinity_entries())
        yield g


class DispatcherApi:
    def __init__(self, service: DispatcherControl, address: str, *, token: str | None) -> None:
        self.service = service
        self.http = HttpApi(address, token=token)
        registry = CollectorRegistry()
        registry.register(_Collector(service))
        self.http.registry = registry
        h = self.http
        h.get("/metrics", metrics_handler(registry))
        h.get("/health", self.health)
        h.get("/servers", self.list_servers)
        h.get("/status", self.status)
        h.post("/servers", self.add_server)
        h.delete("/servers/{key}", self.remove_server)
        h.post("/servers/{key}/state", self.set_state)
        h.post("/servers/{key}/weight", self.set_weight)
        h.post("/reload", self.reload)

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    @property
    def port(self) -> int:
        return self.http.port

    def _router(self) -> Router:
        router = self.service.router
        if router is None:
            raise web.HTTPServiceUnavailable(text="starting")
        return router

    def _server(self, request: web.Request) -> Server:
        key = request.match_info["key"]
        server: Server | None = self._router().find(key)
        if server is None:
            raise web.HTTPNotFound(
                text=f'{{"error": "no server {key}"}}', content_type="application/json"
            )
        return server

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(
                text='{"error": "expected a JSON object"}', content_type="application/json"
            )
        return data

    @staticmethod
    def _bad(message: str) -> web.Response:
        return web.json_response({"error": message}, status=400)

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": self.service.router is not None})

    async def list_servers(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"servers": [server_json(s) for s in self._router().servers()]})

    async def status(self, request: web.Request) -> web.StreamResponse:
        router = self._router()
        return web.json_response({
            "algorithm": self.service.cfg.algorithm,
            "servers": [server_json(s) for s in router.servers()],
            "stats": router.stats.as_dict(),
            "transport": self.service.counters.as_dict(),
            "affinity_entries": router.affinity_entries(),
            "open_transactions": router.open_transactions(),
        })

    async def add_server(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        uri = body.get("uri")
        if not isinstance(uri, str):
            return self._bad('expected {"uri": "sip:HOST:PORT;weight=N"}')
        if len(uri) > MAX_SERVER_URI:
            return self._bad(f"server URI longer than {MAX_SERVER_URI} characters")
        router = self._router()
        try:
            spec = parse_server(uri, probing=self.service.cfg.probe.enabled)
            if not 0 <= spec.weight <= MAX_WEIGHT:
                return self._bad(f"weight must be 0 .. {MAX_WEIGHT}")
            check_reachable(self.service.cfg, spec, source="POST /servers")
            server = router.add_server(spec)
        except ValueError as exc:
            return self._bad(str(exc))
        self.service.kick()
        return web.json_response(server_json(server), status=201)

    async def remove_server(self, request: web.Request) -> web.StreamResponse:
        server = self._server(request)
        self._router().remove_server(server)
        return web.json_response({"removed": server.id})

    async def set_state(self, request: web.Request) -> web.StreamResponse:
        server = self._server(request)
        body = await self._body(request)
        names = {s.value: s for s in OPERATOR_STATES}
        state = names.get(str(body.get("state")))
        if state is None:
            return self._bad(f"state must be one of {', '.join(names)}")
        router = self._router()
        router.set_state(server, state, self.service.now(), "via the HTTP API")
        self.service.log_changes()
        self.service.kick()
        return web.json_response(server_json(server))

    async def set_weight(self, request: web.Request) -> web.StreamResponse:
        server = self._server(request)
        body = await self._body(request)
        weight = body.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not (
            0 <= weight <= MAX_WEIGHT
        ):
            return self._bad(f"weight must be an integer >= 0 and <= {MAX_WEIGHT}")
        self._router().set_weight(server, weight)
        return web.json_response(server_json(server))

    async def reload(self, request: web.Request) -> web.StreamResponse:
        try:
            result = self.service.reload()
        except (ConfigError, ValueError) as exc:
            return self._bad(str(exc))
        return web.json_response(result)
