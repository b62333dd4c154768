"""Digest nonce-counts in the shared store (RFC 2617 §3.2.2): a count is accepted once in the
whole cluster, only above the highest accepted, and forgotten when the nonce expires."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipha.store import Store
from tests.store.helpers import run_with
from tests.store.test_multiprocess import run_workers


def test_a_count_is_accepted_once_and_only_upwards(store_url: str) -> None:
    async def scenario(store: Store) -> list[bool]:
        now = time.time()
        until = now + 60

        async def take(nonce: str, nc: int) -> bool:
            return await store.advance_nonce_count(nonce, nc, expires_at=until, now=now)

        return [
            await take("abc", 1),
            await take("abc", 1),  # the replay
            await take("abc", 3),
            await take("abc", 2),  # lower than one accepted
            await take("other", 1),  # nonces are independent
            await take("abc", 4),
        ]

    assert run_with(store_url, scenario) == [True, False, True, False, True, True]


def test_the_record_expires_with_the_nonce(store_url: str) -> None:
    async def scenario(store: Store) -> tuple[bool, bool]:
        now = time.time()
        first = await store.advance_nonce_count("short", 5, expires_at=now + 0.2, now=now)
        # Redis expires the key on its own clock: wait that out (a short, real wait).
        await asyncio.sleep(0.4)
        later = time.time()
        await store.purge_expired(later)
        # A nonce this old is stale and refused by the verifier before the store is asked;
        # the store only has to forget it rather than keep it for ever.
        again = await store.advance_nonce_count("short", 1, expires_at=later + 60, now=later)
        return first, again

    assert run_with(store_url, scenario) == (True, True)


def test_bad_arguments_are_refused(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        now = time.time()
        for nonce, nc, until in (("", 1, now + 1), ("x" * 300, 1, now + 1), ("n", 0, now + 1),
                                 ("n", 2**32, now + 1), ("n", 1, now)):
            with pytest.raises(ValueError, match=r"nonce|must"):
                await store.advance_nonce_count(nonce, nc, expires_at=until, now=now)

    run_with(store_url, scenario)


def test_processes_racing_on_one_nonce_accept_it_once(store_url: str) -> None:
    results = run_workers(store_url, [("nonce", f"w{i}", 40) for i in range(4)])
    taken = sorted(i for r in results for i in r)  # type: ignore[attr-defined]
    assert taken == list(range(40))
