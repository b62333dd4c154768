"""Edge benchmark: calls between registered SIPp phones through the sipha dispatcher as the edge
(Path with a flow token, Record-Route) and a sipha server, against Kamailio 5.6 as the edge
(path with received, rr) in front of the same kind of sipha server.

A SIPp uas registers through the edge with digest from the port it then answers on (its flow);
a SIPp uac following the Record-Route set calls it: uac -> edge -> server (location: the
binding's Path) -> edge -> uas, and ACK and BYE along the route set, through the edge both
ways. The CPU counted is the edge's alone (the sipha server behind it is the same on both
sides); the highest clean rate is the whole chain's.

Run: ``.venv/bin/python bench/bench_edge.py [--seconds 5] [--rates 200,400,...]``
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import harness as h
from sipha.common.process import free_port, wait_sip_options

SCENARIOS = h.ROOT / "tests"
UAC = ("-sf", str(SCENARIOS / "server" / "scenarios" / "uac_record_route.xml"))
DOMAIN = "sipha.local"


def _server(procs: h.Procs, alias: str) -> str:
    """A sipha server (registrar + proxy) trusting loopback, its store holding ``callee``."""
    store = f"sqlite:{procs.tmp / 'store.db'}"
    subprocess.run([*h.SIPHA, "users", "--store", store, "add", "callee", "pw"], check=True,
                   capture_output=True, timeout=30)
    port = free_port()
    procs.start([*h.SIPHA, "server", "--listen", f"udp:127.0.0.1:{port}", "--store", store,
                 "--trusted", "127.0.0.0/8", "--alias", alias], log="server.log")
    wait_sip_options("127.0.0.1", port, timeout=15)
    return f"127.0.0.1:{port}"


def _registered_uas(procs: h.Procs, edge: str) -> None:
    """SIPp registers ``callee`` through the edge from a port, then answers calls there."""
    port = free_port()
    register = subprocess.run(
        ["sipp", "-sf", str(SCENARIOS / "dispatcher" / "scenarios" / "outbound_register.xml"),
         edge, "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin", "-s", "callee",
         "-au", "callee", "-ap", "pw", "-auth_uri", DOMAIN, "-set", "dom", DOMAIN,
         "-timeout", "10"],
        capture_output=True, timeout=30, cwd=procs.tmp,
    )
    if register.returncode != 0:
        sys.exit(f"registration through {edge} failed:\n{register.stdout.decode()[-2000:]}")
    procs.start(["sipp", "-sf", str(SCENARIOS / "dispatcher" / "scenarios" /
                                    "uas_record_route.xml"),
                 "-i", "127.0.0.1", "-p", str(port), "-nostdin", *h.SIPP_FAST])
    time.sleep(0.3)


@contextlib.contextmanager
def sipha_system() -> Iterator[h.System]:
    with h.processes() as procs:
        port = free_port()
        edge = f"127.0.0.1:{port}"
        server = _server(procs, edge)
        # One server behind the edge, as behind Kamailio: no in-transaction failover to judge
        # it by (a loaded machine's slow 100 Trying would mark it failed with nobody left).
        disp = procs.start([*h.SIPHA, "dispatcher", "--listen", f"udp:{edge}", "--probe", "off",
                            "--failover-timeout", "5", "--server", f"sip:{server}"],
                           log="dispatcher.log")
        wait_sip_options("127.0.0.1", port, timeout=15)
        _registered_uas(procs, edge)
        yield h.System("sipha dispatcher as the edge", edge, [disp.pid],
                       sipp=("-s", "callee"), scenario=UAC)


@contextlib.contextmanager
def kamailio_system() -> Iterator[h.System]:
    with h.processes() as procs:
        port = free_port()
        edge = f"127.0.0.1:{port}"
        server = _server(procs, edge)
        cfg = h.render("kamailio/edge.cfg.in", children=2, ip="127.0.0.1", port=port,
                       server=server)
        kam = h.start_kamailio(procs, cfg, ip="127.0.0.1", port=port)
        _registered_uas(procs, edge)
        yield h.System("Kamailio 5.6 edge (path, rr, tm)", edge, [kam.pid],
                       sipp=("-s", "callee"), scenario=UAC)


def main() -> int:
    return h.compare_main(
        __doc__, rates="200,400,600,800,1000,1200", cpu_rate=200.0, target="<= 1.0x",
        ours=sipha_system, peer=kamailio_system,
    )


if __name__ == "__main__":
    raise SystemExit(main())
