"""The store on Redis Sentinel through a master's crash: SIGKILL the master of a real master +
replica + three Sentinels; reads keep answering during the election (from the replica), a
write is held until the new master has a replica again (or refused with a retry time when the
hold is short), every acknowledged registration, user and dialog survives, and with no
node reachable at all reads of recently read bindings come from the bounded cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.store import BindingChange, DialogRecord, Store, make_user, open_store
from sipha.store.errors import StoreUnavailable
from sipha.store.sentinel import SentinelStore
from tests.store.sentinel_cluster import SentinelCluster, sentinel_cluster

T0 = time.time()
N = 40


def _change(contact: str) -> BindingChange:
    return BindingChange(contact=contact, expires=600, raw=f"<{contact}>")


async def _register(store: Store, i: int, cseq: int = 1) -> None:
    result = await store.update_bindings(
        f"u{i}@sipha.local", changes=[_change(f"sip:u{i}@10.0.0.{i % 250}")],
        call_id=f"reg-{i}", cseq=cseq, now=T0,
    )
    assert result.ok


def _dialog(i: int) -> DialogRecord:
    return DialogRecord(f"dlg-{i}", f"lt{i}", f"rt{i}", "srv1", T0, T0 + 600)


async def _assert_everything_acknowledged_is_there(store: Store) -> None:
    for i in range(N):
        (b,) = await store.get_bindings(f"u{i}@sipha.local", T0)
        assert (b.contact, b.call_id) == (f"sip:u{i}@10.0.0.{i % 250}", f"reg-{i}")
        assert await store.get_dialog(f"dlg-{i}") == _dialog(i)
    assert await store.count_users() == N


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with sentinel_cluster(tmp_path / "cluster") as c:
        yield c


def test_master_crash_loses_nothing_acknowledged_and_reads_never_stop(
    cluster: SentinelCluster,
) -> None:
    async def scenario() -> None:
        store = open_store(cluster.url(hold=20, cache_ttl=60))
        impatient = open_store(cluster.url(hold=0.3))
        assert isinstance(store, SentinelStore)
        try:
            await store.add_users(make_user(f"u{i}", "sipha.local", "pw") for i in range(N))
            for i in range(N):
                await _register(store, i)
                await store.put_dialog(f"dlg-{i}", _dialog(i), ttl=600)

            cluster.kill(cluster.master_port)
            # The election has not even started (down-after is 500 ms): every read is
            # answered, from the replica, which holds every acknowledged write.
            await _assert_everything_acknowledged_is_there(store)
            # A write now is held: no master, then a master without a replica to confirm it.
            held = asyncio.create_task(_register(store, N, cseq=1))
            with pytest.raises(StoreUnavailable) as refused:
                await _register(impatient, N + 1)
            assert refused.value.retry_after >= 1
            await asyncio.to_thread(cluster.wait_failover)
            await _assert_everything_acknowledged_is_there(store)
            assert not held.done()  # no replica yet: not acknowledged
            # The crashed node comes back as a replica of the new master (as an operator or
            # Sentinel would make it); the held write is then confirmed and acknowledged.
            cluster.start_redis(cluster.replica_port, replicaof=cluster.master_port)
            await asyncio.wait_for(held, timeout=15)
        finally:
            await store.close()
            await impatient.close()

        # A fresh client (empty cache) reads the new master: nothing acknowledged was lost.
        fresh = open_store(cluster.url(cache_ttl=0))
        try:
            await _assert_everything_acknowledged_is_there(fresh)
            (b,) = await fresh.get_bindings(f"u{N}@sipha.local", T0)
            assert b.call_id == f"reg-{N}"
            assert await fresh.get_user("u0@sipha.local") == make_user("u0", "sipha.local", "pw")
        finally:
            await fresh.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_with_no_node_reachable_recent_reads_come_from_the_cache(
    cluster: SentinelCluster,
) -> None:
    async def scenario() -> None:
        store = open_store(cluster.url(hold=0.2, cache_ttl=60))
        try:
            await store.add_user(make_user("u0", "sipha.local", "pw"))
            await _register(store, 0)
            await _register(store, 1)
            assert len(await store.get_bindings("u1@sipha.local", T0)) == 1
            assert await store.get_user("u0@sipha.local") is not None
            # Every node gone (a partition from this server looks the same): the store answers
            # from what it confirmed last.
            cluster.stop_all()
            (b,) = await store.get_bindings("u0@sipha.local", T0)
            assert b.call_id == "reg-0"
            assert await store.get_bindings("u1@sipha.local", T0 + 599) != []
            # ... still filtered by the bindings' own expiry,
            assert await store.get_bindings("u1@sipha.local", T0 + 601) == []
            assert await store.get_user("u0@sipha.local") is not None
            # ... and what it never read is an error, not an empty answer (a 404 would lie).
            with pytest.raises(StoreUnavailable):
                await store.get_bindings("u2@sipha.local", T0)
            with pytest.raises(StoreUnavailable):
                await _register(store, 3)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
