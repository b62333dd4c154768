"""Several server processes starting together on a store file that does not exist yet."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from pathlib import Path

from sipha.store import open_store


def _open_and_count(path: str) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:{path}")
        await store.count_users()
        await store.close()

    asyncio.run(main())


def test_six_processes_open_a_fresh_file_at_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    for round_ in range(3):
        path = str(tmp_path / f"fresh{round_}.db")
        procs = [ctx.Process(target=_open_and_count, args=(path,)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=30)
        assert [p.exitcode for p in procs] == [0] * 6
