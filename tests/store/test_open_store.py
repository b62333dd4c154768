"""`open_store` URL forms and errors; SQLite schema versioning and WAL setup."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sipha.store import Store, open_store
from sipha.store.redis_store import RedisStore
from sipha.store.sqlite import SCHEMA_VERSION, SqliteStore


def _close(store: Store) -> None:
    asyncio.run(store.close())


@pytest.mark.parametrize("form", ["sqlite:{p}", "sqlite://{p}", "{p}"])
def test_sqlite_forms(tmp_path: Path, form: str) -> None:
    path = tmp_path / "x.db"
    store = open_store(form.format(p=path))
    try:
        assert isinstance(store, SqliteStore)
        assert isinstance(store, Store)
        assert store.path == str(path)
    finally:
        _close(store)
    assert path.exists()


def test_redis_form_with_prefix() -> None:
    store = open_store("redis://127.0.0.1:6390/3?prefix=abc:")
    try:
        assert isinstance(store, RedisStore)
        assert isinstance(store, Store)
        assert store.prefix == "abc:"
        assert store.url == "redis://127.0.0.1:6390/3"
    finally:
        _close(store)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("", "empty"),
        ("sqlite:", "sqlite path"),
        ("redis:localhost", "//HOST"),
        ("redis://:6379/0", "host"),
        ("redis://localhost:port/0", "port"),
        ("redis://localhost:99999/0", "port"),
        ("redis://localhost:6379/zero", "db"),
        ("redis://localhost/0?prefix=a&prefix=b", "prefix"),
        ("postgres://db/x", "scheme"),
    ],
)
def test_bad_urls_name_the_field_and_expected_form(url: str, field: str) -> None:
    with pytest.raises(ValueError, match="expected 'sqlite:PATH'") as exc:
        open_store(url)
    assert field in str(exc.value)


def test_sqlite_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _close(open_store(f"sqlite:{path}"))
    # Reopening an up-to-date file does not migrate again (it would fail on CREATE TABLE).
    _close(open_store(f"sqlite:{path}"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "bindings", "dialogs"} <= tables


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        open_store(f"sqlite:{path}")


def test_sqlite_missing_directory_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        open_store(f"sqlite:{tmp_path / 'no' / 'such' / 'dir.db'}")


def test_closed_sqlite_store_raises(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = open_store(f"sqlite:{tmp_path / 's.db'}")
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(RuntimeError):
            await store.get_user("a@b")

    asyncio.run(scenario())
