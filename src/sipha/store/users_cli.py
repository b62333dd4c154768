"""Logic of ``sipha users ...``: argparse lives in sipha.cli, which calls these functions.

Each function is synchronous (it runs its own event loop with `asyncio.run`, so call it from
plain code, not from inside a running loop) and writes human output to `out`. Bad input raises
ValueError with a message fit for the user (the CLI can print it and exit 2).
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TextIO, TypeVar

from sipha.store.base import Store
from sipha.store.factory import open_store
from sipha.store.model import User, make_user

__all__ = ["cmd_add", "cmd_del", "cmd_generate", "cmd_import", "cmd_list"]

_T = TypeVar("_T")

# Rows hashed and written per round trip: bounds memory for huge imports while keeping
# the per-transaction overhead (fsync on SQLite, round trip on Redis) negligible.
_BATCH = 10_000


def _run(store_url: str, fn: Callable[[Store], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        store = open_store(store_url)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(main())


def cmd_add(
    store_url: str,
    username: str,
    domain: str,
    password: str,
    realm: str | None = None,
    *,
    out: TextIO = sys.stdout,
) -> int:
    """Add (or replace) one user. Returns exit status 0."""
    user = make_user(username, domain, password, realm)

    async def op(store: Store) -> None:
        await store.add_user(user)

    _run(store_url, op)
    out.write(f"added {user.aor} (realm {user.realm})\n")
    return 0


def cmd_del(store_url: str, aor: str, *, out: TextIO = sys.stdout) -> int:
    """Delete user ``user@domain``. Returns exit status: 0 if deleted, 1 if there was none."""

    async def op(store: Store) -> bool:
        return await store.delete_user(aor)

    if _run(store_url, op):
        out.write(f"deleted {aor}\n")
        return 0
    out.write(f"no such user {aor}\n")
    return 1


def cmd_list(
    store_url: str, *, limit: int = 100, offset: int = 0, out: TextIO = sys.stdout
) -> int:
    """Print users as ``aor realm`` lines in AOR order, then a total. Returns exit status 0."""

    async def op(store: Store) -> tuple[list[User], int]:
        return await store.list_users(limit=limit, offset=offset), await store.count_users()

    users, total = _run(store_url, op)
    for u in users:
        out.write(f"{u.aor}\t{u.realm}\n")
    out.write(f"# {len(users)} shown of {total}\n")
    return 0


def _read_csv(csv_path: str, domain: str | None) -> Iterator[User]:
    """Users from a CSV with header ``username,password[,domain][,realm]``."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {name.strip() for name in reader.fieldnames or ()}
        missing = {"username", "password"} - fields
        if missing:
            raise ValueError(
                f"{csv_path}: header must name username,password[,domain][,realm]; "
                f"missing {', '.join(sorted(missing))}"
            )
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            row_domain = row.get("domain") or domain
            if not row["username"] or not row_domain:
                raise ValueError(
                    f"{csv_path}:{lineno}: username and domain (column or --domain) are required"
                )
            yield make_user(row["username"], row_domain, row["password"], row.get("realm") or None)


def _write_batched(store_url: str, users: Iterator[User]) -> int:
    async def op(store: Store) -> int:
        total = 0
        batch: list[User] = []
        for user in users:
            batch.append(user)
            if len(batch) >= _BATCH:
                total += await store.add_users(batch)
                batch = []
        if batch:
            total += await store.add_users(batch)
        return total

    return _run(store_url, op)


def cmd_import(
    store_url: str, csv_path: str, domain: str | None = None, *, out: TextIO = sys.stdout
) -> int:
    """Import users from CSV (header ``username,password[,domain][,realm]``).

    `domain` is used for rows without a domain column/value. Returns the number of users
    written. Raises ValueError (with file:line) on a bad header or row; OSError if unreadable.
    Rows before a bad one may already be written (in batches of 10,000).
    """
    n = _write_batched(store_url, _read_csv(csv_path, domain))
    out.write(f"imported {n} users from {csv_path}\n")
    return n


def cmd_generate(
    store_url: str,
    count: int,
    prefix: str,
    password: str,
    domain: str,
    *,
    start: int = 1,
    out: TextIO = sys.stdout,
) -> int:
    """Create users ``<prefix><n>@domain`` for n in start..start+count-1, all with `password`.

    For load tests (SIPp-style injection files use the same names). Returns the number of
    users written. Raises ValueError if count < 0 or domain is empty.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not domain:
        raise ValueError("domain must not be empty")
    users = (make_user(f"{prefix}{i}", domain, password) for i in range(start, start + count))
    n = _write_batched(store_url, users)
    out.write(f"generated {n} users {prefix}{start}..{prefix}{start + count - 1}@{domain}\n")
    return n
