"""asyncio wiring of a server process: store, endpoint, node, status API, signals, shutdown.

Shutdown (SIGTERM or SIGINT): stop accepting (TCP listeners closed, new INVITEs and REGISTERs
answered 503), let live transactions finish for up to ``drain_time`` seconds, then close
everything and return 0. A TaskGroup owns every task; the waits are bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time

from sipha.server.config import ServerConfig
from sipha.server.node import ServerNode
from sipha.server.status import StatusApi
from sipha.store import Store, open_store
from sipha.transport import SipEndpoint, TransportConfig

log = logging.getLogger(__name__)

__all__ = ["NONCE_KEY_NAME", "cluster_nonce_key", "serve"]

PURGE_PERIOD = 60.0
NONCE_KEY_NAME = "digest-nonce-key"


async def cluster_nonce_key(cfg: ServerConfig, store: Store) -> bytes:
    """The configured ``nonce_secret``, else the cluster's random key from the shared store
    (made by the first server that asks, 32 bytes from the OS's CSPRNG).

    Raises what the store raises when it cannot be reached.
    """
    configured = cfg.nonce_key
    if configured is not None:
        return configured
    return await store.shared_secret(NONCE_KEY_NAME, secrets.token_bytes(32))


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

    Raises OSError when a listen or HTTP address cannot be bound or the store cannot be
    reached, ValueError for a bad store URL.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    store = open_store(cfg.store)
    try:
        try:
            nonce_key = await cluster_nonce_key(cfg, store)
        except Exception as exc:  # any backend's error: the store is unusable, fail at start
            raise OSError(f"cannot read the cluster's nonce key from the store: {exc}") from exc
        async with asyncio.TaskGroup() as tg:
            node = ServerNode(cfg, store, nonce_key=nonce_key, spawn=tg.create_task)
            endpoint = SipEndpoint(
                cfg.listen_specs,
                node.layer.receive,
                config=TransportConfig(tls=cfg.tls),
                on_send_error=node.layer.transport_failed,
            )
            await endpoint.start()
            node.attach(endpoint)
            await node.refresh_users()
            status: StatusApi | None = None
            try:
                if cfg.http:
                    status = StatusApi(
                        cfg.http,
                        server_id=node.server_id,
                        stats=node.stats,
                        gauges=node.gauges,
                        transport=lambda: {
                            **endpoint.counters.as_dict(),
                            # Retransmissions a spoofed source's budget did not allow.
                            "retransmissions_suppressed": node.layer.budget.suppressed,
                        },
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
