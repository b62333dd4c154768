"""The bounded ZeroMQ receive loses no frame, however often its wait runs out.

The receive it replaced (``asyncio.timeout`` around ``recv_multipart``) dropped a frame that
arrived as the timeout fired; with waits this short it lost about one frame in seven.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import zmq
import zmq.asyncio

from sipha.loadtest.zmqrecv import recv_frames

FRAMES = 1500


def _send_with_jitter(port: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    rng = random.Random(7)
    try:
        for i in range(FRAMES):
            sock.send(b"%d" % i)
            time.sleep(rng.random() * 0.002)  # arrivals land all over the 1 ms waits
    finally:
        sock.close()
        ctx.term()


async def _receive_all() -> tuple[list[int], int]:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    sender = threading.Thread(target=_send_with_jitter, args=(port,), daemon=True)
    sender.start()
    got: list[int] = []
    empty_waits = 0
    deadline = time.monotonic() + 20.0
    try:
        while len(got) < FRAMES and time.monotonic() < deadline:
            frames = await recv_frames(sock, 0.001)
            if frames is None:
                empty_waits += 1
                continue
            got.append(int(frames[1]))
    finally:
        sender.join(10.0)
        sock.close()
        ctx.term()
    return got, empty_waits


def test_frames_arriving_as_the_wait_runs_out_are_all_received_in_order() -> None:
    got, empty_waits = asyncio.run(_receive_all())
    assert got == list(range(FRAMES))
    # The waits did run out, many times, between frames: the race was exercised.
    assert empty_waits > 100


async def _nothing_queued() -> tuple[list[bytes] | None, list[bytes] | None, float]:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        now = await recv_frames(sock, 0)
        started = time.monotonic()
        waited = await recv_frames(sock, 0.05)
        return now, waited, time.monotonic() - started
    finally:
        sock.close()
        ctx.term()


def test_an_empty_socket_gives_none_at_once_or_after_the_wait() -> None:
    now, waited, took = asyncio.run(_nothing_queued())
    assert now is None
    assert waited is None
    assert 0.04 <= took < 1.0
