"""Configuration of a SIP server node: a TOML file, overridable by flags.

Example (every field optional)::

    server_id = "s1"
    domain = "sipha.local"          # users are user@domain; realm defaults to it
    listen = ["udp:127.0.0.1:5070", "tcp:127.0.0.1:5070"]
    store = "sqlite:sipha.db"       # or redis://127.0.0.1:6379/0
    http = "127.0.0.1:8070"
    record_route = true
    auth_invite = false             # 407 challenge for every INVITE, answered ones too
    auth = "auto"                   # forwarding needs digest auth: auto (when the store has
                                    # users), on, off (docs/security.md)
    auth_methods = ["INVITE", "MESSAGE", "SUBSCRIBE", "REFER", "NOTIFY", "OPTIONS", ...]
    auth_int_register = false       # REGISTER must answer with qop=auth-int
    trusted = ["192.0.2.10", "198.51.100.0/24"]  # forwarded without digest (docs/security.md)
    aliases = ["203.0.113.5:5060"]  # HOST[:PORT] that also name us in Route: VIP, dispatchers
    dns_servers = ["127.0.0.1:5353"]  # empty: /etc/resolv.conf
    dns_timeout = 2.0               # seconds for one next-hop lookup (then 408)
    nonce_secret = ""               # digest nonce key (>= 16 bytes); empty: a random key
                                    # made once and kept in the store, shared by its servers

    [identities]                    # authenticated user -> other From users it may use
    alice = ["sales"]

    [tls]                           # for tls:HOST:PORT listeners and TLS next hops
    cert = "certs/server.pem"       # `sipha certs certs` makes a test CA and these
    key = "certs/server.key"
    ca = "certs/ca.pem"             # peers we connect to must chain to it (empty: system CAs)
    verify_server = true
    require_client_cert = false     # mutual TLS on the tls: listeners

    [registrar]
    min_expires = 60
    max_expires = 3600
    default_expires = 3600

    [[answer]]                      # extensions the server answers itself, first match wins
    pattern = "service"             # regex, full match on the Request-URI user part
    action = "answer"               # answer | busy | reject CODE | ring-no-answer
    ring_time = 0.0                 # seconds of 180 before the 200 (answer)
    max_hold = 3600.0               # the server sends BYE itself after this long

:func:`validate` turns every semantic problem into a :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import msgspec

from sipha.common.config import ConfigError, convert, load_toml
from sipha.common.http import parse_host_port
from sipha.sip.transaction import TimerConfig
from sipha.transport import ListenSpec, TlsConfig
from sipha.transport.tls import TlsConfigError
from sipha.transport.tls import check as check_tls

__all__ = [
    "AnswerRule",
    "RegistrarConfig",
    "ServerConfig",
    "TimersConfig",
    "load_config",
    "parse_action",
    "parse_alias",
    "validate",
]

ACTIONS = "answer, busy, reject CODE (400-699), ring-no-answer"
# Every method a UA sends outside ACK and CANCEL (hop by hop, never challenged: RFC 3261 §22.1).
AUTH_METHODS = (
    "INVITE",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "PUBLISH",
    "INFO",
    "UPDATE",
    "PRACK",
)
AUTH_MODES = ("auto", "on", "off")


class RegistrarConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600


class AnswerRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pattern: str
    action: str = "answer"
    ring_time: float = 0.0
    max_hold: float = 3600.0
    # How long ring-no-answer rings before giving up with 480.
    ring_timeout: float = 120.0


class TimersConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """RFC 3261 Table 4 base values; ``timer_c`` is the proxy INVITE timeout (§16.6 step 11)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_c: float = 180.0


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server_id: str = ""
    domain: str = "sipha.local"
    realm: str = ""
    listen: list[str] = msgspec.field(default_factory=lambda: ["udp:127.0.0.1:5060"])
    advertise: str = ""  # host written in Via/Record-Route/Contact; default: the listen host
    store: str = "sqlite:sipha.db"
    http: str = ""  # HOST:PORT of the status API; empty: none
    http_token: str = ""
    record_route: bool = True
    auth_invite: bool = False
    auth: str = "auto"
    auth_methods: list[str] = msgspec.field(default_factory=lambda: list(AUTH_METHODS))
    auth_int_register: bool = False
    trusted: list[str] = msgspec.field(default_factory=list)
    aliases: list[str] = msgspec.field(default_factory=list)
    identities: dict[str, list[str]] = msgspec.field(default_factory=dict)
    dns_servers: list[str] = msgspec.field(default_factory=list)
    dns_timeout: float = 2.0
    nonce_secret: str = ""
    nonce_lifetime: float = 300.0
    drain_time: float = 5.0
    dialog_ttl: float = 7200.0
    share_dialogs: bool = True  # answered calls in the shared store: any server can end them
    registrar: RegistrarConfig = msgspec.field(default_factory=RegistrarConfig)
    answer: list[AnswerRule] = msgspec.field(default_factory=list)
    timers: TimersConfig = msgspec.field(default_factory=TimersConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)

    @property
    def effective_realm(self) -> str:
        return self.realm or self.domain

    @property
    def listen_specs(self) -> list[ListenSpec]:
        return [ListenSpec.parse(text) for text in self.listen]

    @property
    def nonce_key(self) -> bytes | None:
        """The configured digest nonce key, or None: use the cluster's random one from the
        store (servers on one store must accept each other's nonces, and nobody else may be
        able to mint them, so the key is neither fixed nor derived from the realm)."""
        return self.nonce_secret.encode() if self.nonce_secret else None

    @property
    def timer_config(self) -> TimerConfig:
        t = self.timers
        return TimerConfig(t1=t.t1, t2=t.t2, t4=t.t4)


def parse_action(text: str) -> tuple[str, int]:
    """``"reject 403"`` -> ("reject", 403); ``"busy"`` -> ("reject", 486).

    Returns (kind, status) with kind in answer / reject / ring; raises ValueError naming the
    accepted forms.
    """
    words = text.strip().lower().split()
    if words == ["answer"]:
        return "answer", 200
    if words == ["busy"]:
        return "reject", 486  # RFC 3261 §21.4.24 Busy Here
    if words == ["ring-no-answer"]:
        return "ring", 180
    if len(words) == 2 and words[0] == "reject" and words[1].isdigit():
        code = int(words[1])
        if 400 <= code <= 699:
            return "reject", code
    raise ValueError(f"unknown action {text!r}; expected one of: {ACTIONS}")


def validate(cfg: ServerConfig, source: str = "config") -> ServerConfig:
    """Check what types alone cannot; raise ConfigError naming the field and the fix."""
    if not cfg.listen:
        raise ConfigError(source, "listen", "no listen address", "add udp:HOST:PORT")
    for i, text in enumerate(cfg.listen):
        try:
            ListenSpec.parse(text)
        except ValueError as exc:
            raise ConfigError(source, f"listen[{i}]", str(exc)) from None
    listening_tls = any(s.transport == "tls" for s in cfg.listen_specs)
    try:
        check_tls(cfg.tls, listening=listening_tls)
    except TlsConfigError as exc:
        raise ConfigError(source, f"tls.{exc.field}", exc.problem, exc.fix) from None
    if cfg.http:
        try:
            parse_host_port(cfg.http, what="HTTP address")
        except ValueError as exc:
            raise ConfigError(source, "http", str(exc)) from None
    if not cfg.domain or any(c.isspace() or c in "@:;<>" for c in cfg.domain):
        raise ConfigError(source, "domain", f"{cfg.domain!r} is not a domain", "write a host name")
    if not cfg.store.strip():
        raise ConfigError(source, "store", "empty", "write sqlite:PATH or redis://HOST:PORT/DB")
    if cfg.nonce_secret and len(cfg.nonce_secret.encode()) < 16:
        raise ConfigError(source, "nonce_secret", "shorter than 16 bytes", "use a longer secret")
    _validate_security(cfg, source)
    reg = cfg.registrar
    for name in ("min_expires", "max_expires", "default_expires"):
        if getattr(reg, name) < 1:
            raise ConfigError(source, f"registrar.{name}", "must be at least 1 second")
    if reg.min_expires > reg.max_expires:
        raise ConfigError(
            source, "registrar.min_expires", "greater than max_expires", "lower it or raise max"
        )
    if not reg.min_expires <= reg.default_expires <= reg.max_expires:
        raise ConfigError(source, "registrar.default_expires", "outside min_expires..max_expires")
    for i, rule in enumerate(cfg.answer):
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            raise ConfigError(
                source, f"answer[{i}].pattern", f"not a regular expression: {exc}"
            ) from None
        try:
            parse_action(rule.action)
        except ValueError as exc:
            raise ConfigError(source, f"answer[{i}].action", str(exc)) from None
        for name in ("ring_time", "max_hold", "ring_timeout"):
            if getattr(rule, name) < 0:
                raise ConfigError(source, f"answer[{i}].{name}", "must not be negative")
        if rule.max_hold <= 0:
            raise ConfigError(source, f"answer[{i}].max_hold", "must be positive")
    t = cfg.timers
    try:
        cfg.timer_config  # noqa: B018 - constructing it validates T1/T2/T4
    except ValueError as exc:
        raise ConfigError(source, "timers", str(exc)) from None
    if t.timer_c <= 0:
        raise ConfigError(source, "timers.timer_c", "must be positive")
    for name in ("nonce_lifetime", "drain_time", "dialog_ttl"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(source, name, "must be positive")
    return cfg


def _validate_security(cfg: ServerConfig, source: str) -> None:
    if cfg.auth not in AUTH_MODES:
        raise ConfigError(source, "auth", f"{cfg.auth!r} is not a mode", "auto, on or off")
    for i, method in enumerate(cfg.auth_methods):
        if not method.isalpha() or not method.isupper() or method in ("ACK", "CANCEL"):
            raise ConfigError(
                source, f"auth_methods[{i}]", f"{method!r}", "an upper-case method but ACK/CANCEL"
            )
    for i, text in enumerate(cfg.trusted):
        try:
            ipaddress.ip_network(text.strip("[]"), strict=False)
        except ValueError:
            raise ConfigError(
                source, f"trusted[{i}]", f"{text!r} is not an address", "write IP or IP/PREFIX"
            ) from None
    for i, text in enumerate(cfg.aliases):
        try:
            parse_alias(text)
        except ValueError as exc:
            raise ConfigError(
                source, f"aliases[{i}]", str(exc), "write HOST or HOST:PORT"
            ) from None
    for i, text in enumerate(cfg.dns_servers):
        try:
            parse_host_port(text, what="DNS server")
        except ValueError as exc:
            raise ConfigError(source, f"dns_servers[{i}]", str(exc), "write IP:PORT") from None
    if not 0 < cfg.dns_timeout <= 30:
        raise ConfigError(source, "dns_timeout", "must be in (0, 30] seconds")


def parse_alias(text: str) -> tuple[str, int | None]:
    """``host`` or ``host:port`` (``[v6]:port``) -> (lower-case host, port or None).

    Raises ValueError naming the problem.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"alias {text!r}: junk after ]")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host or len(host) > 253 or any(c.isspace() or c in "@;<>/" for c in host):
        raise ValueError(f"alias {text!r}: bad host")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"alias {text!r}: port must be 1..65535")
    return host.lower(), int(port_text) if port_text else None


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    """The file at ``path`` (or defaults), with ``overrides`` (flag values) on top, validated.

    Raises ConfigError naming the file, the field and the fix.
    """
    source = "flags" if path is None else str(path)
    base = ServerConfig() if path is None else load_toml(path, ServerConfig)
    if overrides:
        data = msgspec.to_builtins(base)
        data.update({k: v for k, v in overrides.items() if v is not None})
        base = convert(data, ServerConfig, source=source)
    return validate(base, source)
