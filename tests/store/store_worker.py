"""A separate server process for the multi-process store tests.

Usage: python store_worker.py URL MODE NAME N. Prints "ready", waits for a line on stdin
(so that several workers start their work together), does MODE, prints one JSON result line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from sipha.store import BindingChange, open_store

AOR = "shared@example.com"
T0 = 1_700_000_000.0


async def work(url: str, mode: str, name: str, n: int) -> object:
    store = open_store(url)
    try:
        if mode == "register":
            # n registrations of distinct contacts, each its own REGISTER (Call-ID).
            for i in range(n):
                contact = f"sip:{name}-{i}@10.0.0.1"
                r = await store.update_bindings(
                    AOR,
                    changes=[BindingChange(contact, 3600, f"<{contact}>")],
                    call_id=f"{name}-{i}",
                    cseq=1,
                    now=T0,
                )
                assert r.ok, r
            return n
        if mode == "read":
            return sorted(b.contact for b in await store.get_bindings(AOR, T0 + 1))
        if mode == "secret":
            # Every worker offers its own candidate; all must get the same one back.
            return (await store.shared_secret("race", (name * 32).encode()[:32])).hex()
        if mode == "take":
            return [i for i in range(n) if await store.delete_dialog(f"dlg-{i}")]
        if mode == "nonce":
            # Every worker replays nc=1 of the same n nonces: each may be accepted only once.
            now = time.time()
            return [
                i for i in range(n)
                if await store.advance_nonce_count(f"n{i}", 1, expires_at=now + 60, now=now)
            ]
        raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.close()


def main() -> None:
    url, mode, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(asyncio.run(work(url, mode, name, n))), flush=True)


if __name__ == "__main__":
    main()
