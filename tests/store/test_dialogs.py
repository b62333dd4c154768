"""Dialog records: put/get, take-once delete, per-owner counts, ttl."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipha.store import DialogRecord, Store
from sipha.store.sqlite import SqliteStore
from tests.store.helpers import run_with


def record(call_id: str, owner: str = "srv1", **data: str) -> DialogRecord:
    return DialogRecord(
        call_id=call_id,
        local_tag="lt-" + call_id,
        remote_tag="rt-" + call_id,
        owner=owner,
        created_at=1_700_000_000.25,
        expires_at=1_700_001_800.5,
        data=data,
    )


def test_put_get_roundtrip_and_replace(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        rec = record("d1", route="<sip:a@h>", cseq="12")
        await store.put_dialog("d1", rec, ttl=60)
        assert await store.get_dialog("d1") == rec
        assert await store.get_dialog("nope") is None
        moved = record("d1", owner="srv2")
        await store.put_dialog("d1", moved, ttl=60)
        assert await store.get_dialog("d1") == moved
        # Re-owning moves the dialog between owner counts.
        assert await store.count_dialogs("srv1") == 0
        assert await store.count_dialogs("srv2") == 1

    run_with(store_url, scenario)


def test_delete_is_an_atomic_take(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.put_dialog("d1", record("d1"), ttl=60)
        results = await asyncio.gather(*(store.delete_dialog("d1") for _ in range(20)))
        assert sorted(results) == [False] * 19 + [True]
        assert await store.get_dialog("d1") is None
        assert await store.delete_dialog("d1") is False
        assert await store.delete_dialog("never") is False
        assert await store.count_dialogs() == 0

    run_with(store_url, scenario)


def test_count_dialogs_by_owner(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        for i in range(3):
            await store.put_dialog(f"a{i}", record(f"a{i}", owner="srv1"), ttl=60)
        for i in range(2):
            await store.put_dialog(f"b{i}", record(f"b{i}", owner="srv2"), ttl=60)
        assert await store.count_dialogs() == 5
        assert await store.count_dialogs("srv1") == 3
        assert await store.count_dialogs("srv2") == 2
        assert await store.count_dialogs("srv9") == 0
        assert await store.delete_dialog("a1")
        assert await store.count_dialogs() == 4
        assert await store.count_dialogs("srv1") == 2

    run_with(store_url, scenario)


def test_put_dialog_rejects_mismatched_call_id_and_bad_ttl(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(ValueError, match="call_id"):
            await store.put_dialog("other", record("d1"), ttl=60)
        with pytest.raises(ValueError, match="ttl"):
            await store.put_dialog("d1", record("d1"), ttl=0)

    run_with(store_url, scenario)


def test_sqlite_dialog_ttl_on_injected_clock(tmp_path: Path) -> None:
    clock = [1000.0]

    async def scenario() -> None:
        store = SqliteStore(str(tmp_path / "s.db"), clock=lambda: clock[0])
        try:
            await store.put_dialog("d1", record("d1"), ttl=30)
            await store.put_dialog("d2", record("d2", owner="srv2"), ttl=90)
            clock[0] = 1029.9
            assert await store.get_dialog("d1") is not None
            clock[0] = 1030.0
            assert await store.get_dialog("d1") is None
            assert await store.delete_dialog("d1") is False
            assert await store.count_dialogs() == 1
            assert await store.count_dialogs("srv1") == 0
        finally:
            await store.close()

    asyncio.run(scenario())


def test_redis_dialog_ttl_is_set_on_keys(redis_url: str) -> None:
    import redis as sync_redis

    async def scenario(store: Store) -> None:
        await store.put_dialog("d1", record("d1"), ttl=30)

    run_with(f"{redis_url}?prefix=ttlcheck:", scenario)
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        for key in ("ttlcheck:dlg:d1", "ttlcheck:dlgs", "ttlcheck:dlgs:owner:srv1"):
            assert 25_000 < r.pttl(key) <= 30_000, key
    finally:
        r.close()
