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

import argparse
import asyncio
import time

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


def bench_sipha(rates: list[float], seconds: float, common_rate: float) -> tuple[float, float]:
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
        target = f"127.0.0.1:{port}"
        print("  sipha server (stateful proxy):", flush=True)
        best, _ = h.highest_clean_rate(target, rates, seconds, [server.pid])
        cpu = h.run_step(target, common_rate, seconds, [server.pid])
        return best, cpu.cpu_per_1000 if cpu.clean else float("nan")


def bench_kamailio(rates: list[float], seconds: float, common_rate: float) -> tuple[float, float]:
    with h.processes() as procs:
        uas = h.sipp_uas(procs)
        port = free_port()
        cfg = h.render(
            "kamailio/proxy.cfg.in", children=2, ip="127.0.0.1", port=port,
            callee=f"127.0.0.1:{uas}",
        )
        kam = h.start_kamailio(procs, cfg, ip="127.0.0.1", port=port)
        target = f"127.0.0.1:{port}"
        print("  Kamailio 5.6 (tm + rr):", flush=True)
        best, _ = h.highest_clean_rate(target, rates, seconds, [kam.pid])
        cpu = h.run_step(target, common_rate, seconds, [kam.pid])
        return best, cpu.cpu_per_1000 if cpu.clean else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per rate step")
    ap.add_argument("--rates", default="200,400,600,800,1000,1300,1600,2000,2500,3000")
    ap.add_argument("--cpu-rate", type=float, default=300.0, help="rate of the CPU measurement")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    s_best, s_cpu = bench_sipha(rates, args.seconds, args.cpu_rate)
    k_best, k_cpu = bench_kamailio(rates, args.seconds, args.cpu_rate)
    print()
    print(f"{'':24} {'sipha':>10} {'Kamailio':>10} {'ratio':>8}")
    print(f"{'highest clean calls/s':24} {s_best:10.0f} {k_best:10.0f} {s_best / k_best:7.2f}x")
    print(
        f"{'CPU s per 1000 calls':24} {s_cpu:10.3f} {k_cpu:10.3f} {s_cpu / k_cpu:7.2f}x"
        f"   (at {args.cpu_rate:.0f} calls/s; target <= 2x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
