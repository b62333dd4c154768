"""``sipha dispatcher`` with HA: the dispatcher's flags plus ``--ha-config`` / ``--ha-*``.

Without HA flags this is exactly ``sipha.dispatcher.cli``. With them, the dispatcher runs as
one node of an active/standby pair (`HaNode`): in local mode it binds the service address only
while active; in ip and external modes it binds with IP_FREEBIND from the start and the address
moves instead. ``sipha dispatcher ctl --http ADDR promote|demote|ha`` drives the HA endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from sipha.common.config import ConfigError, convert
from sipha.dispatcher import cli as dispatcher_cli
from sipha.dispatcher.service import DispatcherService
from sipha.sip.uri import host_port
from sipha.transport import ListenSpec

from .address import AddressMode
from .config import HaConfig, load_ha_config, validate_ha
from .replication import ReplicableState
from .service import HaNode

__all__ = ["DispatcherForwarder", "add_arguments", "main"]

log = logging.getLogger("sipha.ha")

_FLAGS = {
    "ha_node_id": "node_id", "priority": "priority", "ha_mode": "mode", "vip": "vip",
    "ha_listen": "listen", "peer": "peer", "failback": "failback",
    "heartbeat_interval": "heartbeat_interval", "ha_token": "token", "ha_key": "key",
    "interface": "interface", "fence_command": "fence_command", "ha_cluster": "cluster",
    "replicate": "replicate", "watch_pid": "watch_pid", "crash_confirm": "crash_confirm",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dispatcher_cli.add_arguments(parser)
    g = parser.add_argument_group("high availability (an active/standby pair)")
    g.add_argument("--ha-config", metavar="FILE", help="HA TOML file (flags below override)")
    g.add_argument("--ha-node-id", metavar="NAME", help="this node's name in the pair")
    g.add_argument("--priority", type=int, help="higher starts active (default 100)")
    g.add_argument(
        "--ha-mode", choices=[m.value for m in AddressMode],
        help="how the service address moves: local (the active binds it), ip (added to "
             "--interface on promotion), external (keepalived or Pacemaker moves it; "
             "ctl promote); default local",
    )
    g.add_argument("--vip", metavar="ADDR", help="the service address, e.g. 127.0.0.10")
    g.add_argument("--ha-listen", metavar="HOST:PORT", help="our heartbeat/replication port")
    g.add_argument("--peer", metavar="HOST:PORT", help="the peer's heartbeat/replication port")
    g.add_argument(
        "--failback", choices=["sticky", "preempt"],
        help="a recovered node: sticky joins as standby, preempt takes the address back if "
             "it has the higher priority (default sticky)",
    )
    g.add_argument(
        "--heartbeat-interval", type=float, metavar="SECONDS",
        help="time between heartbeats (default 0.1)",
    )
    g.add_argument(
        "--ha-token", type=float, metavar="SECONDS",
        help="the peer is lost after this long without heartbeats (default 0.3)",
    )
    g.add_argument("--ha-key", metavar="SECRET", help="authenticates heartbeats")
    g.add_argument(
        "--ha-cluster", metavar="NAME", help="pair name; heartbeats of another are ignored"
    )
    g.add_argument("--interface", metavar="DEV", help="ip mode: where the address goes")
    g.add_argument("--replicate", action=argparse.BooleanOptionalAction, default=None,
                   help="stream dialogs, call counts, health and open INVITEs to the standby "
                   "(default on; --no-replicate: the standby starts empty, like Pacemaker "
                   "moving only an address)")
    g.add_argument("--watch-pid", action=argparse.BooleanOptionalAction, default=None,
                   help="local mode: notice the peer's death at once through its PID "
                   "(default on; --no-watch-pid: only when its heartbeats stop, as for a peer "
                   "on another host)")
    g.add_argument("--crash-confirm", type=float, metavar="SECONDS",
                   help="the active counts as crashed when its replication stream ends and "
                   "its heartbeat stays silent this long (default 0.02; 0: only the token)")
    g.add_argument("--fence-command", metavar="CMD",
                   help="fence the peer before taking the address: a command with {node} and "
                   "{pid} substituted, exit 0 = fenced (required in ip mode; \"none\" = no "
                   "fencing); local mode kills the peer's PID")


def build_ha_config(args: argparse.Namespace) -> HaConfig | None:
    """The HA config from --ha-config and flags; None when no HA flag is given."""
    given = {field: getattr(args, flag) for flag, field in _FLAGS.items()
             if getattr(args, flag, None) is not None}
    path = getattr(args, "ha_config", None)
    if path is None and not given:
        return None
    base = load_ha_config(path) if path else HaConfig()
    data: dict[str, Any] = msgspec.to_builtins(base)
    data.update(given)
    source = path or "flags"
    cfg = convert(data, HaConfig, source=source)
    validate_ha(cfg, source=source)
    return cfg


class DispatcherForwarder:
    """Adapts `DispatcherService` to what `HaNode` needs (`ha.service.Forwarder`)."""

    def __init__(self, service: DispatcherService) -> None:
        self.service = service

    @property
    def state(self) -> ReplicableState:
        router = self.service.router
        assert router is not None, "start the dispatcher first"
        return router.state

    async def bind(self) -> None:
        await self.service.bind()

    async def unbind(self) -> None:
        await self.service.unbind()

    def set_active(self, active: bool) -> None:
        service = self.service
        service.passive = not active
        router = service.router
        if active and router is not None:
            router.adopt_replicated_health(service.now())
            service.kick()

    def set_after_batch(self, hook: Callable[[], None] | None) -> None:
        self.service.after_batch = hook


def prepare(cfg: Any, ha: HaConfig) -> Any:
    """The dispatcher config an HA node needs: a shared branch secret (both nodes must sign
    and verify the same Via branches), the service address advertised, FREEBIND off-local."""
    changes: dict[str, Any] = {}
    if not cfg.secret:
        seed = f"sipha-ha\x00{ha.cluster}\x00{ha.key}".encode()
        changes["secret"] = hashlib.sha256(seed).hexdigest()[:32]
    if ha.address_mode is not AddressMode.LOCAL:
        changes["freebind"] = True
    if not cfg.advertise:
        first = ListenSpec.parse(cfg.listen[0])
        changes["advertise"] = host_port(first.host, first.port)
    return msgspec.structs.replace(cfg, **changes) if changes else cfg


def main(args: argparse.Namespace) -> int:
    if getattr(args, "dispatcher_command", None) == "ctl":
        return dispatcher_cli.main(args)
    try:
        ha = build_ha_config(args)
    except (ConfigError, ValueError) as exc:
        print(f"sipha dispatcher: {exc}", file=sys.stderr)
        return 2
    if ha is None:
        return dispatcher_cli.main(args)
    logging.basicConfig(
        level=getattr(logging, args.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg, specs = dispatcher_cli.build_config(args)
        cfg = prepare(cfg, ha)
    except (ConfigError, ValueError) as exc:
        print(f"sipha dispatcher: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print("sipha dispatcher: no servers", file=sys.stderr)
        return 2
    from sipha.common.loop import run

    async def _main() -> None:
        local = ha.address_mode is AddressMode.LOCAL
        service = DispatcherService(
            cfg, specs, sources=dispatcher_cli.server_sources(args), bind_on_start=not local
        )
        service.passive = True
        node = HaNode(ha, DispatcherForwarder(service), api=cfg.http)
        node.set_listen_specs([ListenSpec.parse(t) for t in cfg.listen])
        service.api_routes.append(node.add_routes)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.start()
        await node.start()
        try:
            await service.stopped()
        finally:
            await node.close()
            await service.close()

    try:
        run(_main())
    except OSError as exc:
        print(f"sipha dispatcher: {exc}", file=sys.stderr)
        return 1
    return 0
