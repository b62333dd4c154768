"""The load controller accepts only its own agents, and only plausible reports from them.

Each attack of issue 14 ("the load controller accepts anyone") on loopback, against a
controller with CurveZMQ keys: a client without a key or with an unknown key never receives
the plan (which carries the users' password); an allowed agent's implausible or malformed
reports are dropped and counted, never fatal, and never reach the results.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec
import pytest
import zmq
import zmq.asyncio

from sipha.common.loop import run
from sipha.common.process import free_port, terminate
from sipha.loadtest import protocol as p
from sipha.loadtest.agent import Agent, AgentRefused
from sipha.loadtest.controller import Controller, RunResult
from sipha.loadtest.curve import (
    AgentKeys,
    create_keys,
    load_agent_keys,
    load_controller_keys,
)
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.stats import IntervalStats
from tests.loadtest.helpers import make_plan
from tests.sipp import uas

PASSWORD = "s3cret-of-the-users"


def plan_with_password() -> p.Plan:
    users = UserRange(prefix="u", first=1, count=10, domain="d", password=PASSWORD)
    return make_plan(5060, rate=10, duration=2.0, users=users)


def ok_second(calls: int) -> IntervalStats:
    s = IntervalStats()
    for _ in range(calls):
        s.record_attempt()
        s.record_success(0.01)
    return s


def dealer(ctx: zmq.asyncio.Context, port: int, identity: bytes,
           keys: AgentKeys | None) -> zmq.asyncio.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys.controller)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def hello(agent_id: str) -> bytes:
    return p.encode(p.Hello(agent_id=agent_id, version=p.PROTOCOL_VERSION,
                            host=socket.gethostname(), pid=os.getpid(), cores=1))


async def join(sock: zmq.asyncio.Socket, agent_id: str) -> p.Plan:
    await sock.send(hello(agent_id))
    async with asyncio.timeout(10):
        while True:
            msg = p.decode(await sock.recv())
            if isinstance(msg, p.Plan):
                return msg


def report(n: int, stats: IntervalStats) -> bytes:
    return p.encode(p.StatsReport(agent_id="agent-1", second=n, interval=stats.to_wire()))


async def controlled_run(keys_dir: Path, *attacks: bytes, before: float = 0.0,
                         big_frame: bool = False) -> tuple[RunResult, p.Plan]:
    """A keyed controller and one allowed agent (a real DEALER speaking the protocol) that
    sends ``attacks`` (whole frames) among two good seconds, then its Done."""
    controller = Controller(plan_with_password(), expect_agents=1, start_delay=0.05,
                            join_timeout=10, keys=load_controller_keys(keys_dir))
    port = controller.bind()
    task = asyncio.get_running_loop().create_task(controller.run())
    ctx = zmq.asyncio.Context()
    sock = dealer(ctx, port, b"agent-1", load_agent_keys(keys_dir, "agent-1"))
    try:
        plan = await join(sock, "agent-1")
        await sock.send(report(0, ok_second(5)))
        await asyncio.sleep(before)
        for frame in attacks:
            await sock.send(frame)
        if big_frame:
            await asyncio.sleep(0.5)  # let the controller drop the connection; it comes back
        await sock.send(report(1, ok_second(7)))
        await sock.send(p.encode(p.Done(agent_id="agent-1",
                                        totals=(ok_second(12)).to_wire())))
        async with asyncio.timeout(15):
            result = await task
    finally:
        sock.close()
        ctx.term()
        task.cancel()
    return result, plan


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    create_keys(tmp_path / "keys", ["agent-1"])
    return tmp_path / "keys"


def assert_only_the_good_seconds(result: RunResult) -> None:
    totals = result.totals
    assert (totals.calls_attempted, totals.calls_successful) == (12, 12)
    assert result.reconciled.is_empty()
    assert result.run.seconds() == [0, 1]


def test_key_files_are_private_and_the_secret_stays_out_of_the_public_file(
        tmp_path: Path) -> None:
    written = create_keys(tmp_path / "k", ["agent-1", "agent-2"])
    assert sorted(p.name for p in written) == [
        "agent-1.key", "agent-1.key_secret", "agent-2.key", "agent-2.key_secret",
        "controller.key", "controller.key_secret"]
    for path in written:
        if path.name.endswith("_secret"):
            assert path.stat().st_mode & 0o077 == 0, path
        else:
            assert "secret-key" not in path.read_text()
    keys = load_controller_keys(tmp_path / "k")
    assert len(keys.allowed) == 2
    assert load_agent_keys(tmp_path / "k", "agent-2").controller == keys.public


def test_a_controller_on_a_public_address_needs_keys() -> None:
    with pytest.raises(ValueError, match="needs CurveZMQ keys"):
        Controller(plan_with_password(), expect_agents=1, bind="0.0.0.0:5555")
    Controller(plan_with_password(), expect_agents=1, bind="127.0.0.1:0")  # loopback: allowed


def test_clients_without_an_allowed_key_never_receive_the_plan(
        keys_dir: Path, tmp_path: Path) -> None:
    # An intruder with a key pair of its own (signed by nobody) and one with no key at all.
    create_keys(tmp_path / "other", ["intruder"])
    intruder_keys = load_agent_keys(tmp_path / "other", "intruder")
    intruder_keys = AgentKeys(public=intruder_keys.public, secret=intruder_keys.secret,
                              controller=load_controller_keys(keys_dir).public)

    async def scenario() -> tuple[Controller, list[bytes]]:
        ctx = zmq.asyncio.Context()
        controller = Controller(plan_with_password(), expect_agents=1, start_delay=0.05,
                                join_timeout=3, keys=load_controller_keys(keys_dir))
        port = controller.bind()
        task = asyncio.get_running_loop().create_task(controller.run())
        received: list[bytes] = []
        socks = [dealer(ctx, port, b"intruder-key", intruder_keys),
                 dealer(ctx, port, b"intruder-plain", None)]
        try:
            for sock in socks:
                await sock.send(hello(sock.getsockopt(zmq.IDENTITY).decode()))
            # Three seconds of listening: whatever the controller says, the intruders hear
            # nothing (the join times out: no agent was admitted).
            deadline = asyncio.get_running_loop().time() + 3.5
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                for sock in socks:
                    if await sock.poll(int(min(left, 0.1) * 1000)):
                        received.append(await sock.recv())
            with pytest.raises(TimeoutError):
                await task
        finally:
            for sock in socks:
                sock.close()
            ctx.term()
        return controller, received

    controller, received = run(scenario())
    assert received == []
    assert controller.agents == {}
    gatekeeper = controller.gatekeeper
    assert gatekeeper is not None
    assert gatekeeper.refused >= 1
    assert intruder_keys.public.decode() in gatekeeper.refused_keys


def test_the_allowed_agent_gets_the_plan_with_the_password(keys_dir: Path) -> None:
    result, plan = run(controlled_run(keys_dir))
    assert plan.users is not None
    assert plan.users.password == PASSWORD
    assert_only_the_good_seconds(result)
    assert result.dropped == {}


def test_four_million_fake_calls_are_dropped(keys_dir: Path) -> None:
    fake = stats_with(calls_attempted=4_000_000, calls_successful=4_000_000)
    result, _ = run(controlled_run(keys_dir, report(1, fake)))
    # Second 1's fake report is dropped; the real second 1 that follows is merged.
    assert_only_the_good_seconds(result)
    assert result.dropped == {"implausible": 1}
    events = [e for e in result.events if e["event"] == "frame-dropped"]
    assert [(e["agent"], e["reason"]) for e in events] == [("agent-1", "implausible")]
    assert "calls_attempted 4000000" in str(events[0]["detail"])


def stats_with(**counters: int) -> IntervalStats:
    stats = IntervalStats()
    for name, value in counters.items():
        setattr(stats, name, value)
    return stats


def test_malformed_histograms_are_dropped_not_fatal(keys_dir: Path) -> None:
    good = ok_second(3).to_wire()
    bomb = zlib.compress(b"\0" * (16 << 20))  # 16 MB of zeros in ~16 KB
    bomb_blob = base64.b64encode(struct.pack(">II", 0x1C849314, len(bomb)) + bomb).decode()
    bad_blobs = ["HISTFAAA!!", "", bomb_blob, base64.b64encode(b"\x1c\x84\x93\x14" * 9).decode()]
    frames = [
        p.encode(p.StatsReport(agent_id="agent-1", second=1,
                               interval=msgspec.structs.replace(good, setup_200=blob)))
        for blob in bad_blobs if blob
    ]
    # A frame that is not even the protocol, and one with a wrong field type.
    frames += [b"\x93\x01\x02", msgspec.msgpack.encode([1, {"type": "stats", "second": "x"}])]
    result, _ = run(controlled_run(keys_dir, *frames))
    assert_only_the_good_seconds(result)
    assert result.dropped == {"bad-stats": 3, "undecodable": 2}


def test_a_report_for_second_three_million_writes_no_rows(keys_dir: Path,
                                                         tmp_path: Path) -> None:
    far = p.encode(p.StatsReport(agent_id="agent-1", second=3_000_000,
                                 interval=ok_second(1).to_wire()))
    result, _ = run(controlled_run(keys_dir, far))
    assert_only_the_good_seconds(result)
    assert result.dropped == {"implausible": 1}
    assert result.duration == 2.0


def test_a_64_mb_frame_is_refused_before_it_is_held(keys_dir: Path) -> None:
    # 64 MB of zeros is no protocol frame: had the controller received it, it would have been
    # dropped as undecodable.  libzmq refuses it on its announced size (ZMQ_MAXMSGSIZE) and
    # drops the connection; the agent reconnects and its later frames arrive.
    result, _ = run(controlled_run(keys_dir, b"\0" * (64 << 20), big_frame=True))
    assert result.dropped == {}
    assert_only_the_good_seconds(result)


def test_sipha_load_keys_writes_a_controller_and_agent_key_folder(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sipha.cli", "load", "keys", str(tmp_path / "k"), "--agents", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert len(load_controller_keys(tmp_path / "k").allowed) == 2
    assert load_agent_keys(tmp_path / "k", "agent-2").public in load_controller_keys(
        tmp_path / "k").allowed


def test_an_agent_with_an_unknown_key_is_told_it_was_refused(
        keys_dir: Path, tmp_path: Path) -> None:
    create_keys(tmp_path / "other", ["stray"])
    stray = load_agent_keys(tmp_path / "other", "stray")
    stray = AgentKeys(public=stray.public, secret=stray.secret,
                      controller=load_controller_keys(keys_dir).public)

    async def scenario() -> str:
        controller = Controller(plan_with_password(), expect_agents=1, join_timeout=5,
                                keys=load_controller_keys(keys_dir))
        port = controller.bind()
        task = asyncio.get_running_loop().create_task(controller.run())
        try:
            with pytest.raises(AgentRefused) as refused:
                await Agent(f"127.0.0.1:{port}", agent_id="stray", keys=stray,
                            join_timeout=4).run()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await task
        return str(refused.value)

    assert "refused this agent's CurveZMQ key" in run(scenario())


@pytest.mark.parametrize("mistake", ["no keys", "another controller's key"])
def test_an_agent_with_mismatched_keys_stops_with_a_reason(keys_dir: Path, tmp_path: Path,
                                                          mistake: str) -> None:
    keys: AgentKeys | None = None
    if mistake == "another controller's key":
        create_keys(tmp_path / "other", ["agent-1"])
        own = load_agent_keys(keys_dir, "agent-1")
        keys = AgentKeys(public=own.public, secret=own.secret,
                         controller=load_controller_keys(tmp_path / "other").public)

    async def scenario() -> str:
        controller = Controller(plan_with_password(), expect_agents=1, join_timeout=8,
                                keys=load_controller_keys(keys_dir))
        port = controller.bind()
        task = asyncio.get_running_loop().create_task(controller.run())
        try:
            with pytest.raises(AgentRefused) as refused:
                await Agent(f"127.0.0.1:{port}", agent_id="a", keys=keys, join_timeout=6).run()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await task
        return str(refused.value)

    assert "handshake" in run(scenario())


def test_the_cli_controller_with_keys_runs_its_keyed_agent(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    create_keys(keys, ["agent-1"])
    cport = free_port(kind=socket.SOCK_STREAM)
    sipha = [sys.executable, "-m", "sipha.cli", "load"]
    with uas() as (port, _sipp):
        controller = subprocess.Popen(
            [*sipha, "controller", "call", f"127.0.0.1:{port}", "--bind", f"127.0.0.1:{cport}",
             "--keys", str(keys), "--expect", "1", "--join-timeout", "30s", "--rate", "20",
             "--max-calls", "20", "--quiet", "--jsonl", str(tmp_path / "s.jsonl")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        agent = subprocess.Popen(
            [*sipha, "agent", "--controller", f"127.0.0.1:{cport}", "--keys", str(keys)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            out, _ = controller.communicate(timeout=60)
            agent.communicate(timeout=30)
        finally:
            for proc in (controller, agent):
                terminate(proc, 5.0)
    assert controller.returncode == 0, out
    assert "attempted 20 successful 20 failed 0" in out
    assert "without --keys" not in out
