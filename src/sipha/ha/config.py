"""The HA pair's configuration: the ``[ha]`` TOML table or the ``--ha-*`` flags.

Both nodes of a pair share everything but ``node_id``, ``priority``, ``listen`` and ``peer``
(each names its own heartbeat address and the other's). Example (``--ha-config FILE``)::

    node_id = "ds1"
    priority = 200              # the higher priority starts active
    mode = "local"              # local | ip | external
    vip = "127.0.0.10"          # the service address
    listen = "127.0.0.1:7001"   # our heartbeat (UDP) and replication (TCP) port
    peer = "127.0.0.1:7002"     # the peer's
    failback = "sticky"         # sticky | preempt
    heartbeat_interval = 0.1
    token = 0.3
    crash_confirm = 0.02        # stream lost + this much heartbeat silence = crashed (0: off)
    key = "shared secret"       # authenticates heartbeats (recommended)
    # ip mode: interface = "eth0" and fence_command = "..." ({node}, {pid} substituted;
    # "none" takes the address without fencing, at the risk of a split brain)
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from sipha.common.config import ConfigError, load_toml
from sipha.common.http import parse_host_port

from .address import AddressMode
from .membership import Failback

__all__ = ["HaConfig", "load_ha_config", "validate_ha"]


class HaConfig(msgspec.Struct, forbid_unknown_fields=True):
    node_id: str = ""
    priority: int = 100
    mode: str = "local"
    vip: str = ""
    listen: str = ""
    peer: str = ""
    cluster: str = "sipha"
    failback: str = "sticky"
    heartbeat_interval: float = 0.1
    token: float = 0.3
    startup_wait: float = 0.0
    """0 = the token."""
    key: str = ""
    interface: str = ""
    prefix: int = 0
    """ip mode: the address's prefix length; 0: a host address (/32, or /128 for IPv6)."""
    fence_command: str = ""
    batch_interval: float = 0.02
    replicate: bool = True  # false: the standby starts with no state (the paper's profile)
    # local mode: watch the peer's PID (a pidfd) so its death is noticed at once; false notices
    # it only by the heartbeat token, as a peer on another host would be (the paper's profile).
    watch_pid: bool = True
    # Across hosts: the replication stream's loss plus this much heartbeat silence counts as
    # the active's crash (its kernel closed the connection); 0 leaves it to the token alone.
    crash_confirm: float = 0.02

    @property
    def address_mode(self) -> AddressMode:
        return AddressMode(self.mode)

    @property
    def failback_policy(self) -> Failback:
        return Failback(self.failback)


def validate_ha(cfg: HaConfig, *, source: str = "ha config") -> None:
    """Raise ConfigError naming the field and the fix."""

    def check(ok: bool, field: str, problem: str, fix: str) -> None:
        if not ok:
            raise ConfigError(source, field, problem, fix)

    check(bool(cfg.node_id), "node_id", "is required", 'e.g. node_id = "ds1"')
    check(cfg.mode in {m.value for m in AddressMode}, "mode", f"unknown mode {cfg.mode!r}",
          "local, ip or external")
    check(cfg.failback in {f.value for f in Failback}, "failback",
          f"unknown policy {cfg.failback!r}", "sticky or preempt")
    check(bool(cfg.vip), "vip", "is required", 'the service address, e.g. "127.0.0.10"')
    for name in ("listen", "peer"):
        try:
            parse_host_port(getattr(cfg, name), what=name)
        except ValueError as exc:
            raise ConfigError(source, name, str(exc), "HOST:PORT such as 127.0.0.1:7001") from None
    check(0 < cfg.heartbeat_interval < cfg.token, "token",
          "must be greater than heartbeat_interval (both > 0)", "e.g. 0.1 and 0.3")
    check(0 <= cfg.crash_confirm < cfg.token, "crash_confirm",
          "must be at least 0 and below the token", "e.g. 0.02 (0: the token alone judges)")
    check(0 < cfg.batch_interval <= 0.05, "batch_interval", "must be in (0, 0.05]", "e.g. 0.02")
    check(cfg.mode != "ip" or bool(cfg.interface), "interface", "is required in ip mode",
          'e.g. interface = "eth0"')
    v6 = ":" in cfg.vip
    check(0 <= cfg.prefix <= (128 if v6 else 32), "prefix",
          f"must be 0..{128 if v6 else 32}", "usually 0 (a host address)")
    # Across hosts the peer's PID names nothing here: fencing it by PID would report success
    # (or kill a stranger) and let two nodes hold the address. Make the operator choose.
    check(cfg.mode != "ip" or bool(cfg.fence_command), "fence_command",
          "is required in ip mode (the peer's PID means nothing on another host)",
          "a STONITH-like command that powers off or isolates the peer, with {node} and {pid} "
          'substituted, or fence_command = "none" to take the address unfenced')


def load_ha_config(path: str | Path) -> HaConfig:
    cfg = load_toml(path, HaConfig)
    validate_ha(cfg, source=str(path))
    return cfg
