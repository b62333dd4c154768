"""Dispatcher benchmark: sipha's dispatcher against Kamailio 5.6's dispatcher module.

SIPp's built-in ``uac`` -> load balancer -> four SIPp ``uas`` (probing off on both sides):

- sipha: ``sipha dispatcher --algorithm hash-callid`` with in-transaction failover;
- Kamailio: ``bench/kamailio/dispatcher.cfg.in``: ``ds_select_dst`` hash over Call-ID,
  record-routing, and a tm failure route to the next destination on 503 or timeout.

At rising rates: the highest clean rate (< 0.1 % failed per SIPp), and the CPU seconds per 1,000
calls at a common rate; then the ratios. Targets: sipha's CPU per call at most 1.0x Kamailio's,
and a clean rate at least Kamailio's.

Run: ``.venv/bin/python bench/bench_dispatcher.py [--seconds 5] [--rates 500,1000,...]``
"""

from __future__ import annotations

import argparse

import harness as h
from sipha.common.process import free_port, wait_sip_options


def _servers(procs: h.Procs) -> list[int]:
    return [h.sipp_uas(procs) for _ in range(4)]


def bench_sipha(rates: list[float], seconds: float, common_rate: float) -> tuple[float, float]:
    with h.processes() as procs:
        ports = _servers(procs)
        port = free_port()
        cmd = [*h.SIPHA, "dispatcher", "--listen", f"udp:127.0.0.1:{port}", "--algorithm",
               "hash-callid", "--probe", "off"]
        for p in ports:
            cmd += ["--server", f"sip:127.0.0.1:{p}"]
        disp = procs.start(cmd, log="dispatcher.log")
        wait_sip_options("127.0.0.1", port, timeout=15)
        target = f"127.0.0.1:{port}"
        print("  sipha dispatcher (hash-callid):", flush=True)
        best, _ = h.highest_clean_rate(target, rates, seconds, [disp.pid])
        cpu = h.run_step(target, common_rate, seconds, [disp.pid])
        return best, cpu.cpu_per_1000 if cpu.clean else float("nan")


def bench_kamailio(rates: list[float], seconds: float, common_rate: float) -> tuple[float, float]:
    with h.processes() as procs:
        ports = _servers(procs)
        port = free_port()
        dlist = procs.tmp / "dispatcher.list"
        dlist.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in ports))
        cfg = h.render(
            "kamailio/dispatcher.cfg.in", children=2, ip="127.0.0.1", port=port,
            list_file=dlist,
        )
        kam = h.start_kamailio(procs, cfg, ip="127.0.0.1", port=port)
        target = f"127.0.0.1:{port}"
        print("  Kamailio 5.6 dispatcher (alg 0, tm failure route):", flush=True)
        best, _ = h.highest_clean_rate(target, rates, seconds, [kam.pid])
        cpu = h.run_step(target, common_rate, seconds, [kam.pid])
        return best, cpu.cpu_per_1000 if cpu.clean else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per rate step")
    ap.add_argument("--rates", default="500,1000,1500,2000,2500,3000,3500,4000")
    ap.add_argument("--cpu-rate", type=float, default=500.0, help="rate of the CPU measurement")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    s_best, s_cpu = bench_sipha(rates, args.seconds, args.cpu_rate)
    k_best, k_cpu = bench_kamailio(rates, args.seconds, args.cpu_rate)
    print()
    print(f"{'':24} {'sipha':>10} {'Kamailio':>10} {'ratio':>8}")
    print(f"{'highest clean calls/s':24} {s_best:10.0f} {k_best:10.0f} {s_best / k_best:7.2f}x")
    print(
        f"{'CPU s per 1000 calls':24} {s_cpu:10.3f} {k_cpu:10.3f} {s_cpu / k_cpu:7.2f}x"
        f"   (at {args.cpu_rate:.0f} calls/s; target <= 1.0x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
