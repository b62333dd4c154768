"""Network faults checked on the wire, between the test's own hosts.

Four namespaces (a, b, c, d) on a bridge, built by the test bed's own `Hosts`; a UDP echo in
each; the nemesis (`Nemesis` + `Applier`, as `sipha run` uses them) installs a fault and a
prober in ``a`` sends numbered datagrams to the others and counts the echoes:

* loss 40 % on the link a<->b drops (both ways) about 64 % of the round trips, a<->c none;
* delay 100 ms on b delays every round trip a<->b by >= 200 ms, a<->c stays fast;
* duplicate 100 % on a<->b doubles the echoes;
* a partition [a] | [b, c] blocks a<->b and a<->c exactly, while a<->d and b<->c pass,
  and the heal restores a<->b;
* reorder, corrupt and rate are accepted by tc with the parameters asked for.

Everything (processes, namespaces) is removed by `Hosts.destroy` in a finally block.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.testbed.nemesis import Applier, Nemesis, kernel_has_netem
from sipha.testbed.netns import Hosts, run_prefix
from sipha.testbed.plan import Fault

ECHO_PORT = 9999
ADDR = {"a": "10.213.0.31", "b": "10.213.0.32", "c": "10.213.0.33", "d": "10.213.0.34"}

# A reply dropped by our own nftables output rule fails with EPERM: the echo goes on.
ECHO = rf"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {ECHO_PORT}))
while True:
    data, peer = s.recvfrom(2048)
    try:
        s.sendto(data, peer)
    except OSError:
        pass
"""

# argv: targets (comma-separated), count, interval (s); prints per target: echoes received
# (counting duplicates), distinct sequence numbers, median round trip (ms).
PROBE = r"""
import json, select, socket, sys, time
targets, count, interval = sys.argv[1].split(","), int(sys.argv[2]), float(sys.argv[3])
socks = {}
for t in targets:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((t, PORT))
    socks[s] = t
sent = {}
got = {t: [] for t in targets}
def drain(timeout):
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select(list(socks), [], [], left)
        for s in ready:
            try:
                data = s.recv(2048)
            except OSError:
                continue
            seq = int(data.split(b" ")[1])
            got[socks[s]].append((seq, time.monotonic() - sent[(socks[s], seq)]))
for i in range(count):
    for s, t in socks.items():
        sent[(t, i)] = time.monotonic()
        try:
            s.send(b"probe %d " % i + b"x" * 64)
        except OSError:
            pass
    drain(interval)
drain(0.4)
out = {}
for t, rs in got.items():
    rtts = sorted(r for _, r in rs)
    out[t] = {"echoes": len(rs), "distinct": len({q for q, _ in rs}),
              "rtt_ms": rtts[len(rtts) // 2] * 1000 if rtts else None}
print(json.dumps(out))
""".replace("PORT", str(ECHO_PORT))


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    h = Hosts(run_prefix() + "x", dict(ADDR))
    echoes: list[subprocess.Popen[bytes]] = []
    try:
        h.create()
        for host in ADDR:
            echoes.append(subprocess.Popen(
                h.exec_argv(ADDR[host], [sys.executable, "-c", ECHO]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield h
    finally:
        left = h.destroy()  # also SIGKILLs the echo processes inside the namespaces
        for e in echoes:
            e.kill()
            e.wait(timeout=5)
        assert left == []


def probe(h: Hosts, src: str, dsts: list[str], *, count: int = 100,
          interval: float = 0.005) -> dict[str, dict[str, float]]:
    out = subprocess.run(h.exec_argv(ADDR[src], [
        sys.executable, "-c", PROBE, ",".join(ADDR[d] for d in dsts), str(count),
        str(interval)]), capture_output=True, text=True, timeout=30, check=True).stdout
    by_addr = json.loads(out)
    return {d: by_addr[ADDR[d]] for d in dsts}


def nemesis(h: Hosts, *faults: Fault) -> tuple[Nemesis, Applier]:
    n = Nemesis(list(faults), addresses={k: [v] for k, v in ADDR.items()},
                groups={"servers": ["b", "c"]}, dispatchers=["a", "b"])
    wires = {k: (p.pid, h.wire_rules(k)) for k, p in h.wires.items()}
    return n, Applier({k: h.ns(k) for k in ADDR}, netem=kernel_has_netem(h.bridge),
                      wires=wires, addresses=n.addresses)


def wire_if_no_netem(h: Hosts, host: str) -> None:
    """What `sipha run` does on a kernel without sch_netem: a bump in the wire for the host
    a delay, reorder or corrupt fault names."""
    if not kernel_has_netem(h.bridge):
        h.add_wires([host])


def start(h: Hosts, *faults: Fault) -> tuple[Nemesis, Applier]:
    n, applier = nemesis(h, *faults)
    n.due(0.0)
    assert applier.apply(n.desired()) == []
    return n, applier


def wait_echo(h: Hosts) -> None:
    """Every echo answers (they start in parallel with the test)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = probe(h, "a", ["b", "c", "d"], count=3, interval=0.05)
        if all(v["distinct"] == 3 for v in r.values()):
            return
    raise AssertionError("echo servers did not answer")


@pytest.mark.timeout(60)
def test_loss_drops_datagrams_on_the_link_only(hosts: Hosts) -> None:
    wait_echo(hosts)
    start(hosts, Fault(at=0, action="loss", link=["a", "b"], percent=40))
    r = probe(hosts, "a", ["b", "c"], count=200)
    # A round trip survives with 0.6 x 0.6 = 36 %: 72 of 200 expected, far from both ends.
    assert 20 <= r["b"]["distinct"] <= 140, r
    assert r["c"]["distinct"] == 200, r


@pytest.mark.timeout(60)
def test_delay_on_a_node_delays_its_round_trips(hosts: Hosts) -> None:
    wire_if_no_netem(hosts, "b")
    wait_echo(hosts)
    start(hosts, Fault(at=0, action="delay", target="b", delay_ms=100, jitter_ms=10))
    r = probe(hosts, "a", ["b", "c"], count=20, interval=0.02)
    assert r["b"]["distinct"] == 20, r
    assert r["c"]["distinct"] == 20, r
    assert r["b"]["rtt_ms"] >= 180, r  # 100 +- 10 ms each way
    assert r["c"]["rtt_ms"] < 100, r


@pytest.mark.timeout(60)
def test_duplicate_doubles_the_echoes(hosts: Hosts) -> None:
    wait_echo(hosts)
    start(hosts, Fault(at=0, action="duplicate", link=["a", "b"], percent=100))
    r = probe(hosts, "a", ["b", "c"], count=20, interval=0.02)
    # Each way doubles: 2 copies reach b, each echoed twice back: 4 per datagram.
    assert r["b"]["distinct"] == 20, r
    assert r["b"]["echoes"] >= 60, r
    assert r["c"]["echoes"] == 20, r


@pytest.mark.timeout(60)
def test_partition_blocks_exactly_the_pairs_across_groups_until_healed(hosts: Hosts) -> None:
    wait_echo(hosts)
    n, applier = nemesis(hosts, Fault(at=0, action="partition", groups=[["a"], ["servers"]]),
                         Fault(at=5, action="heal"))
    n.due(0.0)
    assert applier.apply(n.desired()) == []
    from_a = probe(hosts, "a", ["b", "c", "d"], count=10, interval=0.01)
    from_b = probe(hosts, "b", ["c", "d"], count=10, interval=0.01)
    assert from_a["b"]["echoes"] == 0, from_a
    assert from_a["c"]["echoes"] == 0, from_a
    assert from_a["d"]["distinct"] == 10, from_a
    assert from_b["c"]["distinct"] == 10, from_b
    assert from_b["d"]["distinct"] == 10, from_b
    [healed] = n.due(5.0)
    assert not healed.started
    assert applier.apply(n.desired()) == []
    assert probe(hosts, "a", ["b", "c"], count=10, interval=0.01)["b"]["distinct"] == 10
    rules = subprocess.run(["ip", "netns", "exec", hosts.ns("a"), "nft", "list", "ruleset"],
                           capture_output=True, text=True, timeout=10, check=True).stdout
    assert "sipha_nemesis" not in rules  # healed: our table is gone


@pytest.mark.timeout(60)
def test_rate_limits_one_link(hosts: Hosts) -> None:
    wait_echo(hosts)
    start(hosts, Fault(at=0, action="rate", link=["a", "b"], kbit=64))
    shown = subprocess.run(["tc", "-n", hosts.ns("a"), "class", "show", "dev", "eth0"],
                           capture_output=True, text=True, timeout=10, check=True).stdout
    assert "rate 64Kbit" in shown, shown
    # 100 datagrams of ~100 bytes on the wire at 5 ms = 160 kbit/s offered to a 64 kbit/s
    # link: the queue grows, so the median round trip to b is far above c's.
    r = probe(hosts, "a", ["b", "c"], count=100)
    assert r["b"]["rtt_ms"] is not None, r
    assert r["b"]["rtt_ms"] > 50, r
    assert r["c"]["rtt_ms"] < 50, r


@pytest.mark.timeout(60)
def test_corrupt_frames_fail_their_checksum_and_reorder_is_installed(hosts: Hosts) -> None:
    wire_if_no_netem(hosts, "a")
    wait_echo(hosts)
    start(hosts, Fault(at=0, action="corrupt", link=["a", "b"], percent=100),
          Fault(at=0, action="reorder", link=["a", "c"], percent=25))
    # Every datagram to b has a bit flipped: b's kernel drops it (UDP checksum).
    r = probe(hosts, "a", ["b", "c", "d"], count=20, interval=0.01)
    assert r["b"]["echoes"] == 0, r
    assert r["d"]["distinct"] == 20, r
    assert r["c"]["distinct"] == 20, r  # reordered (and so delayed), never lost
    if hosts.wires:
        rules = json.loads(hosts.wire_rules("a").read_text())
        assert rules["egress"][ADDR["c"]]["reorder"] == 25, rules
    else:
        shown = subprocess.run(["tc", "-n", hosts.ns("a"), "qdisc", "show", "dev", "eth0"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
        assert "reorder 25%" in shown, shown


def test_hosts_leave_nothing_behind(tmp_path: Path) -> None:
    h = Hosts(run_prefix() + "y", {"a": ADDR["a"]})
    h.create()
    assert h.state_file.exists()
    assert h.destroy() == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=10, check=True).stdout
    assert h.prefix not in listed
    assert not h.state_file.exists()
