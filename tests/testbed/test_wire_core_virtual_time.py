"""The bump in the wire's core on virtual time: who waits how long, who overtakes, which bit
flips, and what passes untouched."""

from __future__ import annotations

import random
import socket

from sipha.testbed.wire import Direction, Forward, Impairment, WireCore

OUT, IN = Direction.EGRESS, Direction.INGRESS


def frame(src: str, dst: str, payload: bytes = b"x" * 40) -> bytes:
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
    ip = b"\x45\x00" + (20 + len(payload)).to_bytes(2, "big") + b"\x00" * 5 + b"\x11\x00\x00"
    return eth + ip + socket.inet_aton(src) + socket.inet_aton(dst) + payload


def core(**rules: Impairment) -> WireCore:
    c = WireCore(random.Random(7))
    for key, imp in rules.items():
        direction, address = key.split("_", 1)
        c.rules[(Direction(direction), address.replace("_", "."))] = imp
    return c


def test_delay_with_jitter_holds_each_frame_within_its_bounds() -> None:
    c = core(egress_10_0_0_2=Impairment(delay_ms=20, jitter_ms=10))
    for i in range(200):
        assert c.frame_received(OUT, frame("10.0.0.1", "10.0.0.2", bytes([i]) * 40), 0.0) == []
    assert c.due(0.0099) == []
    released = c.due(0.0301)
    assert len(released) == 200
    assert c.next_deadline() is None
    # Other destinations, the other direction and ARP pass at once.
    other = frame("10.0.0.1", "10.0.0.3")
    assert c.frame_received(OUT, other, 0.0) == [Forward(OUT, other)]
    back = frame("10.0.0.2", "10.0.0.1")
    assert c.frame_received(IN, back, 0.0) == [Forward(IN, back)]
    arp = b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + b"\x00" * 28
    assert c.frame_received(OUT, arp, 0.0) == [Forward(OUT, arp)]


def test_ingress_rules_match_the_source_and_deadlines_come_in_order() -> None:
    c = core(ingress_10_0_0_9=Impairment(delay_ms=50))
    a, b = frame("10.0.0.9", "10.0.0.1", b"a" * 40), frame("10.0.0.9", "10.0.0.1", b"b" * 40)
    c.frame_received(IN, a, 0.0)
    c.frame_received(IN, b, 0.01)
    assert c.next_deadline() == 0.05
    assert c.due(0.055) == [Forward(IN, a)]
    assert c.due(0.0601) == [Forward(IN, b)]


def test_reorder_sends_a_share_at_once() -> None:
    c = core(egress_10_0_0_2=Impairment.of({"reorder": 25}))  # delay 10 ms implied
    at_once = sum(bool(c.frame_received(OUT, frame("10.0.0.1", "10.0.0.2"), 0.0))
                  for _ in range(1000))
    assert 150 < at_once < 350
    assert len(c.due(0.011)) == 1000 - at_once


def test_corrupt_flips_one_bit_after_the_ip_header() -> None:
    c = core(egress_10_0_0_2=Impairment(corrupt=100))
    original = frame("10.0.0.1", "10.0.0.2")
    [out] = c.frame_received(OUT, original, 0.0)
    diff = [i for i, (x, y) in enumerate(zip(original, out.frame, strict=True)) if x != y]
    assert len(diff) == 1
    assert diff[0] >= 34
    assert bin(original[diff[0]] ^ out.frame[diff[0]]).count("1") == 1
