"""State replication from the active dispatcher to its standby over one TCP stream.

Theory of operation
-------------------
The dispatcher keeps everything it must not forget in `DispatcherState` (Call-ID affinity
with each call's phase, which counts the pending INVITEs and the confirmed dialogs per server
that ``wlc`` reads; server health; open transactions). It can export a full `StateSnapshot`,
and with ``journal`` on it appends every change to a list of typed deltas.

The active node serves a TCP port. A standby that sees the peer active connects to it and
receives, in order: a `ReplHello`, one `ReplSnapshot`, then `ReplDeltas` batches. The active
flushes a batch whenever `kick()` is called (the dispatcher calls it after the messages of one
loop iteration) and at the latest every ``batch_interval`` (at most 50 ms), so a takeover loses
at most the changes of the last few milliseconds. TCP gives order and completeness, so a
snapshot followed by deltas is always consistent; a broken connection is simply re-opened and
starts with a fresh snapshot. The standby reports *caught up* once it applied a snapshot
(preempt waits for that, so a returning node never takes over with an empty table).

Frames are a 4-byte big-endian length and a msgpack body (`FrameDecoder` is pure and raises
only `ReplicationError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from typing import Protocol

import msgspec

from sipha.dispatcher.replicated import Delta, StateSnapshot

__all__ = [
    "FrameDecoder",
    "ReplDeltas",
    "ReplHello",
    "ReplSnapshot",
    "ReplicableState",
    "ReplicationError",
    "ReplicationSink",
    "ReplicationSource",
    "encode_frame",
]

log = logging.getLogger("sipha.ha.replication")

REPLICATION_VERSION = 2
"""2: transactions replicate with their phase, and stream as deltas."""
MAX_FRAME = 256 * 1024 * 1024
_LEN = struct.Struct(">I")


class ReplicationError(ValueError):
    """A replication stream that cannot be decoded (bad frame, version or pair)."""


class ReplHello(msgspec.Struct, frozen=True, tag="hello"):
    version: int
    cluster: str
    node_id: str
    term: int


class ReplSnapshot(msgspec.Struct, frozen=True, tag="snapshot"):
    seq: int
    state: StateSnapshot


class ReplDeltas(msgspec.Struct, frozen=True, tag="deltas"):
    seq: int
    deltas: list[Delta]
    last_forward: float = 0.0
    """Wall-clock time of the last message the active forwarded (takeover measurement)."""


ReplMessage = ReplHello | ReplSnapshot | ReplDeltas

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ReplMessage)


class ReplicableState(Protocol):
    """What the dispatcher's state must offer (`sipha.dispatcher.state.DispatcherState`)."""

    journal: bool

    def snapshot(self, now: float) -> StateSnapshot: ...
    def drain_deltas(self) -> list[Delta]: ...
    def apply(self, snap: StateSnapshot, now: float) -> None: ...
    def apply_delta(self, delta: Delta, now: float) -> None: ...


def encode_frame(msg: ReplMessage) -> bytes:
    body = _encoder.encode(msg)
    return _LEN.pack(len(body)) + body


class FrameDecoder:
    """Bytes in, replication messages out. Raises only ReplicationError."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[ReplMessage]:
        buf = self._buf
        buf += data
        out: list[ReplMessage] = []
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ReplicationError(f"frame of {n} bytes is over the {MAX_FRAME} limit")
            if len(buf) - pos - 4 < n:
                break
            body = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            try:
                out.append(_decoder.decode(body))
            except msgspec.DecodeError as exc:
                raise ReplicationError(f"bad replication frame: {exc}") from None
        del buf[:pos]
        return out


# --- the active side ----------------------------------------------------------------------------


class ReplicationSource:
    """Serves the replication stream on the active node."""

    def __init__(
        self,
        state: ReplicableState,
        *,
        cluster: str,
        node_id: str,
        host: str,
        port: int,
        clock: Callable[[], float],
        batch_interval: float = 0.02,
    ) -> None:
        if not 0 < batch_interval <= 0.05:
            raise ValueError("batch_interval must be in (0, 0.05] seconds")
        self.state = state
        self.cluster = cluster
        self.node_id = node_id
        self.host = host
        self.port = port
        self.clock = clock
        self.batch_interval = batch_interval
        self.term = 0
        self.active = False
        self.seq = 0
        self.last_forward = 0.0
        """Set by the node after each forwarding batch; streamed with the deltas."""
        self._sent_forward = 0.0
        self.batches_sent = 0
        self.deltas_sent = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    def activate(self, term: int) -> None:
        """We became active: journal changes and stream them."""
        self.term = term
        self.active = True
        self.state.journal = True
        self.state.drain_deltas()
        self._schedule_tick()

    def deactivate(self) -> None:
        """We stopped being active: flush what is left, then close the standby's stream."""
        if self.active:
            self.flush()
        self.active = False
        self.state.journal = False
        self.state.drain_deltas()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    def kick(self) -> None:
        """Flush soon (coalesced: one flush per loop iteration however many calls)."""
        if self.active and self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._soon = None
        self.flush()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._tick = loop.call_later(self.batch_interval, self._on_tick)

    def _on_tick(self) -> None:
        self.flush()
        if self.active:
            self._schedule_tick()

    def flush(self) -> None:
        """Send the journaled changes to every connected standby."""
        deltas = self.state.drain_deltas()
        if not self._writers or (not deltas and self.last_forward == self._sent_forward):
            return
        self._sent_forward = self.last_forward
        self.seq += 1
        frame = encode_frame(ReplDeltas(self.seq, deltas, self.last_forward))
        self.batches_sent += 1
        self.deltas_sent += len(deltas)
        for w in list(self._writers):
            if w.is_closing():
                self._writers.discard(w)
                continue
            w.write(frame)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.active:
            writer.close()
            return
        # Changes made before this snapshot are in it: flush them to the others first, so the
        # new standby's stream starts exactly at the snapshot.
        self.flush()
        snap = self.state.snapshot(self.clock())
        writer.write(encode_frame(ReplHello(REPLICATION_VERSION, self.cluster, self.node_id,
                                            self.term)))
        writer.write(encode_frame(ReplSnapshot(self.seq, snap)))
        self._writers.add(writer)
        log.info("standby %s connected: sent a snapshot of %d dialogs",
                 writer.get_extra_info("peername"), len(snap.dialogs))
        try:
            while await reader.read(4096):
                pass  # the standby never speaks; EOF ends the stream
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        self.deactivate()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


# --- the standby side ---------------------------------------------------------------------------


class ReplicationSink:
    """Follows the active's stream on the standby; reconnects until told to stop."""

    def __init__(
        self,
        state: ReplicableState,
        *,
        cluster: str,
        clock: Callable[[], float],
        on_caught_up: Callable[[], None],
        retry: float = 0.05,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.cluster = cluster
        self.clock = clock
        self.on_caught_up = on_caught_up
        self.retry = retry
        self.on_lost = on_lost
        """Called when the active's side ended the stream or refused it: its EOF, a reset, a
        refused connection (nobody listens: the process is gone). Not for a timeout or an
        unreachable host (a cut link is judged by the heartbeat token)."""
        self.streams_lost = 0
        self.snapshots_applied = 0
        self.deltas_applied = 0
        self.last_seq = 0
        self.peer_last_forward = 0.0
        """The active's last forwarding time as it streamed it (wall clock)."""
        self.target: tuple[str, int] | None = None
        self.ended = asyncio.Event()
        """Set when the active closed the stream (it released: everything it sent is applied)."""
        self._task: asyncio.Task[None] | None = None

    def follow(self, host: str, port: int) -> None:
        """Stream from ``host:port`` (restarting the stream if the target changed)."""
        if self.target == (host, port) and self._task is not None and not self._task.done():
            return
        self.stop()
        self.target = (host, port)
        self._task = asyncio.get_running_loop().create_task(self._run(host, port))

    def stop(self) -> None:
        self.target = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, host: str, port: int) -> None:
        while True:
            lost = False
            try:
                await self._stream(host, port)
                lost = True  # EOF: the active closed it (released, or its process is gone)
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as exc:
                lost = True
                log.debug("replication stream from %s:%d: %s", host, port, exc)
            except (OSError, ReplicationError, TimeoutError) as exc:
                log.debug("replication stream from %s:%d: %s", host, port, exc)
            if lost:
                self.streams_lost += 1
                if self.on_lost is not None:
                    self.on_lost()
            await asyncio.sleep(self.retry)

    async def _stream(self, host: str, port: int) -> None:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection(host, port)
        decoder = FrameDecoder()
        self.ended.clear()
        try:
            while True:
                data = await reader.read(256 * 1024)
                if not data:
                    self.ended.set()
                    return
                for msg in decoder.feed(data):
                    self._apply(msg)
        finally:
            writer.close()

    def _apply(self, msg: ReplMessage) -> None:
        now = self.clock()
        if isinstance(msg, ReplHello):
            if msg.version != REPLICATION_VERSION or msg.cluster != self.cluster:
                raise ReplicationError(f"replication hello {msg!r} is not for us")
            return
        if isinstance(msg, ReplSnapshot):
            self.state.apply(msg.state, now)
            self.last_seq = msg.seq
            self.snapshots_applied += 1
            log.info("replica: snapshot of %d dialogs applied", len(msg.state.dialogs))
            self.on_caught_up()
            return
        apply = self.state.apply_delta
        for delta in msg.deltas:
            apply(delta, now)
        self.deltas_applied += len(msg.deltas)
        self.last_seq = msg.seq
        if msg.last_forward:
            self.peer_last_forward = msg.last_forward
