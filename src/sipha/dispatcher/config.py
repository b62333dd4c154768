"""Dispatcher configuration: TOML file, command-line flags and Kamailio ``dispatcher.list``.

TOML (every field optional except at least one server from somewhere)::

    listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
    advertise = "127.0.0.1:5060"        # host:port in our Via and Record-Route
    algorithm = "wlc"
    http = "127.0.0.1:8060"
    token = "secret"
    dispatcher_list = "dispatcher.list"  # Kamailio format, servers of `setid`
    setid = 1
    failover_timeout = 0.2
    [probe]
    enabled = true
    interval = 0.5
    timeout = 0.5
    probing_threshold = 2
    inactive_threshold = 2
    accepted_codes = [404, 405, 481]
    [[servers]]
    uri = "sip:127.0.0.1:5071"
    weight = 2

Kamailio's ``dispatcher.list`` lines are ``setid destination [flags [priority [attrs]]]`` with
attrs like ``weight=2;maxload=50;duid=a``. Flags are read but not used: whether servers are
probed is the ``[probe] enabled`` setting (Kamailio's ``ds_probing_mode=1``).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from sipha.common.config import ConfigError, convert, load_toml

from .servers import ServerSpec, parse_server

__all__ = [
    "DispatcherConfig",
    "ProbeConfig",
    "ServerConfig",
    "load_config",
    "read_dispatcher_list",
    "resolve_servers",
]


class ProbeConfig(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool = True
    interval: float = 0.5
    timeout: float = 0.5
    probing_threshold: int = 2
    inactive_threshold: int = 2
    accepted_codes: list[int] = msgspec.field(default_factory=lambda: [404, 405, 481])
    suspect_hold: float = 5.0


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    uri: str
    weight: int = 1
    priority: int = 0
    maxload: int = 0
    probe: bool | None = None
    id: str = ""


class DispatcherConfig(msgspec.Struct, forbid_unknown_fields=True):
    listen: list[str] = msgspec.field(default_factory=lambda: ["udp:127.0.0.1:5060"])
    advertise: str = ""
    algorithm: str = "wlc"
    algorithm_options: dict[str, object] = msgspec.field(default_factory=dict)
    http: str = ""
    token: str = ""
    secret: str = ""
    servers: list[ServerConfig] = msgspec.field(default_factory=list)
    dispatcher_list: str = ""
    setid: int = 1
    failover_timeout: float = 0.2
    failover_codes: list[int] = msgspec.field(default_factory=lambda: [503])
    max_attempts: int = 3
    dialog_aware: bool = True  # false: IPVS-like, no failover, no passive health, no rescue
    dialog_timeout: float = 7200.0
    rate_limit: int = 0
    rate_window: float = 1.0
    rate_limit_reply: bool = False
    max_message_size: int = 65535
    freebind: bool = False
    probe: ProbeConfig = msgspec.field(default_factory=ProbeConfig)


def load_config(path: str | Path) -> DispatcherConfig:
    """Read a TOML file; raises ConfigError naming the field and the fix."""
    cfg = load_toml(path, DispatcherConfig)
    validate(cfg, source=str(path))
    return cfg


def validate(cfg: DispatcherConfig, *, source: str = "config") -> None:
    def check(ok: bool, field: str, problem: str, fix: str) -> None:
        if not ok:
            raise ConfigError(source, field, problem, fix)

    check(cfg.failover_timeout > 0, "failover_timeout", "must be > 0", "e.g. 0.2")
    check(cfg.max_attempts >= 1, "max_attempts", "must be >= 1", "e.g. 3")
    check(cfg.probe.interval > 0, "probe.interval", "must be > 0", "e.g. 0.5")
    check(cfg.probe.timeout > 0, "probe.timeout", "must be > 0", "e.g. 0.5")
    check(cfg.probe.probing_threshold >= 1, "probe.probing_threshold", "must be >= 1", "e.g. 2")
    check(cfg.probe.inactive_threshold >= 1, "probe.inactive_threshold", "must be >= 1", "e.g. 2")
    check(cfg.rate_limit >= 0, "rate_limit", "must be >= 0", "0 turns it off")
    for i, s in enumerate(cfg.servers):
        check(s.weight >= 0, f"servers[{i}].weight", "must be >= 0", "e.g. 1")


def read_dispatcher_list(path: str | Path, *, setid: int | None = None) -> list[ServerSpec]:
    """Servers from a Kamailio ``dispatcher.list``; raises ConfigError with the line number."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read the file: {exc.strerror}") from None
    out: list[ServerSpec] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"line {n}"
        if len(parts) < 2 or not parts[0].isdigit():
            raise ConfigError(
                str(p), where, f"expected 'setid destination [flags [priority [attrs]]]': {raw!r}"
            )
        if setid is not None and int(parts[0]) != setid:
            continue
        flags = parts[2] if len(parts) > 2 else "0"
        priority = parts[3] if len(parts) > 3 else "0"
        attrs = parts[4] if len(parts) > 4 else ""
        if not flags.isdigit() or not priority.lstrip("-").isdigit():
            raise ConfigError(str(p), where, "flags and priority must be integers")
        extra = f";priority={max(0, int(priority))}"
        for attr in filter(None, attrs.split(";")):
            name, _, value = attr.partition("=")
            name = name.strip().lower()
            if name in ("weight", "maxload", "duid"):
                extra += f";{name}={value.strip()}"
        try:
            out.append(parse_server(parts[1] + extra))
        except ValueError as exc:
            raise ConfigError(str(p), where, str(exc)) from None
    return out


def resolve_servers(cfg: DispatcherConfig, *, source: str = "config") -> list[ServerSpec]:
    """Every configured server (TOML tables, then the dispatcher.list file)."""
    specs: list[ServerSpec] = []
    for i, s in enumerate(cfg.servers):
        try:
            spec = parse_server(s.uri, probing=cfg.probe.enabled)
        except ValueError as exc:
            raise ConfigError(source, f"servers[{i}].uri", str(exc)) from None
        specs.append(
            ServerSpec(
                spec.uri, spec.host, spec.port, spec.transport,
                s.weight if s.weight != 1 else spec.weight,
                s.priority or spec.priority, s.maxload or spec.maxload,
                spec.probing if s.probe is None else s.probe, s.id or spec.id,
            )
        )
    if cfg.dispatcher_list:
        for spec in read_dispatcher_list(cfg.dispatcher_list, setid=cfg.setid):
            specs.append(spec if cfg.probe.enabled else _no_probe(spec))
    return specs


def _no_probe(spec: ServerSpec) -> ServerSpec:
    return ServerSpec(
        spec.uri, spec.host, spec.port, spec.transport, spec.weight, spec.priority,
        spec.maxload, False, spec.id,
    )


def from_mapping(data: dict[str, object], *, source: str = "flags") -> DispatcherConfig:
    cfg = convert(data, DispatcherConfig, source=source)
    validate(cfg, source=source)
    return cfg
