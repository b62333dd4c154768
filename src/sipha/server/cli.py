"""``sipha server``: arguments to a :class:`ServerConfig` (flags over the TOML file), then run."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from sipha.common.config import ConfigError
from sipha.common.http import check_exposure
from sipha.common.loop import run
from sipha.common.tls_flags import add_tls_arguments, tls_overrides
from sipha.server.config import load_config

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument(
        "--listen",
        action="append",
        metavar="TRANSPORT:HOST:PORT",
        help="SIP listen address, repeatable (e.g. udp:127.0.0.1:5070 tcp:127.0.0.1:5070)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:PATH or redis://HOST:PORT/DB (default: sqlite:sipha.db in the working "
        "directory)",
    )
    parser.add_argument("--http", metavar="HOST:PORT", help="status API (/status, /metrics)")
    parser.add_argument(
        "--insecure-http", action="store_true",
        help="allow --http on a non-loopback address without http_token in the --config file",
    )
    parser.add_argument(
        "--answer",
        action="append",
        metavar="REGEX",
        help="Request-URI users the server answers itself (200 + SDP), repeatable; "
        "'service' is what SIPp's built-in uac calls",
    )
    parser.add_argument("--domain", help="the users' domain (default sipha.local)")
    parser.add_argument("--realm", help="digest realm (default: the domain)")
    parser.add_argument("--server-id", help="name in the status API and dialog records")
    parser.add_argument("--advertise", metavar="HOST", help="host written in Via/Record-Route")
    parser.add_argument(
        "--auth-invite", action="store_true", default=None, help="challenge INVITEs with 407"
    )
    parser.add_argument(
        "--auth",
        choices=("auto", "on", "off"),
        help="digest authentication of requests the server forwards: auto (default: on when "
        "the store has users), on, off (docs/security.md)",
    )
    parser.add_argument(
        "--trusted",
        action="append",
        metavar="IP[/PREFIX]",
        help="trusted peer whose requests are forwarded without digest (Kamailio "
        "permissions), repeatable",
    )
    parser.add_argument(
        "--alias",
        action="append",
        metavar="HOST[:PORT]",
        help="another name of this server in Route headers: the service address (VIP) and "
        "the dispatchers, repeatable; requests from an alias are judged by the client below",
    )
    parser.add_argument(
        "--dns-server",
        action="append",
        metavar="IP:PORT",
        help="DNS server for next hops, repeatable (default: /etc/resolv.conf)",
    )
    parser.add_argument("--no-record-route", action="store_true", help="do not Record-Route")
    parser.add_argument(
        "--nonce-secret",
        metavar="SECRET",
        help="digest nonce key, 16 bytes or more, the same on every server of the cluster "
        "(default: a random key made once and kept in the shared store); other users see "
        "flags in ps, so prefer nonce_secret in the --config file",
    )
    add_tls_arguments(parser)
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")


def overrides_from(
    args: argparse.Namespace,
    file_rules: list[dict[str, Any]],
    file_tls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration fields the flags set (None values are left to the file)."""
    out: dict[str, Any] = {
        "listen": args.listen,
        "store": args.store,
        "http": args.http,
        "domain": args.domain,
        "realm": args.realm,
        "server_id": args.server_id,
        "advertise": args.advertise,
        "auth_invite": args.auth_invite,
        "record_route": False if args.no_record_route else None,
        "nonce_secret": args.nonce_secret,
        "auth": args.auth,
        "trusted": args.trusted,
        "aliases": args.alias,
        "dns_servers": args.dns_server,
    }
    tls = tls_overrides(args)
    if tls:
        out["tls"] = {**(file_tls or {}), **tls}
    if args.answer:
        # Flag rules come first: they win over the file's for the same user.
        out["answer"] = [{"pattern": p, "action": "answer"} for p in args.answer] + file_rules
    return out


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import msgspec

        from sipha.common.config import load_toml
        from sipha.server.config import ServerConfig

        # The file alone need not be complete (a tls: listener's certificate may be a flag):
        # only the merged configuration is validated.
        base = load_toml(args.config, ServerConfig) if args.config else ServerConfig()

        file_rules = msgspec.to_builtins(base.answer)
        file_tls = msgspec.to_builtins(base.tls)
        cfg = load_config(args.config, overrides_from(args, file_rules, file_tls))
        if cfg.http:
            check_exposure(cfg.http, cfg.http_token, insecure=args.insecure_http)
    except (ConfigError, ValueError) as exc:
        print(f"sipha server: {exc}", file=sys.stderr)
        return 2
    from sipha.server.service import serve

    try:
        return run(serve(cfg))
    except (OSError, ValueError) as exc:
        print(f"sipha server: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:
        # A failure inside the TaskGroup (binding a socket, opening the store) comes grouped.
        first = group.exceptions[0]
        if isinstance(first, OSError | ValueError):
            print(f"sipha server: {first}", file=sys.stderr)
            return 1
        raise
