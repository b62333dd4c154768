"""Dispatcher benchmark: sipha's dispatcher against Kamailio 5.6's dispatcher module.

SIPp's built-in ``uac`` -> load balancer -> four SIPp ``uas`` (probing off on both sides):

- sipha: ``sipha dispatcher --algorithm hash-callid`` with in-transaction failover;
- Kamailio: ``bench/kamailio/dispatcher.cfg.in``: ``ds_select_dst`` hash over Call-ID,
  record-routing, and a tm failure route to the next destination on 503 or timeout.

At rising rates: the highest clean rate (< 0.1 % failed per SIPp), and the CPU seconds per 1,000
calls at a common rate; then the ratios. Targets: sipha's CPU per call at most 1.0x Kamailio's,
and a clean rate at least Kamailio's.

Run: ``.venv/bin/python bench/bench_dispatcher.py [--seconds 5] [--rates 500,1000,...]``;
``--also`` adds sipha's pure-Python build (``SIPHA_PURE=1``) to the same alternation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import harness as h
from sipha.common.process import free_port, wait_sip_options


def _servers(procs: h.Procs) -> list[int]:
    return [h.sipp_uas(procs) for _ in range(4)]


@contextlib.contextmanager
def sipha_system(pure: bool = False) -> Iterator[h.System]:
    with h.processes() as procs:
        ports = _servers(procs)
        port = free_port()
        # `env` execs Python in its own PID, so the CPU accounting follows the dispatcher.
        build = ["env", "SIPHA_PURE=1"] if pure else ["env", "SIPHA_PURE=0"]
        cmd = [*build, *h.SIPHA, "dispatcher", "--listen", f"udp:127.0.0.1:{port}", "--algorithm",
               "hash-callid", "--probe", "off"]
        for p in ports:
            cmd += ["--server", f"sip:127.0.0.1:{p}"]
        disp = procs.start(cmd, log="dispatcher.log")
        wait_sip_options("127.0.0.1", port, timeout=15)
        label = "sipha dispatcher, pure build" if pure else "sipha dispatcher (hash-callid)"
        yield h.System(label, f"127.0.0.1:{port}", [disp.pid])


def sipha_pure_system() -> contextlib.AbstractContextManager[h.System]:
    return sipha_system(pure=True)


@contextlib.contextmanager
def kamailio_system() -> Iterator[h.System]:
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
        yield h.System("Kamailio 5.6 dispatcher (alg 0, tm failure route)",
                       f"127.0.0.1:{port}", [kam.pid])


def main() -> int:
    return h.compare_main(
        __doc__, rates="500,1000,1500,2000,2500,3000,3500,4000", cpu_rate=500.0, target="<= 1.0x",
        ours=sipha_system, peer=kamailio_system, also=sipha_pure_system,
    )


if __name__ == "__main__":
    raise SystemExit(main())
