"""The HA wire: heartbeats (typed, versioned, authenticated), replication frames, GARP frames."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.state import DialogRemoved, DialogSet, ServerStateSet, StateSnapshot
from sipha.ha.address import garp_frames
from sipha.ha.heartbeat import PROTOCOL_VERSION, Heartbeat, HeartbeatCodec, HeartbeatError
from sipha.ha.membership import Role
from sipha.ha.replication import (
    FrameDecoder,
    ReplDeltas,
    ReplHello,
    ReplicationError,
    ReplSnapshot,
    encode_frame,
)


def hb(**kw: object) -> Heartbeat:
    base: dict[str, object] = dict(version=PROTOCOL_VERSION, cluster="c", node_id="ds1",
                                   priority=200, role=Role.ACTIVE, term=3, pid=1234, held=False,
                                   incarnation=7, seq=1, replication_port=7001)
    base.update(kw)
    return Heartbeat(**base)  # type: ignore[arg-type]


def test_heartbeat_round_trips_with_its_mac() -> None:
    codec = HeartbeatCodec("c", b"key")
    out = codec.decode(codec.encode(hb()))
    assert out == hb()
    assert out.peer_status().role is Role.ACTIVE
    assert out.peer_status().pid == 1234


def test_forged_or_foreign_heartbeats_are_refused() -> None:
    good = HeartbeatCodec("c", b"key")
    with pytest.raises(HeartbeatError, match="MAC"):
        good.decode(HeartbeatCodec("c", b"other").encode(hb()))
    with pytest.raises(HeartbeatError, match="pair"):
        HeartbeatCodec("c").decode(HeartbeatCodec("d").encode(hb(cluster="d")))
    with pytest.raises(HeartbeatError, match="version"):
        HeartbeatCodec("c").decode(HeartbeatCodec("c").encode(hb(version=99)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_raise_only_heartbeat_error(data: bytes) -> None:
    for codec in (HeartbeatCodec("c"), HeartbeatCodec("c", b"k")):
        with contextlib.suppress(HeartbeatError):
            codec.decode(data)


def test_replication_frames_survive_any_split() -> None:
    snap = StateSnapshot(1, 5, [], [], [])
    msgs = [
        ReplHello(1, "c", "ds1", 2),
        ReplSnapshot(0, snap),
        ReplDeltas(1, [DialogSet("a@b", 1, "early", 180.0), DialogRemoved("x"),
                       ServerStateSet(2, "inactive")], 12.5),
    ]
    wire = b"".join(encode_frame(m) for m in msgs)
    for cut in range(0, len(wire), 7):
        dec = FrameDecoder()
        got = dec.feed(wire[:cut]) + dec.feed(wire[cut:])
        assert got == msgs


def test_bad_replication_frames_raise_replication_error() -> None:
    with pytest.raises(ReplicationError):
        FrameDecoder().feed(b"\x00\x00\x00\x03abc")
    with pytest.raises(ReplicationError, match="limit"):
        FrameDecoder().feed(b"\xff\xff\xff\xff")
    assert msgspec.msgpack.decode(encode_frame(ReplHello(1, "c", "n", 0))[4:])["type"] == "hello"


def test_gratuitous_arp_frames_announce_the_address() -> None:
    mac = bytes.fromhex("020000000001")
    req, rep = garp_frames(mac, "10.9.0.100")
    for frame, op in ((req, 1), (rep, 2)):
        assert frame[:6] == b"\xff" * 6  # broadcast
        assert frame[6:12] == mac
        assert frame[12:14] == b"\x08\x06"
        arp = frame[14:]
        assert int.from_bytes(arp[6:8], "big") == op
        assert arp[8:14] == mac
        assert arp[14:18] == bytes([10, 9, 0, 100])  # sender IP
        assert arp[24:28] == bytes([10, 9, 0, 100])  # target IP = sender: gratuitous
