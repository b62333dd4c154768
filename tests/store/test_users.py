"""Users: add/get/delete/list on every backend; only HA1s are stored, never the password."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from sipha.store import Store, User, make_user
from tests.store.helpers import run_with


def test_make_user_md5_ha1_matches_rfc2617_example() -> None:
    # RFC 2617 §3.5: Mufasa / testrealm@host.com / "Circle Of Life".
    u = make_user("Mufasa", "host.com", "Circle Of Life", realm="testrealm@host.com")
    assert u.ha1_md5 == "939e7578ed9e3c518a452acee763bce9"
    assert u.ha1_sha256 == hashlib.sha256(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    assert u.aor == "Mufasa@host.com"


def test_make_user_realm_defaults_to_domain() -> None:
    u = make_user("alice", "example.com", "pw")
    assert u.realm == "example.com"
    assert u.ha1_md5 == hashlib.md5(b"alice:example.com:pw").hexdigest()


@pytest.mark.parametrize(
    "aor", ["sip:alice@example.com", "alice", "@example.com", "alice@", "a b@x"]
)
def test_user_rejects_aor_not_user_at_domain(aor: str) -> None:
    with pytest.raises(ValueError, match="aor"):
        User(aor, "alice", "example.com", "0" * 32, "0" * 64)


def test_user_add_get_delete(store_url: str) -> None:
    alice = make_user("alice", "example.com", "secret")

    async def scenario(store: Store) -> None:
        assert await store.get_user("alice@example.com") is None
        await store.add_user(alice)
        assert await store.get_user("alice@example.com") == alice
        assert await store.get_user("bob@example.com") is None
        # Re-adding replaces (password change).
        await store.add_user(make_user("alice", "example.com", "new"))
        got = await store.get_user("alice@example.com")
        assert got is not None
        assert got.ha1_md5 != alice.ha1_md5
        assert await store.delete_user("alice@example.com") is True
        assert await store.delete_user("alice@example.com") is False
        assert await store.get_user("alice@example.com") is None
        assert await store.count_users() == 0

    run_with(store_url, scenario)


def test_list_users_is_ordered_and_paged(store_url: str) -> None:
    users = [make_user(f"u{i:03d}", "example.com", "pw") for i in range(25)]

    async def scenario(store: Store) -> None:
        assert await store.add_users(reversed(users)) == 25
        assert await store.count_users() == 25
        assert await store.list_users(limit=10) == users[:10]
        assert await store.list_users(limit=10, offset=20) == users[20:]
        assert await store.list_users(limit=0) == []
        assert await store.list_users(limit=100, offset=30) == []

    run_with(store_url, scenario)


def test_password_is_not_stored_anywhere_in_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    password = "Very-Distinctive-Password-42"

    async def scenario(store: Store) -> None:
        await store.add_user(make_user("alice", "example.com", password))

    run_with(f"sqlite:{db}", scenario)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(conn.iterdump())
    assert password not in dump
    for f in tmp_path.iterdir():
        assert password.encode() not in f.read_bytes()
    assert hashlib.md5(f"alice:example.com:{password}".encode()).hexdigest() in dump


def test_password_is_not_stored_in_redis(redis_url: str) -> None:
    import redis as sync_redis

    password = "Very-Distinctive-Password-42"
    url = f"{redis_url}?prefix=pwcheck:"

    async def scenario(store: Store) -> None:
        await store.add_user(make_user("alice", "example.com", password))

    run_with(url, scenario)
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        values = [str(r.hgetall(k)) for k in r.scan_iter("pwcheck:*") if r.type(k) == "hash"]
        assert values, "user hash not found"
        blob = "\n".join(values)
        assert password not in blob
        assert hashlib.md5(f"alice:example.com:{password}".encode()).hexdigest() in blob
    finally:
        r.close()


def test_bulk_add_of_10000_users_on_sqlite_is_fast(tmp_path: Path) -> None:
    users = [make_user(f"load{i}", "example.com", "pw") for i in range(10_000)]

    async def scenario(store: Store) -> int:
        t0 = time.perf_counter()
        await store.add_users(users)
        elapsed = time.perf_counter() - t0
        assert elapsed < 5.0, f"bulk insert took {elapsed:.2f}s"
        return await store.count_users()

    assert run_with(f"sqlite:{tmp_path / 's.db'}", scenario) == 10_000


def test_ha1_for_picks_the_hash_of_each_algorithm() -> None:
    from sipha.sip.auth import Algorithm

    u = make_user("alice", "example.com", "pw")
    assert u.ha1_for(Algorithm.MD5) == u.ha1_for(Algorithm.MD5_SESS) == u.ha1_md5
    assert u.ha1_for(Algorithm.SHA256) == u.ha1_for(Algorithm.SHA256_SESS) == u.ha1_sha256
    assert u.ha1_md5 != u.ha1_sha256
