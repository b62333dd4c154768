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
    flow_timer = 25                      # keepalive interval for phones using outbound
    dns_servers = ["127.0.0.1:53"]       # for servers named by DNS (default: resolv.conf)
    [probe]
    enabled = true
    interval = 0.5
    timeout = 0.5
    probing_threshold = 2
    inactive_threshold = 2
    accepted_codes = [404, 405, 481]
    [[servers]]
    uri = "sip:127.0.0.1:5071"           # ";transport=tls" (or sips:) reaches it over TLS
    weight = 2
    [tls]                                # tls: listeners (TLS termination), TLS servers
    cert = "certs/server.pem"
    key = "certs/server.key"
    ca = "certs/ca.pem"                  # servers' certificates must chain to it
    client_cert = "certs/client.pem"     # mutual TLS towards servers that require it
    client_key = "certs/client.key"

Kamailio's ``dispatcher.list`` lines are ``setid destination [flags [priority [attrs]]]`` with
attrs like ``weight=2;maxload=50;duid=a``. The flags column is Kamailio's bit set:

====  ==============  ==============================================================
bit   Kamailio        here
====  ==============  ==============================================================
1     inactive        the server starts `inactive` (probed back to active if probed)
2     trying          no state of its own here: the server starts `active`
4     disabled        the server starts `disabled` (an operator's state; wins over 1)
8     probing         the server is probed (OPTIONS); without bit 8 it is not
====  ==============  ==============================================================

Other bits (16, no DNS resolution, ...) are ignored. Bit 8 decides probing only when the
line has a flags column (Kamailio's ``ds_probing_mode=0``: probe the flagged ones); a line
without one is probed, and ``[probe] enabled = false`` turns probing off for every server
whatever its flags. A reload adds, removes and reweights servers; a server it adds starts
in its flagged state, one it keeps keeps its current state.

A ``[[servers]]`` table may give an attribute as a field (``weight = 2``) or as a URI
parameter (``uri = "sip:...;weight=2"``), as on the command line. Giving both with
different values is refused with an error naming the field: in a Kamailio list the
attributes have one column, and silently preferring one of two values would hide a typo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from sipha.common.config import ConfigError, convert, load_toml
from sipha.common.http import parse_host_port
from sipha.transport import ListenSpec, TlsConfig
from sipha.transport.tls import TlsConfigError
from sipha.transport.tls import check as check_tls

from .health import HealthState
from .servers import ServerSpec, parse_server, uri_attributes

__all__ = [
    "DispatcherConfig",
    "ProbeConfig",
    "ServerConfig",
    "Sources",
    "check_reachable",
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
    """One ``[[servers]]`` table; an unset field takes the URI's parameter or the default."""

    uri: str
    weight: int | None = None
    priority: int | None = None
    maxload: int | None = None
    probe: bool | None = None
    id: str | None = None


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
    reflection_rate: float = 50.0  # repeats/s relayed to a caller that never answered us; 0: off
    reflection_burst: float = 100.0
    max_message_size: int = 65535
    dns_servers: list[str] = msgspec.field(default_factory=list)  # IP:PORT; empty: resolv.conf
    dns_timeout: float = 2.0  # seconds for one lookup of a server's name
    freebind: bool = False
    flow_timer: int = 25  # RFC 5626 Flow-Timer for phones registered with outbound; 0: none
    probe: ProbeConfig = msgspec.field(default_factory=ProbeConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)


def load_config(path: str | Path) -> DispatcherConfig:
    """Read a TOML file; raises ConfigError naming the field and the fix."""
    cfg = load_toml(path, DispatcherConfig)
    validate(cfg, source=str(path), files=False)
    return cfg


def validate(cfg: DispatcherConfig, *, source: str = "config", files: bool = True) -> None:
    """Raise ConfigError naming the field. ``files``: also load the TLS files (skipped for a
    file alone, whose certificate paths the flags may still give)."""

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
    check(0 <= cfg.flow_timer <= 3600, "flow_timer", "must be 0..3600", "e.g. 25; 0: none")
    for i, text in enumerate(cfg.dns_servers):
        try:
            parse_host_port(text, what="DNS server")
        except ValueError as exc:
            raise ConfigError(source, f"dns_servers[{i}]", str(exc), "write IP:PORT") from None
    check(0 < cfg.dns_timeout <= 30, "dns_timeout", "must be in (0, 30] seconds", "e.g. 2")
    check(cfg.reflection_rate >= 0, "reflection_rate", "must be >= 0", "0 turns it off")
    check(cfg.reflection_burst >= 1, "reflection_burst", "must be >= 1", "e.g. 100")
    for i, s in enumerate(cfg.servers):
        check(s.weight is None or s.weight >= 0, f"servers[{i}].weight", "must be >= 0", "e.g. 1")
        check(s.priority is None or s.priority >= 0, f"servers[{i}].priority", "must be >= 0",
              "e.g. 0")
        check(s.maxload is None or s.maxload >= 0, f"servers[{i}].maxload", "must be >= 0",
              "0 means unlimited")
    if files:
        try:
            listening = any(ListenSpec.parse(t).transport == "tls" for t in cfg.listen)
            check_tls(cfg.tls, listening=listening)
        except TlsConfigError as exc:
            raise ConfigError(source, f"tls.{exc.field}", exc.problem, exc.fix) from None
        except ValueError as exc:
            raise ConfigError(source, "listen", str(exc)) from None


def _flagged(flags: int) -> tuple[HealthState, bool]:
    """(initial state, probing) for a Kamailio flags value."""
    if flags & 4:
        state = HealthState.DISABLED
    elif flags & 1:
        state = HealthState.INACTIVE
    else:
        state = HealthState.ACTIVE  # 2 (trying) is a step on Kamailio's way to inactive
    return state, bool(flags & 8)


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
        flags = parts[2] if len(parts) > 2 else None
        priority = parts[3] if len(parts) > 3 else "0"
        attrs = parts[4] if len(parts) > 4 else ""
        if (flags is not None and not flags.isdigit()) or not priority.lstrip("-").isdigit():
            raise ConfigError(str(p), where, "flags and priority must be integers")
        extra = f";priority={max(0, int(priority))}"
        for attr in filter(None, attrs.split(";")):
            name, _, value = attr.partition("=")
            name = name.strip().lower()
            if name in ("weight", "maxload", "duid"):
                extra += f";{name}={value.strip()}"
        try:
            spec = parse_server(parts[1] + extra)
        except ValueError as exc:
            raise ConfigError(str(p), where, str(exc)) from None
        if flags is not None:
            state, probing = _flagged(int(flags))
            spec = dataclasses.replace(spec, state=state, probing=probing)
        out.append(spec)
    return out


def resolve_servers(cfg: DispatcherConfig, *, source: str = "config") -> list[ServerSpec]:
    """Every configured server (TOML tables, then the dispatcher.list file).

    Raises ConfigError naming the field: a bad URI, or an attribute given both as a field and,
    with another value, as a URI parameter.
    """
    specs: list[ServerSpec] = []
    for i, s in enumerate(cfg.servers):
        try:
            spec = parse_server(s.uri, probing=cfg.probe.enabled)
            in_uri = uri_attributes(s.uri)
        except ValueError as exc:
            raise ConfigError(source, f"servers[{i}].uri", str(exc)) from None
        fields: dict[str, Any] = {
            "weight": s.weight, "priority": s.priority, "maxload": s.maxload,
            "probing": s.probe, "id": s.id,
        }
        for name, value in fields.items():
            if value is None:
                continue
            param = "probe" if name == "probing" else name
            field = f"servers[{i}].{param}"
            if param in in_uri and getattr(spec, name) != value:
                raise ConfigError(
                    source, field,
                    f"{value!r} conflicts with ;{param}= in servers[{i}].uri ({s.uri!r})",
                    f"give {param} once: as the field or as the URI parameter",
                )
        spec = dataclasses.replace(spec, **{k: v for k, v in fields.items() if v is not None})
        specs.append(spec)
    if cfg.dispatcher_list:
        for spec in read_dispatcher_list(cfg.dispatcher_list, setid=cfg.setid):
            specs.append(spec if cfg.probe.enabled else dataclasses.replace(spec, probing=False))
    return specs


def from_mapping(data: dict[str, object], *, source: str = "flags") -> DispatcherConfig:
    cfg = convert(data, DispatcherConfig, source=source)
    validate(cfg, source=source)
    return cfg


def check_reachable(cfg: DispatcherConfig, spec: ServerSpec, *, source: str = "config") -> None:
    """Refuse a UDP server when the dispatcher has no UDP listener: UDP requests leave from
    the listening socket (its port is our Via sent-by), so there would be nothing to send
    from and every call and probe would fail. (A TCP server is reached over an outgoing
    connection, with or without a TCP listener.) Raises ConfigError."""
    if spec.transport != "udp":
        return
    try:
        transports = {ListenSpec.parse(text).transport for text in cfg.listen}
    except ValueError as exc:
        raise ConfigError(source, "listen", str(exc)) from None
    if "udp" not in transports:
        raise ConfigError(
            source, "listen",
            f"server {spec.key()!r} is reached over UDP but the dispatcher has no UDP listener",
            "add a udp:HOST:PORT listen address, or give the server ;transport=tcp",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Sources:
    """Where a node's configuration comes from: the TOML file, the flag values that win over
    it and the ``--server`` URIs. Kept by the service so that a reload reads the same places
    the node started from (a flag-given server is not dropped because a file was re-read).
    """

    config_path: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Top-level `DispatcherConfig` fields set by flags; None values are ignored."""
    probe: bool | None = None
    """``--probe on|off``: `ProbeConfig.enabled`, if given."""
    servers: tuple[str, ...] = ()
    """``--server`` URIs, added after the file's servers."""

    @property
    def name(self) -> str:
        """What error messages call these sources."""
        return self.config_path or "flags"

    def load(self) -> tuple[DispatcherConfig, list[ServerSpec]]:
        """Read everything now; raises ConfigError naming the field (a server configured
        twice included)."""
        cfg = load_config(self.config_path) if self.config_path else DispatcherConfig()
        data: dict[str, Any] = msgspec.to_builtins(cfg)
        data.update({k: v for k, v in self.overrides.items() if v is not None and k != "tls"})
        data["tls"].update(self.overrides.get("tls") or {})  # flags over the file's [tls]
        if self.probe is not None:
            data["probe"]["enabled"] = self.probe
        cfg = from_mapping(data, source=self.name)
        specs = resolve_servers(cfg, source=self.name)
        for text in self.servers:
            try:
                specs.append(parse_server(text, probing=cfg.probe.enabled))
            except ValueError as exc:
                raise ConfigError("flags", "--server", str(exc)) from None
        seen: set[str] = set()
        for spec in specs:
            check_reachable(cfg, spec, source=self.name)
            if spec.key() in seen:
                raise ConfigError(
                    self.name, "servers", f"server {spec.key()!r} is configured twice",
                    "give each server once (or distinct ids)",
                )
            seen.add(spec.key())
        return cfg, specs
