"""An IPv6 service address moves between hosts (network namespaces) in ip mode.

d1 takes the address (``IpAddress.acquire``: ``ip addr replace ... nodad`` and unsolicited
Neighbour Advertisements); a client reaches it, so its neighbour cache points at d1. d1 gives
it up and d2 takes it: the client's watcher sees d2's unsolicited NA (to all nodes, hop limit
255, Override set, d2's MAC as target link-layer address), and the client's cache points at
d2 before the client asks anything (RFC 4861 §7.2.5), so its next packet reaches d2.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from sipha.ha.address import unsolicited_na

from .netns import PYTHON, Topology, available, ip, topology, wait_for

VIP6 = "fd00:213::10"

# Prints every Neighbour Advertisement for one target seen on a device: time, hop limit,
# flags, source MAC, and the target link-layer address option. Runs in the client's namespace.
NA_WATCH = r"""
import socket, struct, sys, time
dev, target = sys.argv[1], socket.inet_pton(socket.AF_INET6, sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
s.bind((dev, 0))
print("ready", flush=True)
while True:
    f = s.recv(2048)
    if len(f) < 14 + 40 + 24 or f[14 + 6] != 58 or f[14 + 40] != 136:
        continue
    hops = f[14 + 7]
    flags = struct.unpack("!I", f[14 + 44:14 + 48])[0]
    if f[14 + 48:14 + 64] != target:
        continue
    lla = f[14 + 66:14 + 72].hex(":") if len(f) >= 14 + 72 and f[14 + 64] == 2 else ""
    print(f"{time.time():.6f} {hops} {flags >> 29} {f[6:12].hex(':')} {lla}", flush=True)
"""

ADDRESS = """
import asyncio, sys
from sipha.ha.address import IpAddress
owner = IpAddress(sys.argv[2], "eth0")
asyncio.run(owner.acquire() if sys.argv[1] == "acquire" else owner.release())
print(owner.garps_sent)
"""

# Whether the address answers: a TCP connection to a closed port is refused (RST) by the host
# that has it. (No ping on a minimal Debian.)
REACH = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(1.0)
try:
    s.connect((sys.argv[1], 9))
except ConnectionRefusedError:
    print("reached")
except OSError as exc:
    print(exc)
"""


def _v6(topo: Topology, node: str, n: int) -> None:
    ip("-n", topo.ns(node), "addr", "add", f"fd00:213::{n}/64", "dev", "eth0", "nodad")


def _neighbour6(topo: Topology, node: str, address: str) -> str | None:
    out = json.loads(ip("-n", topo.ns(node), "-j", "-6", "neigh", "show", address) or "[]")
    return next((str(e["lladdr"]) for e in out if e.get("lladdr")), None)


def _holders(topo: Topology) -> list[str]:
    out = []
    for node in ("d1", "d2"):
        data = json.loads(ip("-n", topo.ns(node), "-j", "-6", "addr", "show", "dev", "eth0"))
        if any(a.get("local") == VIP6 for a in data[0].get("addr_info", [])):
            out.append(node)
    return out


def test_unsolicited_na_body_is_rfc4861() -> None:
    mac = bytes.fromhex("02aabbccddee")
    body = unsolicited_na(mac, VIP6)
    kind, code, _sum, flags = struct.unpack("!BBHI", body[:8])
    assert (kind, code) == (136, 0)
    assert flags >> 29 == 0b001  # Router 0, Solicited 0, Override 1
    assert body[8:24] == bytes.fromhex("fd000213000000000000000000000010")
    assert body[24:32] == b"\x02\x01" + mac  # target link-layer address, 8 octets


def test_ipv6_service_address_moves_with_unsolicited_na(tmp_path: Path) -> None:
    missing = available()
    assert missing is None, f"namespace test bed unavailable: {missing} (make test installs it)"
    with topology(tmp_path, nodes=("d1", "d2", "c")) as topo:
        for n, node in enumerate(("d1", "d2", "c"), 1):
            _v6(topo, node, n)
        mac_d1, mac_d2 = topo.mac("d1"), topo.mac("d2")
        log = tmp_path / "na-c.log"
        topo.spawn("c", [PYTHON, "-c", NA_WATCH, "eth0", VIP6], log)
        wait_for("NA watcher", lambda: "ready" in log.read_text(), 10)

        assert topo.run("d1", PYTHON, "-c", ADDRESS, "acquire", VIP6).strip() == "2"
        assert _holders(topo) == ["d1"]
        wait_for("the client reaches d1", lambda: "reached" in topo.run(
            "c", PYTHON, "-c", REACH, VIP6), 10)
        assert _neighbour6(topo, "c", VIP6) == mac_d1

        topo.run("d1", PYTHON, "-c", ADDRESS, "release", VIP6)
        assert topo.run("d2", PYTHON, "-c", ADDRESS, "acquire", VIP6).strip() == "2"
        assert _holders(topo) == ["d2"]
        # The client's cache moved on the advertisement alone: it sent nothing since.
        wait_for("the client's cache to point at d2",
                 lambda: _neighbour6(topo, "c", VIP6) == mac_d2, 5, logs=[log])
        seen = [line.split() for line in log.read_text().splitlines()[1:]]
        from_d2 = [s for s in seen if s[3] == mac_d2]
        assert from_d2, seen
        for _t, hops, flags, _src, lla in from_d2:
            assert hops == "255"
            assert int(flags) & 0b001  # Override
            assert not int(flags) & 0b010  # not Solicited: unsolicited
            assert lla == mac_d2
        assert "reached" in topo.run("c", PYTHON, "-c", REACH, VIP6)
        assert _neighbour6(topo, "c", VIP6) == mac_d2
