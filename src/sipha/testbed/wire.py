"""A bump in the wire: delay, jitter, reorder and corruption in user space, for kernels
without sch_netem.

Theory of operation
-------------------
Some kernels (VM kernels built lean) have no ``sch_netem``, and nothing else in the kernel
can hold a packet back for a while.  For a host that a delay, reorder or corrupt fault names,
the run then cuts its cable in two (see :meth:`sipha.testbed.netns.Hosts.create`): the host's
``eth0`` ends in the bridge namespace on a port that is *not* on the bridge, and a second veth
pair joins the bridge; this process, in the bridge namespace, carries every frame between the
two ends (AF_PACKET sockets), as netem would: frames to or from an impaired peer wait their
delay (plus a uniform jitter), some are sent at once (reorder) or get a bit flipped in the IP
payload (corrupt, so the receiver's checksum rejects them); everything else, ARP included,
passes at once.

:class:`WireCore` is sans-IO: frames and ``now`` in, frames to send out, ``next_deadline()``
for the loop's one timer; its randomness is an injected ``random.Random``.  The loop
(:func:`main`) reads the rules from a JSON file again on SIGHUP (the runner's nemesis writes
it); the hosts' interfaces run without checksum and segmentation offloads, so every frame that
crosses here is complete.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import ipaddress
import json
import random
import select
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Direction", "Forward", "Impairment", "WireCore", "main"]

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4


class Direction(enum.Enum):
    EGRESS = "egress"  # from the host, out to the bridge: impaired by destination
    INGRESS = "ingress"  # from the bridge, in to the host: impaired by source


@dataclass(frozen=True, slots=True)
class Impairment:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0  # percent sent at once, ahead of the delayed ones
    corrupt: float = 0.0  # percent with one bit flipped

    @classmethod
    def of(cls, params: Mapping[str, float]) -> Impairment:
        delay = params.get("delay_ms", 0.0)
        if params.get("reorder", 0.0) > 0 and delay <= 0:
            delay = 10.0  # as netem: reordering needs something to overtake
        return cls(delay, params.get("jitter_ms", 0.0), params.get("reorder", 0.0),
                   params.get("corrupt", 0.0))


@dataclass(frozen=True, slots=True)
class Forward:
    """Send ``frame`` on in ``direction``."""

    direction: Direction
    frame: bytes


class WireCore:
    """Decides when each frame goes on; ``rules`` maps (direction, peer IPv4) to what that
    peer's traffic suffers."""

    __slots__ = ("_queue", "_rng", "_seq", "rules")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queue: list[tuple[float, int, Forward]] = []
        self._seq = 0
        self.rules: dict[tuple[Direction, str], Impairment] = {}

    @staticmethod
    def peer(direction: Direction, frame: bytes) -> str | None:
        """The impaired side's IPv4 address of an IPv4 frame (None for anything else)."""
        if len(frame) < 34 or int.from_bytes(frame[12:14], "big") != _ETH_P_IP:
            return None
        raw = frame[30:34] if direction is Direction.EGRESS else frame[26:30]
        return str(ipaddress.IPv4Address(raw))

    def frame_received(self, direction: Direction, frame: bytes, now: float) -> list[Forward]:
        """A frame arrived; returns what goes on at once (the rest waits for ``due``)."""
        peer = self.peer(direction, frame)
        rule = self.rules.get((direction, peer)) if peer is not None else None
        if rule is None:
            return [Forward(direction, frame)]
        if rule.corrupt > 0 and self._rng.random() * 100 < rule.corrupt and len(frame) > 34:
            bit = self._rng.randrange((len(frame) - 34) * 8)
            data = bytearray(frame)
            data[34 + bit // 8] ^= 1 << (bit % 8)
            frame = bytes(data)
        if rule.reorder > 0 and self._rng.random() * 100 < rule.reorder:
            return [Forward(direction, frame)]
        delay = rule.delay_ms + self._rng.uniform(-rule.jitter_ms, rule.jitter_ms)
        if delay <= 0:
            return [Forward(direction, frame)]
        self._seq += 1
        heapq.heappush(self._queue, (now + delay / 1000.0, self._seq, Forward(direction, frame)))
        return []

    def due(self, now: float) -> list[Forward]:
        out: list[Forward] = []
        while self._queue and self._queue[0][0] <= now:
            out.append(heapq.heappop(self._queue)[2])
        return out

    def next_deadline(self) -> float | None:
        return self._queue[0][0] if self._queue else None


def load_rules(path: Path) -> dict[tuple[Direction, str], Impairment]:
    """``{"egress": {ip: params}, "ingress": {ip: params}}``; a missing file is no rule."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    rules: dict[tuple[Direction, str], Impairment] = {}
    for direction in Direction:
        for address, params in (data.get(direction.value) or {}).items():
            rules[(direction, str(address))] = Impairment.of(
                {str(k): float(v) for k, v in params.items()})
    return rules


def _socket(device: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    s.bind((device, 0))
    s.setblocking(False)
    return s


def main(host_dev: str, bridge_dev: str, rules_path: Path) -> int:
    """Carry frames between ``host_dev`` (the host's cable end) and ``bridge_dev`` (the
    bridge's) until SIGTERM; reload the rules on SIGHUP."""
    reload = [True]
    stop = [False]
    signal.signal(signal.SIGHUP, lambda *_: reload.__setitem__(0, True))
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    core = WireCore(random.Random())
    host, bridge = _socket(host_dev), _socket(bridge_dev)
    out = {Direction.EGRESS: bridge, Direction.INGRESS: host}
    came = {host: Direction.EGRESS, bridge: Direction.INGRESS}
    print("ready", flush=True)
    while not stop[0]:
        if reload[0]:
            reload[0] = False
            core.rules = load_rules(rules_path)
        deadline = core.next_deadline()
        timeout = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready, _, _ = select.select([host, bridge], [], [], min(timeout, 0.5))
        except InterruptedError:
            continue
        now = time.monotonic()
        sends: list[Forward] = []
        for s in ready:
            for _ in range(64):  # a burst, bounded so the timer is not starved
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == _PACKET_OUTGOING:
                    continue  # what we sent ourselves, seen leaving
                sends += core.frame_received(came[s], frame, now)
        sends += core.due(now)
        for f in sends:
            # A full queue or a frame too big: lost, as on a wire.
            with contextlib.suppress(OSError):
                out[f.direction].send(f.frame)
    return 0


if __name__ == "__main__":  # python -m sipha.testbed.wire HOST_DEV BRIDGE_DEV RULES.json
    if len(sys.argv) != 4:
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
