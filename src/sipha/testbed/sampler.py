"""Sampling the running nodes: active calls and roles over HTTP, CPU and memory with psutil.

The nodes are asked the way an operator's monitoring would ask them: ``GET /status`` on each
server (``active_calls``, ``calls.answered + calls.proxied``) and ``GET /ha`` on each dispatcher
of a pair (its ``role`` and its own takeover measurements; ``/status`` for a lone one), with
short timeouts so a stopped node costs one timeout, not the sampling cadence.
CPU and RSS cover the node's whole process tree (a load controller's agents count as the
controller's), the paper's "CPU loading".
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
import psutil

from sipha.report.model import NodeSample, ServerSample
from sipha.testbed.processes import NodeProcess, NodeState

__all__ = ["CpuSampler", "HttpPoller", "role_from_status"]


def role_from_status(status: dict[str, Any]) -> str:
    """A dispatcher's role from its /status JSON: ``role`` or ``ha.role``; a dispatcher with no
    HA section forwards on its own, so it is ``active``."""
    role = status.get("role")
    ha = status.get("ha")
    if role is None and isinstance(ha, dict):
        role = ha.get("role")
    if role is None:
        return "active"
    return str(role)


class HttpPoller:
    """GETs JSON from node APIs; one aiohttp session for the whole run."""

    def __init__(self, *, timeout: float = 0.5, token: str = "") -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpPoller:
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_json(self, address: str, path: str) -> dict[str, Any] | None:
        """The decoded JSON object, or None if the node did not answer in time or with 200."""
        assert self._session is not None, "use HttpPoller as an async context manager"
        try:
            async with self._session.get(f"http://{address}{path}") as resp:
                if resp.status != 200:
                    return None
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def post_json(self, address: str, path: str, body: dict[str, Any], *,
                        token: str = "") -> int | None:
        """POST a JSON object; the HTTP status, or None if the node did not answer in time."""
        assert self._session is not None, "use HttpPoller as an async context manager"
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with self._session.post(f"http://{address}{path}", json=body,
                                          headers=headers) as resp:
                return resp.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def server_sample(self, node: NodeProcess, http: str, t: float) -> ServerSample:
        status = None
        if node.state is NodeState.RUNNING:
            status = await self.get_json(http, "/status")
        if status is None:
            return ServerSample(t=t, node=node.name, up=False)
        calls = status.get("calls") if isinstance(status.get("calls"), dict) else {}
        assert isinstance(calls, dict)
        total = None
        if "answered" in calls or "proxied" in calls:
            total = int(calls.get("answered", 0)) + int(calls.get("proxied", 0))
        return ServerSample(t=t, node=node.name, up=True,
                            active_calls=int(status.get("active_calls", 0)), calls_total=total)

    async def server_states(self, http: str) -> dict[str, str]:
        """A dispatcher's health state of each server by id (``GET /servers``): active,
        suspect, inactive, disabled or draining; empty if it did not answer."""
        answer = await self.get_json(http, "/servers")
        servers = answer.get("servers") if answer is not None else None
        if not isinstance(servers, list):
            return {}
        return {str(s["id"])[:64]: str(s["state"])[:16] for s in servers[:256]
                if isinstance(s, dict) and "id" in s and "state" in s}

    async def dispatcher_role(
        self, node: NodeProcess, http: str, *, ha: bool = False
    ) -> tuple[str, dict[str, Any] | None]:
        """The role and, for a node of an HA pair, its whole ``GET /ha`` answer (which holds
        its own takeover measurements); a lone dispatcher's role comes from ``/status``."""
        if node.state is NodeState.EXITED or node.state is NodeState.NOT_STARTED:
            return "down", None
        if node.state is NodeState.STOPPED:
            return "down", None  # hung: holds its sockets, forwards nothing
        if ha:
            status = await self.get_json(http, "/ha")
            return ("unknown", None) if status is None else (str(status.get("role")), status)
        status = await self.get_json(http, "/status")
        return ("unknown" if status is None else role_from_status(status)), None


class CpuSampler:
    """CPU % (of one core) and RSS of each node's process tree, since the previous sample."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def _proc(self, pid: int) -> psutil.Process:
        p = self._procs.get(pid)
        if p is None:
            p = psutil.Process(pid)
            p.cpu_percent(None)  # first call primes the counter and returns 0
            self._procs[pid] = p
        return p

    def sample(self, node: NodeProcess, t: float) -> NodeSample:
        state = node.state
        if state is NodeState.EXITED or node.pid is None:
            return NodeSample(t=t, node=node.name, cpu_percent=0.0, rss_bytes=0, state="dead")
        cpu, rss = 0.0, 0
        try:
            root = self._proc(node.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.Error):
                proc = self._proc(p.pid)
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
        return NodeSample(
            t=t, node=node.name, cpu_percent=round(cpu, 1), rss_bytes=rss,
            state="stopped" if state is NodeState.STOPPED else "running",
        )
