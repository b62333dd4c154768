"""asyncio wiring of a server process: store, endpoint, node, status API, signals, shutdown.

Shutdown (SIGTERM or SIGINT): stop accepting (TCP listeners closed, new INVITEs and REGISTERs
answered 503), let live transactions finish for up to ``drain_time`` seconds, then close
everything and return 0. A TaskGroup owns every task; the waits are bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from sipha.server.config import ServerConfig
from sipha.server.node import ServerNode
from sipha.server.status import StatusApi
from sipha.store import Store, open_store
from sipha.transport import SipEndpoint

log = logging.getLogger(__name__)

__all__ = ["serve"]

PURGE_PERIOD = 60.0


async def _purge_bindings(store: Store, stop: asyncio.Event) -> None:
    # Expired bindings are invisible already; this only keeps the store small.
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PURGE_PERIOD):
                await stop.wait()
        if stop.is_set():
            return
        try:
            await store.purge_expired(time.time())
        except Exception:
            log.exception("purging expired bindings failed")


async def serve(cfg: ServerConfig, *, stop: asyncio.Event | None = None) -> int:
    """Run a server until ``stop`` is set (or SIGTERM/SIGINT); return the exit status.

    Raises OSError when a listen or HTTP address cannot be bound, ValueError for a bad store
    URL.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    store = open_store(cfg.store)
    try:
        async with asyncio.TaskGroup() as tg:
            node = ServerNode(cfg, store, spawn=tg.create_task)
            endpoint = SipEndpoint(
                cfg.listen_specs,
                node.layer.receive,
                on_send_error=node.layer.transport_failed,
            )
            await endpoint.start()
            node.attach(endpoint)
            status: StatusApi | None = None
            try:
                if cfg.http:
                    status = StatusApi(
                        cfg.http,
                        server_id=node.server_id,
                        stats=node.stats,
                        gauges=node.gauges,
                        transport=endpoint.counters.as_dict,
                        token=cfg.http_token or None,
                    )
                    await status.start()
                tg.create_task(_purge_bindings(store, stop))
                log.warning(
                    "sipha server %s listening on %s%s",
                    node.server_id,
                    ", ".join(str(s) for s in endpoint.bound),
                    f", http {status.api.host}:{status.port}" if status else "",
                )
                await stop.wait()
                log.warning("draining for up to %.1f s", cfg.drain_time)
                node.start_draining()
                endpoint.stop_listening()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cfg.drain_time):
                        await node.idle.wait()
            finally:
                node.close()
                if status is not None:
                    await status.close()
                await endpoint.close()
    finally:
        await store.close()
    return 0
