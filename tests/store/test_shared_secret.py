"""Cluster secrets on every backend: an atomic get-or-create, so servers racing on a fresh store
all end up with the one secret that was stored first; an old SQLite file gains the table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sipha.store import Store
from sipha.store.sqlite import _MIGRATIONS, SCHEMA_VERSION
from tests.store.helpers import run_with
from tests.store.test_multiprocess import run_workers


def test_first_candidate_is_kept_and_names_are_independent(store_url: str) -> None:
    async def scenario(store: Store) -> tuple[bytes, ...]:
        first = await store.shared_secret("nonce", b"\x00first-secret\xff" * 2)
        again = await store.shared_secret("nonce", b"another-candidate-16")
        other = await store.shared_secret("other", b"other-candidate-16b")
        return first, again, other

    first, again, other = run_with(store_url, scenario)
    assert first == again == b"\x00first-secret\xff" * 2  # binary-safe round trip
    assert other == b"other-candidate-16b"
    # A fresh connection reads what is stored.
    stored = run_with(store_url, lambda s: s.shared_secret("nonce", b"late-candidate-1"))
    assert stored == first


def test_empty_candidate_is_refused(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(ValueError, match="empty"):
            await store.shared_secret("nonce", b"")

    run_with(store_url, scenario)


def test_processes_racing_on_a_fresh_store_get_one_secret(store_url: str) -> None:
    names = ["a", "b", "c", "d"]
    results = run_workers(store_url, [("secret", name, 0) for name in names])
    assert len(set(results)) == 1, results  # type: ignore[arg-type]
    assert results[0] in {(name * 32).encode().hex() for name in names}


def test_a_version_1_sqlite_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        for sql in _MIGRATIONS[0]:
            conn.execute(sql)
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    secret = run_with(f"sqlite:{path}", lambda s: s.shared_secret("nonce", b"k" * 32))
    assert secret == b"k" * 32
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
    assert SCHEMA_VERSION == 3  # 2 -> 3: nonce_counts (tests/store/test_nonce_counts.py)
