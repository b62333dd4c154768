"""Reads right after a failover: Sentinel ends an election with ``CLIENT KILL TYPE normal`` on
the promoted node, so every pooled connection a server holds to it is closed at once.  Reads
must still answer (on fresh connections), not fail once per stale connection; and a burst of
hundreds of reads on a fresh store (each new connection asks a Sentinel first) must not run
out of connections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipha.store import make_user, open_store
from sipha.store.sentinel import SentinelStore
from tests.store.sentinel_cluster import sentinel_cluster


@pytest.mark.timeout(60)
def test_reads_survive_killed_client_connections_and_a_burst(tmp_path: Path) -> None:
    with sentinel_cluster(tmp_path / "redis") as cluster:

        async def scenario() -> None:
            store = open_store(cluster.url(prefix="k:"))
            assert isinstance(store, SentinelStore)
            try:
                await store.add_users([make_user(f"u{i}", "sipha.test", "pw")
                                       for i in range(500)])
                # A burst on a fresh pool: 500 connections opened at once, each after a
                # Sentinel lookup.
                users = await asyncio.gather(*(store.get_user(f"u{i}@sipha.test")
                                               for i in range(500)))
                assert all(u is not None for u in users)
                for port in (cluster.master_port, cluster.replica_port):
                    with cluster.client(port) as c:
                        c.execute_command("CLIENT", "KILL", "TYPE", "normal")
                again = await asyncio.gather(*(store.get_user(f"u{i}@sipha.test")
                                               for i in range(50)))
                assert all(u is not None for u in again)
            finally:
                await store.close()

        asyncio.run(scenario())
