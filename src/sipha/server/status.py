"""What a server reports: counters kept on the hot path as plain ints, exported as JSON
(``/status``), Prometheus text (``/metrics``) and a liveness answer (``/health``).

The hot path only increments dict entries; Prometheus metric families are built when scraped
by a custom collector, so a busy server pays nothing per message for metrics it is not asked
for. The test bed samples ``active_calls`` once a second for its per-server call graphs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sipha.common.http import HttpApi, metrics_handler

__all__ = ["NodeStats", "StatusApi"]


@dataclass(slots=True)
class NodeStats:
    """Counters of one server process (monotonic since start)."""

    started: float = field(default_factory=time.time)
    requests: dict[str, int] = field(default_factory=dict)  # received, by method
    responses: dict[int, int] = field(default_factory=dict)  # sent by us, by status
    calls_answered: int = 0
    calls_rejected: int = 0
    calls_proxied: int = 0
    calls_ended_by_hold: int = 0
    byes_for_other_servers: int = 0  # BYEs we ended from the shared store (failover)
    registrations: int = 0  # successful REGISTERs that added or refreshed bindings
    unregistrations: int = 0
    auth_failures: int = 0
    store_errors: int = 0
    # The security counters (docs/security.md): requests refused or dropped, and why.
    security: dict[str, int] = field(default_factory=dict)

    def refused(self, cause: str) -> None:
        """Count a request or response refused or dropped for ``cause`` (a short name)."""
        r = self.security
        r[cause] = r.get(cause, 0) + 1

    def request(self, method: str) -> None:
        r = self.requests
        r[method] = r.get(method, 0) + 1

    def response(self, status: int) -> None:
        r = self.responses
        r[status] = r.get(status, 0) + 1


Gauges = Callable[[], dict[str, int]]


class _Collector(Collector):
    def __init__(self, stats: NodeStats, gauges: Gauges, transport: Callable[[], dict[str, Any]]):
        self.stats = stats
        self.gauges = gauges
        self.transport = transport

    def collect(self) -> Iterator[Any]:
        s = self.stats
        req = CounterMetricFamily(
            "sipha_server_requests", "SIP requests received", labels=["method"]
        )
        for method, n in sorted(s.requests.items()):
            req.add_metric([method], n)
        yield req
        resp = CounterMetricFamily(
            "sipha_server_responses", "SIP responses sent by this server", labels=["code"]
        )
        for code, n in sorted(s.responses.items()):
            resp.add_metric([str(code)], n)
        yield resp
        for name in (
            "calls_answered",
            "calls_rejected",
            "calls_proxied",
            "calls_ended_by_hold",
            "byes_for_other_servers",
            "registrations",
            "unregistrations",
            "auth_failures",
            "store_errors",
        ):
            yield CounterMetricFamily(
                f"sipha_server_{name}", name.replace("_", " "), value=getattr(s, name)
            )
        sec = CounterMetricFamily(
            "sipha_server_refused", "requests and responses refused or dropped", labels=["cause"]
        )
        for cause, n in sorted(s.security.items()):
            sec.add_metric([cause], n)
        yield sec
        for name, value in self.gauges().items():
            yield GaugeMetricFamily(f"sipha_server_{name}", name.replace("_", " "), value=value)
        for name, value in self.transport().items():
            if isinstance(value, int):
                yield CounterMetricFamily(
                    f"sipha_transport_{name}", name.replace("_", " "), value=value
                )


class StatusApi:
    """``/status`` (JSON), ``/metrics`` (Prometheus), ``/health`` on an :class:`HttpApi`."""

    def __init__(
        self,
        address: str,
        *,
        server_id: str,
        stats: NodeStats,
        gauges: Gauges,
        transport: Callable[[], dict[str, Any]],
        token: str | None = None,
    ) -> None:
        self.api = HttpApi(address, token=token)
        self.server_id = server_id
        self.stats = stats
        self.gauges = gauges
        self.transport = transport
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(stats, gauges, transport))
        self.api.get("/status", self._status)
        self.api.get("/health", self._health)
        self.api.get("/metrics", metrics_handler(self.registry))

    @property
    def port(self) -> int:
        return self.api.port

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "server_id": self.server_id,
            "uptime": round(time.time() - s.started, 3),
            **self.gauges(),
            "requests": dict(sorted(s.requests.items())),
            "responses": {str(k): v for k, v in sorted(s.responses.items())},
            "calls": {
                "answered": s.calls_answered,
                "rejected": s.calls_rejected,
                "proxied": s.calls_proxied,
                "ended_by_hold": s.calls_ended_by_hold,
                "byes_for_other_servers": s.byes_for_other_servers,
            },
            "registrar": {
                "registrations": s.registrations,
                "unregistrations": s.unregistrations,
                "auth_failures": s.auth_failures,
            },
            "store_errors": s.store_errors,
            "security": dict(sorted(s.security.items())),
            "transport": self.transport(),
        }

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot())

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True, "server_id": self.server_id})

    async def start(self) -> None:
        await self.api.start()

    async def close(self) -> None:
        await self.api.close()
