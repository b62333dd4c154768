"""Receiving from a ZeroMQ asyncio socket with a time bound, without ever losing a frame.

Why not ``async with asyncio.timeout(t): await sock.recv_multipart()``?  When the frame arrives
in the same loop iteration as the timeout fires, pyzmq has already taken it off the socket and
set it on the future, and the task is then cancelled before it resumes: the frame is gone.
With a 0.2 s receive loop this lost about one StatsReport in a few thousand runs (a clean-clone
CI run saw an agent's second 2 vanish); with 1 ms timeouts a loopback test loses ~14 %.

Instead the wait is a *poll* (cancelling a poll loses nothing, the frame stays queued) and the
read is non-blocking, so its future is done before it is awaited and no cancellation can land
between the socket and the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import zmq
import zmq.asyncio

__all__ = ["recv_frames"]


async def recv_frames(sock: zmq.asyncio.Socket, wait: float) -> list[bytes] | None:
    """The next multipart message, waiting up to ``wait`` seconds (0: only one already
    queued); None when nothing came."""
    if not int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
        if wait <= 0:
            return None
        # pyzmq's stub gives the socket the Poller's poll signature; at runtime it takes the
        # flags and resolves to this socket's events.
        poll = cast(Callable[[int, int], Awaitable[int]], sock.poll)
        events = await poll(max(1, round(wait * 1000)), zmq.POLLIN)
        if not events & zmq.POLLIN:
            return None
    try:
        frames: list[bytes] = await sock.recv_multipart(zmq.NOBLOCK)
    except zmq.Again:  # another reader took it (not in sipha: one reader per socket)
        return None
    return frames
