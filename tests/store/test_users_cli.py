"""The `sipha users` command functions, run against every backend."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from sipha.store import Store, make_user
from sipha.store.users_cli import cmd_add, cmd_del, cmd_generate, cmd_import, cmd_list
from tests.store.helpers import run_with


def test_add_list_del(store_url: str) -> None:
    out = io.StringIO()
    assert cmd_add(store_url, "alice", "example.com", "pw", None, out=out) == 0
    assert cmd_add(store_url, "bob", "example.com", "pw", "realm.example", out=out) == 0
    out = io.StringIO()
    assert cmd_list(store_url, out=out) == 0
    assert out.getvalue().splitlines() == [
        "alice@example.com\texample.com",
        "bob@example.com\trealm.example",
        "# 2 shown of 2",
    ]
    assert cmd_del(store_url, "alice@example.com", out=out) == 0
    assert cmd_del(store_url, "alice@example.com", out=out) == 1

    async def get(store: Store) -> object:
        return await store.get_user("bob@example.com")

    assert run_with(store_url, get) == make_user("bob", "example.com", "pw", "realm.example")


def test_import_csv_with_optional_columns(store_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "users.csv"
    csv_path.write_text(
        "username,password,domain,realm\n"
        "alice,a-pw,,\n"
        "bob,b-pw,other.org,\n"
        "carol,c-pw,,carol-realm\n",
        encoding="utf-8",
    )
    assert cmd_import(store_url, str(csv_path), "example.com", out=io.StringIO()) == 3

    async def users(store: Store) -> list[object]:
        return [
            await store.get_user("alice@example.com"),
            await store.get_user("bob@other.org"),
            await store.get_user("carol@example.com"),
        ]

    assert run_with(store_url, users) == [
        make_user("alice", "example.com", "a-pw"),
        make_user("bob", "other.org", "b-pw"),
        make_user("carol", "example.com", "c-pw", "carol-realm"),
    ]


def test_import_csv_minimal_columns_and_errors(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 's.db'}"
    ok = tmp_path / "ok.csv"
    ok.write_text("username,password\nalice,pw\n", encoding="utf-8")
    assert cmd_import(url, str(ok), "example.com", out=io.StringIO()) == 1
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("user,pass\nalice,pw\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing password, username"):
        cmd_import(url, str(bad_header), "example.com", out=io.StringIO())
    no_domain = tmp_path / "nodomain.csv"
    no_domain.write_text("username,password\nalice,pw\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"nodomain.csv:2: .*domain"):
        cmd_import(url, str(no_domain), None, out=io.StringIO())


def test_generate_10000_users_on_sqlite_within_seconds(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 's.db'}"
    t0 = time.perf_counter()
    assert cmd_generate(url, 10_000, "load", "pw", "example.com", out=io.StringIO()) == 10_000
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"generate took {elapsed:.2f}s"

    async def check(store: Store) -> None:
        assert await store.count_users() == 10_000
        assert await store.get_user("load1@example.com") == make_user("load1", "example.com", "pw")
        assert await store.get_user("load10000@example.com") is not None
        assert await store.get_user("load0@example.com") is None

    run_with(url, check)


def test_generate_on_redis(store_url: str) -> None:
    assert cmd_generate(store_url, 2500, "g", "pw", "example.com", out=io.StringIO()) == 2500

    async def count(store: Store) -> int:
        return await store.count_users()

    assert run_with(store_url, count) == 2500


def test_generate_rejects_negative_count(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        cmd_generate(f"sqlite:{tmp_path / 's.db'}", -1, "x", "pw", "example.com")
