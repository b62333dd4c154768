"""The store's own nodes: one ``redis-server``, or a Redis master, replicas and three Sentinels.

Theory of operation
-------------------
``[store] kind = "redis-sentinel"`` makes the store a node set of the run, each node a process
of its own with its own address of the run's block, so every process fault of a plan (kill,
stop, cont, start, restart) works on each of them as on a SIP server::

    redis        .5        the first master (port 6379)
    redis-r1..   .6 ..     its replicas (``--replicaof`` the master)
    sentinel1..3 .2 .3 .4  Sentinels (port 26379, quorum 2) monitoring service ``sipha``

The nodes start in the order a failover needs: the master; the replicas, until the master
reports them all online; then the Sentinels (they read the replicas from the master's INFO at
once and then only every 10 s), until each Sentinel knows the other two and every replica.
Every node announces its own address (``replica-announce-ip``, ``sentinel announce-ip``) and
connects from it (``bind-source-addr``): on loopback every outgoing connection would otherwise
come from 127.0.0.1 and three Sentinels would announce one address.

A crashed master restarted by a plan's ``start`` comes back empty and claims the master role;
the Sentinels turn it into a replica of the promoted one (docs/store.md).  The servers get
``redis-sentinel://SENTINEL,SENTINEL,SENTINEL/sipha/0?OPTIONS``.

:class:`StoreWatch` measures the store failover time of a run: from the process fault that hit
the master (kill, stop, restart) until a Sentinel names another node as master, polled with the
dispatchers' roles; it is an event ``store-failover`` of the run, with its milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import redis
import redis.asyncio as aredis

from sipha.common.process import wait_tcp
from sipha.testbed.addresses import REDIS_PORT, AddressBlock
from sipha.testbed.commands import NodeCommand, redis_command, store_url
from sipha.testbed.plan import Plan
from sipha.testbed.processes import NodeProcess

__all__ = [
    "SENTINEL_PORT",
    "SERVICE",
    "StoreWatch",
    "sentinel_url",
    "start_store",
    "store_addresses",
    "store_commands",
]

SENTINEL_PORT: Final = 26379
SERVICE: Final = "sipha"
_FAILOVER_TIMEOUT_MS: Final = 3000
_READY_TIMEOUT: Final = 30.0
_QUERY_TIMEOUT: Final = 0.3

Add = Callable[[NodeCommand], NodeProcess]
Wait = Callable[[str, Callable[[], Awaitable[object]]], Awaitable[None]]
EventSink = Callable[..., None]


def store_addresses(plan: Plan, block: AddressBlock) -> dict[str, str]:
    """Node name -> address of the store nodes the test bed starts for ``plan``."""
    st = plan.store
    if st.url or st.kind == "sqlite":
        return {}
    out = {"redis": block.redis}
    if st.kind == "redis-sentinel":
        out |= {f"redis-r{i}": block.host(5 + i) for i in range(1, st.replicas + 1)}
        out |= {f"sentinel{i}": block.host(1 + i) for i in range(1, 4)}
    return out


def sentinel_url(plan: Plan, block: AddressBlock) -> str:
    """The servers' store URL for a Sentinel store the test bed starts."""
    sentinels = ",".join(f"{block.host(1 + i)}:{SENTINEL_PORT}" for i in range(1, 4))
    query = f"?{plan.store.options}" if plan.store.options else ""
    return f"redis-sentinel://{sentinels}/{SERVICE}/0{query}"


def _redis_argv(name: str, address: str, results: Path, master: str | None) -> list[str]:
    argv = ["redis-server", "--bind", address, "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--dir", str(results), "--dbfilename", f"{name}.rdb",
            "--replica-announce-ip", address, "--bind-source-addr", address,
            # A restarted node resyncs at once, not after the default 5 s diskless delay.
            "--repl-diskless-sync-delay", "0", "--protected-mode", "no"]
    if master is not None:
        argv += ["--replicaof", master, str(REDIS_PORT)]
    return argv


def _sentinel_conf(plan: Plan, address: str, master: str, results: Path) -> str:
    service = SERVICE
    return (f"port {SENTINEL_PORT}\nbind {address}\nprotected-mode no\ndir {results}\n"
            f"bind-source-addr {address}\nsentinel announce-ip {address}\n"
            f"sentinel monitor {service} {master} {REDIS_PORT} 2\n"
            f"sentinel down-after-milliseconds {service} {plan.store.down_after_ms}\n"
            f"sentinel failover-timeout {service} {_FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {service} 1\n")


def store_commands(plan: Plan, block: AddressBlock, results: Path,
                   config_dir: Path) -> list[NodeCommand]:
    """The store nodes' commands in start order (Sentinel configs written to ``config_dir``:
    a Sentinel rewrites its own file, so each has one)."""
    if plan.store.kind == "redis":
        return [redis_command(block, results)] if not plan.store.url else []
    addrs = store_addresses(plan, block)
    cmds = []
    for name, address in addrs.items():
        if name.startswith("sentinel"):
            conf = config_dir / f"{name}.conf"
            conf.write_text(_sentinel_conf(plan, address, block.redis, results), encoding="utf-8")
            cmds.append(NodeCommand(name, "sentinel", ["redis-sentinel", str(conf)], address))
        else:
            master = None if name == "redis" else block.redis
            cmds.append(NodeCommand(name, "redis", _redis_argv(name, address, results, master),
                                    address))
    return cmds


def _client(host: str, port: int) -> redis.Redis:
    return redis.Redis(host=host, port=port, socket_timeout=2, socket_connect_timeout=1,
                       decode_responses=True, protocol=2)


def _until(check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until it holds; raise TimeoutError (the runner's "did not become
    ready") when ``timeout`` runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError


def _replicas_online(master: str, count: int) -> bool:
    with _client(master, REDIS_PORT) as c:
        info = c.info("replication")
    online = [k for k, v in info.items() if k.startswith("slave") and "online" in str(v)]
    return len(online) >= count


def _sentinels_ready(sentinels: list[str], replicas: int) -> bool:
    for host in sentinels:
        with _client(host, SENTINEL_PORT) as c:
            state = c.sentinel_master(SERVICE)
        if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < replicas:
            return False
    return True


async def start_store(plan: Plan, block: AddressBlock, results: Path, config_dir: Path,
                      add: Add, wait: Wait) -> str:
    """Start the store nodes ``plan`` asks for (none for SQLite or an external URL), each
    waited for; return the servers' store URL.  ``wait`` raises the runner's errors."""
    url = sentinel_url(plan, block) if (
        plan.store.kind == "redis-sentinel" and not plan.store.url) else store_url(
        plan, block, results)
    cmds = store_commands(plan, block, results, config_dir)
    if not cmds:
        return plan.store.url or url
    nodes = {c.name: add(c) for c in cmds}
    nodes["redis"].start()
    await wait("redis", lambda: asyncio.to_thread(wait_tcp, block.redis, REDIS_PORT, 20.0))
    if plan.store.kind != "redis-sentinel":
        return url
    replicas = [n for n in nodes if n.startswith("redis-r")]
    for name in replicas:
        nodes[name].start()
    await wait("the Redis replicas", lambda: asyncio.to_thread(
        _until, lambda: _replicas_online(block.redis, len(replicas)), _READY_TIMEOUT))
    sentinels = [n for n in nodes if n.startswith("sentinel")]
    for name in sentinels:
        nodes[name].start()
    hosts = [nodes[n].address for n in sentinels]
    await wait("the Sentinels", lambda: asyncio.to_thread(
        _until, lambda: _sentinels_ready(hosts, len(replicas)), _READY_TIMEOUT))
    return url


class StoreWatch:
    """The store failover time of a run (Sentinel stores; a no-op otherwise).

    ``fault`` is told every process fault as it fires; ``poll`` asks the Sentinels which node
    is master and reports (through ``event``) each change of master, with the time since the
    fault that hit the old one.
    """

    def __init__(self, plan: Plan, event: EventSink) -> None:
        self.plan = plan
        self.block: AddressBlock | None = None  # set once the run has its addresses
        self._event = event
        self.master = "redis"
        self._hit: float | None = None  # run time of the fault that hit the master
        self.failovers_ms: list[float] = []

    def _addresses(self) -> dict[str, str]:
        if self.block is None or self.plan.store.kind != "redis-sentinel":
            return {}
        return store_addresses(self.plan, self.block)

    def fault(self, node: str, action: str, now: float) -> None:
        if node == self.master and action in ("kill", "stop", "restart") and self._hit is None:
            self._hit = now

    async def poll(self, now: float) -> None:
        addrs = self._addresses()
        sentinels = [a for n, a in addrs.items() if n.startswith("sentinel")]
        if not sentinels:
            return
        address = await self._ask(sentinels)
        name = next((n for n, a in addrs.items() if a == address and n.startswith("redis")), "")
        if not name or name == self.master:
            return
        old, self.master = self.master, name
        ms = None if self._hit is None else round((now - self._hit) * 1000.0, 1)
        self._hit = None
        if ms is not None:
            self.failovers_ms.append(ms)
        self._event("store-failover", name, f"the Sentinels promoted {name} ({old} was master)",
                    ms=ms)

    @staticmethod
    async def _ask(sentinels: list[str]) -> str | None:
        """The master's address as the first answering Sentinel names it."""
        for host in sentinels:
            client = aredis.Redis(host=host, port=SENTINEL_PORT, socket_timeout=_QUERY_TIMEOUT,
                                  socket_connect_timeout=_QUERY_TIMEOUT, protocol=2,
                                  decode_responses=True)
            try:
                addr = await client.sentinel_get_master_addr_by_name(SERVICE)
            except (redis.RedisError, OSError):
                continue
            finally:
                await client.aclose()
            if isinstance(addr, tuple | list) and addr:
                return str(addr[0])
        return None
