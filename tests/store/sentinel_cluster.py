"""A real Redis Sentinel setup on loopback for tests: a master, one replica and three
Sentinels (quorum 2, down after 500 ms), every process killed by PID at the end."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sipha.common.process import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SERVICE = "sipha"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000
START_TIMEOUT = 20.0


@dataclass
class SentinelCluster:
    workdir: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # port -> process
    master_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)

    def url(self, **options: object) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis-sentinel://{hosts}/{SERVICE}/0" + (f"?{query}" if query else "")

    # -- processes ---------------------------------------------------------------------------
    def _start(self, port: int, args: list[str], name: str) -> None:
        log = (self.workdir / f"{name}-{port}.log").open("ab")
        try:
            proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self.procs[port] = proc

    def start_redis(self, port: int, replicaof: int | None = None) -> None:
        args = [
            REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
            # A restarted node resyncs at once, not after the default 5 s diskless delay.
            "--repl-diskless-sync-delay", "0",
        ]
        if replicaof is not None:
            args += ["--replicaof", "127.0.0.1", str(replicaof)]
        self._start(port, args, "redis")

    def start_sentinel(self, port: int) -> None:
        conf = self.workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self._start(port, [REDIS_SERVER, str(conf), "--sentinel"], "sentinel")

    def kill(self, port: int) -> None:
        """SIGKILL the process on `port` (a crash) and reap it."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for port in list(self.procs):
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(port)

    # -- observation ---------------------------------------------------------------------------
    def client(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, decode_responses=True, socket_timeout=2, protocol=2,
            socket_connect_timeout=1,
        )

    def master_seen_by(self, sentinel_port: int) -> dict[str, object]:
        with self.client(sentinel_port) as c:
            state: dict[str, object] = c.sentinel_master(SERVICE)
            return state

    def wait_until(self, what: str, check: object, timeout: float = START_TIMEOUT) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError as exc:  # not up yet
                last = exc
            time.sleep(0.05)
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )
        raise AssertionError(f"timed out waiting until {what} (last error {last!r})\n{logs}")

    def replica_in_sync(self, master: int) -> bool:
        with self.client(master) as c:
            info = c.info("replication")
        return bool(info.get("connected_slaves", 0) >= 1 and "online" in str(info.get("slave0")))

    def wait_ready(self) -> None:
        """Every Sentinel knows the replica and both other Sentinels (needed for a quorum
        and a leader election)."""

        def sentinels_ready() -> bool:
            for port in self.sentinel_ports:
                state = self.master_seen_by(port)
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:  # type: ignore[operator]
                    return False
            return True

        self.wait_until("the sentinels see each other and the replica", sentinels_ready)

    def wait_failover(self) -> int:
        """Until every Sentinel names the replica as master and it says so; its port."""
        new = self.replica_port

        def promoted() -> bool:
            for port in self.sentinel_ports:
                with self.client(port) as c:
                    addr = c.sentinel_get_master_addr_by_name(SERVICE)
                if int(addr[1]) != new:
                    return False
            with self.client(new) as c:
                return bool(c.info("replication")["role"] == "master")

        self.wait_until("the replica is promoted", promoted)
        self.master_port, self.replica_port = new, self.master_port
        return new


@contextlib.contextmanager
def sentinel_cluster(workdir: Path) -> Iterator[SentinelCluster]:
    """Start the cluster, wait until it can fail over, yield it; kill everything at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = SentinelCluster(workdir)
    try:
        cluster.master_port = free_port(kind=socket.SOCK_STREAM)
        cluster.replica_port = free_port(kind=socket.SOCK_STREAM)
        cluster.start_redis(cluster.master_port)
        cluster.start_redis(cluster.replica_port, replicaof=cluster.master_port)
        # Sentinels learn of replicas from the master's INFO, read at once and then only
        # every 10 s: start them after the replica is attached, or wait 10 s to see it.
        cluster.wait_until(
            "the replica is in sync", lambda: cluster.replica_in_sync(cluster.master_port)
        )
        for _ in range(3):
            port = free_port(kind=socket.SOCK_STREAM)
            cluster.sentinel_ports.append(port)
            cluster.start_sentinel(port)
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop_all()
