"""A small JSON HTTP API for nodes (status, control, Prometheus metrics) on aiohttp.

Exposure rule (issue 14): an API reachable from other hosts must carry a bearer token, so
:func:`check_exposure` refuses a non-loopback address without one unless the operator says
``--insecure-http``; an API running without a token always logs a warning when it starts.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sipha.common.netaddr import is_loopback

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """``127.0.0.1:8060`` -> (host, port); raise ValueError naming the expected form."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r}: expected HOST:PORT such as 127.0.0.1:8060")
    return host.strip("[]"), int(port)


def check_exposure(address: str, token: str | None, *, insecure: bool = False) -> None:
    """Raise ``ValueError`` if an HTTP API at ``address`` would be reachable from other hosts
    without a bearer token (unless ``insecure``, the operator's explicit ``--insecure-http``);
    also for a malformed address."""
    host, _ = parse_host_port(address, what="HTTP address")
    if not token and not insecure and not is_loopback(host):
        raise ValueError(
            f"HTTP API on {address} without a token: anyone who can reach it could use it; "
            "give a token (or --insecure-http to accept that)"
        )


def bearer_auth(token: str | None) -> Middleware:
    """Middleware refusing requests without ``Authorization: Bearer <token>`` (when set).

    GET /metrics and GET /health stay open, as scrapers and probes expect.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and not (request.method == "GET" and request.path in ("/metrics", "/health")):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return web.json_response({"error": "missing or bad bearer token"}, status=401)
        return await handler(request)

    return middleware


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


class HttpApi:
    """Owns an aiohttp app bound to one address; routes are added before ``start``."""

    def __init__(self, address: str, *, token: str | None = None) -> None:
        self.host, self.port = parse_host_port(address, what="HTTP address")
        self.token = token
        self.app = web.Application(middlewares=[bearer_auth(token)])
        self._runner: web.AppRunner | None = None

    def get(self, path: str, handler: Handler) -> None:
        self.app.router.add_get(path, handler)

    def post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, handler)

    def delete(self, path: str, handler: Handler) -> None:
        self.app.router.add_delete(path, handler)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server
            if server is not None and server.sockets:  # type: ignore[attr-defined]
                self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if not self.token:
            where = "this host" if is_loopback(self.host) else "anyone who can reach it"
            log.warning("HTTP API on %s:%s runs without a token: %s can use it",
                        self.host, self.port, where)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
