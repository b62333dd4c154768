"""Controller <-> agent messages: round trips, version handshake, bad input -> ProtocolError."""

from __future__ import annotations

import typing

import msgspec
import pytest

from sipha.loadtest.protocol import (
    PROTOCOL_VERSION,
    Done,
    Heartbeat,
    Hello,
    HoldTime,
    Message,
    Plan,
    ProtocolError,
    Ramp,
    Refused,
    SetRate,
    StatsReport,
    Stop,
    UserRange,
    VersionMismatch,
    Welcome,
    decode,
    encode,
    negotiate,
)
from sipha.loadtest.stats import IntervalStats


def _interval() -> IntervalStats:
    stats = IntervalStats()
    stats.record_attempt()
    stats.record_attempt()
    stats.record_success(0.015, 0.004)
    stats.record_failure(503)
    stats.concurrent_calls = 9
    return stats


def _plan() -> Plan:
    return Plan(
        run_id="run-1",
        scenario="uac-basic",
        target_host="127.0.0.1",
        target_port=5060,
        transport="udp",
        rate=125.5,
        duration=60.0,
        start_at=1_764_045_400.0,
        seed=42,
        ramp=Ramp(start=10, step=10, interval=1, max=125.5),
        max_calls=10_000,
        max_concurrent=500,
        hold=HoldTime(distribution="exponential", mean=3.0),
        users=UserRange(
            prefix="user", first=1000, count=500, domain="example.test", password="secret"
        ),
    )


ALL_MESSAGES: list[Message] = [
    Hello(agent_id="a1", version=PROTOCOL_VERSION, host="node-1", pid=4242, cores=2),
    Welcome(agent_id="a1", version=PROTOCOL_VERSION, run_id="run-1", heartbeat_interval=0.5),
    Refused(reason="run already started"),
    _plan(),
    StatsReport(agent_id="a1", second=17, interval=_interval().to_wire()),
    Heartbeat(agent_id="a1", seq=3, sent_at=1_764_045_401.25),
    Stop(reason="duration reached"),
    SetRate(rate=25.0),
    Done(agent_id="a1", totals=_interval().to_wire()),
]


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: Message) -> None:
    data = encode(msg)
    assert isinstance(data, bytes)
    back = decode(data)
    assert type(back) is type(msg)
    assert back == msg


def test_stats_report_carries_mergeable_histograms() -> None:
    back = decode(encode(StatsReport(agent_id="a1", second=0, interval=_interval().to_wire())))
    assert isinstance(back, StatsReport)
    stats = IntervalStats.from_wire(back.interval)
    assert stats == _interval()
    assert stats.percentiles("setup_200") == _interval().percentiles("setup_200")


def test_plan_target_brackets_ipv6() -> None:
    assert _plan().target == "127.0.0.1:5060"
    v6 = msgspec.structs.replace(_plan(), target_host="::1")
    assert v6.target == "[::1]:5060"


def test_negotiate_welcomes_same_version_and_refuses_others() -> None:
    ok = negotiate(
        Hello(agent_id="a1", version=PROTOCOL_VERSION, host="h", pid=1, cores=2), run_id="run-9"
    )
    assert ok == Welcome(agent_id="a1", version=PROTOCOL_VERSION, run_id="run-9")
    refused = negotiate(
        Hello(agent_id="a2", version=PROTOCOL_VERSION + 1, host="h", pid=1, cores=2), run_id="run-9"
    )
    assert isinstance(refused, Refused)
    assert f"version {PROTOCOL_VERSION + 1}" in refused.reason
    assert f"controller speaks version {PROTOCOL_VERSION}" in refused.reason


def _frame(version: int, body: object) -> bytes:
    return msgspec.msgpack.encode([version, body])


def test_frame_of_another_version_is_refused_clearly() -> None:
    body = msgspec.to_builtins(Heartbeat(agent_id="a1", seq=1, sent_at=0.0))
    with pytest.raises(VersionMismatch, match="peer speaks version 2") as info:
        decode(_frame(2, body))
    assert info.value.peer_version == 2
    assert isinstance(info.value, ProtocolError)


def test_refused_is_readable_from_any_version() -> None:
    msg = decode(_frame(99, {"type": "refused", "reason": "too old"}))
    assert msg == Refused(reason="too old")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not a sipha protocol frame"),
        (b"\xc1garbage", "not a sipha protocol frame"),
        (msgspec.msgpack.encode({"type": "hello"}), "not a sipha protocol frame"),
        (_frame(PROTOCOL_VERSION, {"type": "nope"}), "invalid protocol message"),
        (_frame(PROTOCOL_VERSION, {"type": "stop"}), "missing required field `reason`"),
        (
            _frame(
                PROTOCOL_VERSION, {"type": "heartbeat", "agent_id": "a", "seq": -1, "sent_at": 0.0}
            ),
            "Expected `int` >= 0",
        ),
        (
            _frame(
                PROTOCOL_VERSION,
                {"type": "hello", "agent_id": "", "version": 1, "host": "h", "pid": 1, "cores": 2},
            ),
            "length >= 1",
        ),
    ],
)
def test_bad_input_raises_only_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(data)


def test_invalid_plan_fields_are_protocol_errors() -> None:
    body = msgspec.to_builtins(_plan())
    body["target_port"] = 70000
    with pytest.raises(ProtocolError, match="target_port"):
        decode(_frame(PROTOCOL_VERSION, body))
    body = msgspec.to_builtins(_plan())
    body["ramp"]["max"] = 1.0  # below its start
    with pytest.raises(ProtocolError, match="ramp max"):
        decode(_frame(PROTOCOL_VERSION, body))
    body = msgspec.to_builtins(_plan())
    body["transport"] = "sctp"
    with pytest.raises(ProtocolError, match="transport"):
        decode(_frame(PROTOCOL_VERSION, body))


def test_every_message_type_round_trips_above() -> None:
    # A message type added to the union without a round-trip case here fails this test.
    assert {type(m) for m in ALL_MESSAGES} == set(typing.get_args(Message))
