"""Server benchmark: the sipha server against Kamailio 5.6 as the same stateful proxy.

SIPp's built-in ``uac`` calls ``service`` through the proxy under test to a SIPp ``uas``:

- sipha: ``sipha server`` with the callee's binding for ``service`` in its store, so each INVITE
  goes through a location lookup, Record-Route, and the stateful proxy (transactions);
- Kamailio: ``bench/kamailio/proxy.cfg.in``, record-routing and relaying with ``tm``.

For each, at rising rates, the highest clean rate (< 0.1 % failed per SIPp) and the CPU seconds
per 1,000 calls at a common rate; then the ratios. Target: sipha's CPU per call at most 2x
Kamailio's.

Run: ``.venv/bin/python bench/bench_server.py [--seconds 5] [--rates 200,400,...]``
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import harness as h
from sipha.common.process import free_port, wait_sip_options
from sipha.store import BindingChange, open_store


async def _bind(store_url: str, aor: str, contact: str) -> None:
    store = open_store(store_url)
    try:
        now = time.time()
        change = BindingChange(contact=contact, expires=3600, raw=f"<{contact}>")
        result = await store.update_bindings(
            aor, changes=[change], call_id="bench-bind", cseq=1, now=now
        )
        assert result.ok, result
    finally:
        await store.close()


@contextlib.contextmanager
def sipha_system() -> Iterator[h.System]:
    with h.processes() as procs:
        uas = h.sipp_uas(procs)
        port = free_port()
        store = f"sqlite:{procs.tmp / 'bench.db'}"
        asyncio.run(_bind(store, "service@127.0.0.1", f"sip:service@127.0.0.1:{uas}"))
        server = procs.start(
            [*h.SIPHA, "server", "--listen", f"udp:127.0.0.1:{port}", "--store", store,
             "--domain", "127.0.0.1"],
            log="server.log",
        )
        wait_sip_options("127.0.0.1", port, timeout=15)
        yield h.System("sipha server (stateful proxy)", f"127.0.0.1:{port}", [server.pid])


@contextlib.contextmanager
def kamailio_system() -> Iterator[h.System]:
    with h.processes() as procs:
        uas = h.sipp_uas(procs)
        port = free_port()
        cfg = h.render(
            "kamailio/proxy.cfg.in", children=2, ip="127.0.0.1", port=port,
            callee=f"127.0.0.1:{uas}",
        )
        kam = h.start_kamailio(procs, cfg, ip="127.0.0.1", port=port)
        yield h.System("Kamailio 5.6 (tm + rr)", f"127.0.0.1:{port}", [kam.pid])


def main() -> int:
    return h.compare_main(
        __doc__, rates="200,400,600,800,1000,1300,1600,2000,2500,3000", cpu_rate=300.0,
        target="<= 2x",
        ours=sipha_system, peer=kamailio_system,
    )


if __name__ == "__main__":
    raise SystemExit(main())
