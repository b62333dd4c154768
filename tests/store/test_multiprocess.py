"""Several server processes on one store: they see each other's writes and never lose one.

Runs for both backends; for SQLite this is the one-file-per-host WAL setup.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sipha.store import BindingChange, DialogRecord, Store
from tests.store.helpers import run_with
from tests.store.store_worker import AOR, T0

WORKER = Path(__file__).with_name("store_worker.py")


def run_workers(url: str, jobs: list[tuple[str, str, int]]) -> list[object]:
    """Start one process per (mode, name, n), release them together, return their results."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, mode, name, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode, name, n in jobs
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0, out
            results.append(json.loads(out))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_processes_see_each_others_registrations(store_url: str) -> None:
    (n,) = run_workers(store_url, [("register", "a", 1)])
    assert n == 1
    (seen,) = run_workers(store_url, [("read", "b", 0)])
    assert seen == ["sip:a-0@10.0.0.1"]

    async def parent_registers(store: Store) -> None:
        contact = "sip:parent@10.0.0.2"
        r = await store.update_bindings(
            AOR, changes=[BindingChange(contact, 60, f"<{contact}>")], call_id="p", cseq=1,
            now=T0,
        )
        assert r.ok

    run_with(store_url, parent_registers)
    (seen,) = run_workers(store_url, [("read", "c", 0)])
    assert seen == ["sip:a-0@10.0.0.1", "sip:parent@10.0.0.2"]


def test_concurrent_registrations_from_two_processes_lose_nothing(store_url: str) -> None:
    n = 150
    assert run_workers(store_url, [("register", "a", n), ("register", "b", n)]) == [n, n]

    async def read(store: Store) -> list[str]:
        return [b.contact for b in await store.get_bindings(AOR, T0 + 1)]

    contacts = run_with(store_url, read)
    assert len(contacts) == 2 * n
    assert set(contacts) == {f"sip:{w}-{i}@10.0.0.1" for w in "ab" for i in range(n)}


def test_two_processes_take_each_dialog_exactly_once(store_url: str) -> None:
    n = 200

    async def put(store: Store) -> None:
        for i in range(n):
            rec = DialogRecord(f"dlg-{i}", "l", "r", "srv1", T0, T0 + 60)
            await store.put_dialog(rec.call_id, rec, ttl=300)

    run_with(store_url, put)
    a, b = run_workers(store_url, [("take", "a", n), ("take", "b", n)])
    assert isinstance(a, list)
    assert isinstance(b, list)
    assert sorted(a + b) == list(range(n))
