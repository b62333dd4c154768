"""Plans across machines: ``[hosts] mode = "ssh"``.

Theory of operation
-------------------
:func:`run_over_ssh` runs a plan whose nodes are placed on ``[[hosts.ssh]]`` machines (the
nodes not placed run on this one), in this order:

1. *connect* to every host (asyncssh, the host's key file only, its host key checked against
   the plan's known_hosts file: an unknown or changed key is a refusal, never a prompt);
2. *check versions*: ``SIPHA --version`` on each host must print this runner's version, or
   nothing starts (nodes of two versions would meet on the wire);
3. *measure clocks*: five ``date +%s.%N`` round trips per host; the offset is the host's time
   minus the midpoint of the fastest round trip (error at most half of it).  The sipha
   testers' files carry the host's unix times: they are read with the offset taken off, and
   each host's offset is an event of the run (``clock``), so the report says by how much;
4. *run*: the :class:`~sipha.testbed.runner.Runner` as in loopback mode, with a node factory
   that makes a :class:`~sipha.testbed.sshnode.RemoteNode` of every placed node: its command
   line and the run's config files and keys (uploaded to the host's working directory before
   a node starts there) name the host's folder instead of the local results folder;
5. *collect*: once every group is stopped, each host's ``loadtest/`` outputs are fetched into
   the results folder and the keys removed from it;
6. *close*: whatever happened (Ctrl-C, an error), every remote group is SIGKILLed and every
   connection closed; a connection lost during the run makes its nodes' watchdogs stop them.

All SSH work runs on an event loop of its own, in a thread: the runner's process control is
synchronous (signals to process groups), and a remote signal is one more channel on a
connection that is already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Awaitable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from sipha import __version__
from sipha.testbed.commands import sipha_argv
from sipha.testbed.plan import Plan, SshHost
from sipha.testbed.plan_hosts import placement
from sipha.testbed.processes import NodeProcess
from sipha.testbed.progress import Progress
from sipha.testbed.sshnode import RemoteNode, local_path_in

__all__ = ["SshError", "SshPool", "run_over_ssh"]

T = TypeVar("T")
_CONNECT_TIMEOUT = 15.0
_CLOCK_SAMPLES = 5
_UPLOAD = ("config", "keys")  # what a remote node may read from the results folder
_COLLECT = ("loadtest",)  # what remote nodes write that the report reads


class SshError(RuntimeError):
    """A host cannot be used: unreachable, refused, unknown host key, another sipha version."""


class SshPool:
    """The connections of one run to its SSH hosts, on a loop of their own (a thread)."""

    def __init__(self, hosts: list[SshHost], *, local: Path, run_name: str) -> None:
        self.hosts = {h.name: h for h in hosts}
        self.local = local
        self.workdirs = {h.name: h.workdir or f"/tmp/sipha-{run_name}" for h in hosts}
        self.offsets: dict[str, float] = {}
        self.rtts: dict[str, float] = {}
        self.nodes: list[RemoteNode] = []
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._uploaded: dict[tuple[str, str], tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shells: dict[str, Any] = {}  # host -> its control shell (SSHClientProcess)
        self._locks: dict[str, asyncio.Lock] = {}
        self._sftps: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sipha-ssh",
                                        daemon=True)
        self._thread.start()

    # -- the loop ---------------------------------------------------------------------------

    def call(self, coro: Awaitable[T], *, timeout: float) -> T:
        """Run ``coro`` on the pool's loop and wait up to ``timeout`` s; raises its error, or
        TimeoutError."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coro, timeout), self.loop)
        return fut.result(timeout + 5.0)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task on the pool's loop (called on that loop)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def connection(self, host: str) -> asyncssh.SSHClientConnection:
        try:
            return self._conns[host]
        except KeyError:
            raise SshError(f"host {host}: not connected") from None

    async def run(self, host: str, command: str) -> str:
        """``command`` on ``host`` (its stdin empty); its output, stderr included.  Raises
        SshError when it exits non-zero or the host's control shell is gone.

        Commands go to one ``sh`` per host kept open for the run: a channel per command would
        start a login shell each time (0.3 s on a busy machine, for every signal of a fault).
        """
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            shell = self._shells.get(host)
            if shell is None:
                shell = await self.connection(host).create_process("exec sh", encoding="utf-8")
                self._shells[host] = shell
            marker = f"sipha-done-{secrets.token_hex(8)}"
            shell.stdin.write(f"{{ {command}\n}} </dev/null 2>&1; echo \"{marker} $?\"\n")
            lines = []
            while True:
                line = await shell.stdout.readline()
                if not line:
                    self._shells.pop(host, None)
                    raise SshError(f"host {host}: the control shell ended")
                if line.startswith(marker):
                    status = line.split()[-1]
                    break
                lines.append(line)
        out = "".join(lines)
        if status != "0":
            raise SshError(f"host {host}: {command!r} exited {status}: {out[-300:]}")
        return out

    # -- connect, versions, clocks ------------------------------------------------------------

    def open(self) -> None:
        """Connect to every host; raises SshError naming the host and the reason."""
        for name, h in self.hosts.items():
            try:
                self._conns[name] = self.call(asyncssh.connect(
                    h.address, port=h.port, username=h.user,
                    client_keys=[os.path.expanduser(h.key)],
                    known_hosts=os.path.expanduser(h.known_hosts), agent_path=None, config=[],
                    preferred_auth="publickey", connect_timeout=_CONNECT_TIMEOUT,
                ), timeout=_CONNECT_TIMEOUT + 5.0)
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise SshError(f"host {name} ({h.user}@{h.address}:{h.port}): cannot connect: "
                               f"{exc} (the plan's known_hosts must hold its host key)") from None

    def check_versions(self, version: str = __version__) -> None:
        """Every host's sipha must be this one's; raises SshError listing the others."""
        wrong = []
        for name, h in self.hosts.items():
            try:
                out = self.call(self.run(name, f"{h.sipha} --version"), timeout=30.0).strip()
            except (SshError, OSError, asyncssh.Error) as exc:
                out = f"no sipha ({exc})"
            if out != f"sipha {version}":
                wrong.append(f"{name}: {out[:200]!r}")
        if wrong:
            raise SshError(f"sipha {version} here, but {'; '.join(wrong)}: install the same "
                           "version on every host (or fix the host's `sipha` path)")

    def measure_clocks(self) -> dict[str, float]:
        """Each host's clock offset (its time minus ours, s) from the fastest of a few round
        trips; ``rtts`` keeps that round trip (the offset's error is at most half of it)."""
        for name in self.hosts:
            self.rtts[name], self.offsets[name] = self.call(self._clock(name), timeout=30.0)
        return dict(self.offsets)

    async def _clock(self, host: str) -> tuple[float, float]:
        # One shell answers every sample: a channel per sample would put the session's start
        # (a login shell, a fork) inside the round trip, all of it on the remote side.
        proc = await self.connection(host).create_process(
            "while read -r _; do date +%s.%N; done", encoding="utf-8")
        best: tuple[float, float] | None = None
        try:
            for _ in range(_CLOCK_SAMPLES):
                sent = time.time()
                proc.stdin.write("\n")
                line = await asyncio.wait_for(proc.stdout.readline(), timeout=10.0)
                back = time.time()
                try:
                    remote = float(line.strip())
                except ValueError:
                    raise SshError(f"host {host}: `date +%s.%N` said {line[:100]!r}") from None
                sample = (back - sent, remote - (sent + back) / 2)
                if best is None or sample[0] < best[0]:
                    best = sample
        finally:
            proc.stdin.write_eof()
            proc.close()
        assert best is not None
        return best

    # -- files ------------------------------------------------------------------------------

    async def _sftp(self, host: str) -> Any:
        """The host's SFTP session, opened once (a session per file would cost a channel)."""
        if host not in self._sftps:
            self._sftps[host] = await self.connection(host).start_sftp_client()
        return self._sftps[host]

    async def prepare(self, host: str) -> str:
        """The host's working directory, with the run's config files and keys as they are
        now (changed files only; paths inside them rewritten for the host)."""
        workdir = self.workdirs[host]
        sftp = await self._sftp(host)
        for sub in _UPLOAD:
            folder = self.local / sub
            if not folder.is_dir():
                continue
            await sftp.makedirs(f"{workdir}/{sub}", exist_ok=True)
            await sftp.chmod(f"{workdir}/{sub}", 0o700)
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                st = path.stat()
                key = (host, str(path))
                if self._uploaded.get(key) == (st.st_mtime_ns, st.st_size):
                    continue
                rel = path.relative_to(self.local).as_posix()
                if path.parent != folder:
                    await sftp.makedirs(f"{workdir}/{Path(rel).parent.as_posix()}",
                                        exist_ok=True)
                data = path.read_bytes()
                if path.suffix in (".toml", ".conf", ".sh"):
                    data = local_path_in(data.decode(), self.local, workdir).encode()
                async with sftp.open(f"{workdir}/{rel}", "wb") as f:
                    await f.write(data)
                await sftp.chmod(f"{workdir}/{rel}", 0o600 if sub == "keys" else 0o644)
                self._uploaded[key] = (st.st_mtime_ns, st.st_size)
        for sub in _COLLECT:
            await sftp.makedirs(f"{workdir}/{sub}", exist_ok=True)
        return workdir

    def collect(self) -> None:
        """Fetch every host's outputs into the results folder; remove the run's keys there."""
        for host in list(self._conns):
            with contextlib.suppress(OSError, asyncssh.Error, TimeoutError, SshError):
                self.call(self._collect(host), timeout=120.0)

    async def _collect(self, host: str) -> None:
        workdir = self.workdirs[host]
        sftp = await self._sftp(host)
        for sub in _COLLECT:
            remote = f"{workdir}/{sub}"
            if not await sftp.isdir(remote):
                continue
            (self.local / sub).mkdir(exist_ok=True)
            for name in await sftp.listdir(remote):
                if name not in (".", ".."):
                    await sftp.get(f"{remote}/{name}", str(self.local / sub / name))
        await self.run(host, f"rm -rf {shlex.quote(workdir + '/keys')}")

    # -- nodes ------------------------------------------------------------------------------

    def node_factory(self, plan: Plan) -> Any:
        """A replacement for NodeProcess(...) in the runner: a RemoteNode for every node the
        plan places on a host (by name; a phase's copies "-p2"... go where their tester is)."""
        where = placement(plan)
        local_sipha = sipha_argv()

        def make(**kw: Any) -> NodeProcess:
            name: str = kw["name"]
            host = where.get(re.sub(r"-p[0-9]+$", "", name))
            if host is None:
                return NodeProcess(**kw)
            argv = list(kw["argv"])
            if argv[:len(local_sipha)] == local_sipha:
                argv = [*self.hosts[host].sipha.split(), *argv[len(local_sipha):]]
            workdir = self.workdirs[host]
            node = RemoteNode(**kw, host=host, pool=self, clock_offset=self.offsets.get(host, 0.0),
                              remote_argv=[local_path_in(a, self.local, workdir) for a in argv])
            self.nodes.append(node)
            return node

        return make

    def close(self) -> None:
        """SIGKILL every remote group still alive, close the connections, stop the loop."""
        for node in self.nodes:
            node.kill_groups()
        for conn in self._conns.values():
            conn.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            self.call(self._closed(), timeout=10.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self.loop.close()

    async def _closed(self) -> None:
        for conn in self._conns.values():
            await conn.wait_closed()
        for task in list(self._tasks):
            task.cancel()


def run_over_ssh(plan: Plan, out: Path, *, progress: Progress | None = None,
                 web: tuple[str, int] | None = None) -> Any:
    """Run ``plan`` (``[hosts] mode = "ssh"``) into ``out``; see the module docstring.
    Raises RunAborted when a host cannot be used."""
    from sipha.testbed.addresses import AddressBlock, allocate_block
    from sipha.testbed.runner import RunAborted, Runner  # the runner dispatches here

    out = out.resolve()
    pool = SshPool(plan.hosts.ssh, local=out, run_name=plan.name)
    try:
        try:
            pool.open()
            pool.check_versions()
            pool.measure_clocks()
        except SshError as exc:
            raise RunAborted(str(exc)) from None
        if plan.hosts.block:
            a, b, c = (int(x) for x in plan.hosts.block.split("."))
            block = AddressBlock(b, c, first=a)
        else:
            block = allocate_block()
        runner = Runner(plan, out, progress=progress, block=block, web=web,
                        make_node=pool.node_factory(plan))
        for host, offset in pool.offsets.items():
            runner.event("clock", host, f"clock offset {offset * 1000:+.1f} ms (round trip "
                         f"{pool.rtts[host] * 1000:.1f} ms), taken off its testers' times")
        runner.procs.after_shutdown.append(pool.collect)
        if runner.web is not None:
            runner.web.serve()
        return asyncio.run(runner.run())
    finally:
        pool.close()
