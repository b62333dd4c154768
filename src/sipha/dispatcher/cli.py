"""``sipha dispatcher``: run a dispatcher, or ``sipha dispatcher ctl ...`` to control one."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sipha.common.config import ConfigError
from sipha.common.http import check_exposure
from sipha.common.tls_flags import add_tls_arguments, tls_overrides

CTL_ACTIONS: dict[str, tuple[str, str]] = {
    "list": ("", "one line per server: uid, id, state, weight, calls, probe latency"),
    "status": ("", "servers, counters and transport statistics as JSON"),
    "state": ("ID STATE", "set a server's state: active, inactive, disabled or draining"),
    "weight": ("ID W", "set a server's weight (0 quiesces it: no new calls)"),
    "add": ("URI", 'add a server, e.g. "sip:127.0.0.1:5071;weight=2"'),
    "remove": ("ID", "remove a server (its dialogs finish on it)"),
    "reload": ("", "re-read the servers from the sources the dispatcher started with"),
    "promote": ("", "HA: make this node active"),
    "demote": ("", "HA: make this node standby"),
    "ha": ("", "HA: this node's role and its peer, as JSON"),
}
"""ctl action -> (its arguments, what it does); ID is a uid, a server id or HOST:PORT."""


def _ctl_usage(action: str) -> str:
    args = CTL_ACTIONS[action][0]
    return f"{action} {args}" if args else action


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .schedulers import available

    parser.add_argument("--config", metavar="FILE", help="TOML configuration (see docs)")
    parser.add_argument(
        "--listen", action="append", metavar="SPEC",
        help="udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT (with --tls-cert); repeat for "
        "several (default udp:127.0.0.1:5060)",
    )
    parser.add_argument(
        "--advertise", metavar="HOST:PORT",
        help="address in our Via/Record-Route (default: the first --listen address)",
    )
    parser.add_argument(
        "--server", action="append", metavar="URI",
        help='a SIP server, e.g. "sip:127.0.0.1:5071;weight=2"; repeat for several '
             "(attributes: weight, priority, maxload, probe=on|off, id; ;transport=tcp|tls)",
    )
    parser.add_argument(
        "--dispatcher-list", metavar="FILE",
        help="Kamailio dispatcher.list (flags: 1 inactive, 4 disabled, 8 probed)",
    )
    parser.add_argument(
        "--setid", type=int, metavar="N", help="set id to read from --dispatcher-list (default 1)"
    )
    parser.add_argument(
        "--algorithm", metavar="NAME",
        help=f"scheduler: {', '.join(available())} (default wlc)",
    )
    parser.add_argument(
        "--probe", choices=["on", "off"], help="OPTIONS probing of servers (default on)"
    )
    parser.add_argument(
        "--failover-timeout", type=float, metavar="SECONDS",
        help="try the next server when an INVITE has no answer within this (default 0.2)",
    )
    parser.add_argument(
        "--rate-limit", type=int, metavar="N", help="requests/s per source IP (default 0: off)"
    )
    parser.add_argument(
        "--flow-timer", type=int, metavar="SECONDS",
        help="keepalive interval given to phones registered with outbound (RFC 5626 "
             "Flow-Timer; default 25, 0: none)",
    )
    parser.add_argument(
        "--dns-server", action="append", metavar="IP:PORT",
        help="DNS server for servers given by name, repeatable (default: /etc/resolv.conf)",
    )
    parser.add_argument("--http", metavar="HOST:PORT", help="HTTP API address (default: none)")
    parser.add_argument("--token", help="bearer token for the HTTP API (default: none)")
    add_tls_arguments(parser)
    parser.add_argument(
        "--insecure-http", action="store_true",
        help="allow --http on a non-loopback address without a --token",
    )
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity (default INFO)",
    )
    sub = parser.add_subparsers(dest="dispatcher_command", metavar="ctl")
    width = max(len(_ctl_usage(a)) for a in CTL_ACTIONS)
    ctl = sub.add_parser(
        "ctl", help="control a running dispatcher over its HTTP API",
        description="Control a running dispatcher over its HTTP API.",
        epilog="actions:\n" + "\n".join(
            f"  {_ctl_usage(a):<{width}}  {text}" for a, (_, text) in CTL_ACTIONS.items()
        ) + "\n\nID is a server's uid, its id (e.g. sip:127.0.0.1:5071) or HOST:PORT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ctl.add_argument(
        "--http", dest="ctl_http", required=True, metavar="HOST:PORT",
        help="the dispatcher's HTTP API address (its --http)",
    )
    ctl.add_argument(
        "--token", dest="ctl_token", metavar="TOKEN", help="the dispatcher's bearer token"
    )
    ctl.add_argument(
        "action", choices=list(CTL_ACTIONS), metavar="ACTION",
        help="one of the actions below",
    )
    ctl.add_argument("args", nargs="*", metavar="ARG", help="the action's arguments")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "dispatcher_command", None) == "ctl":
        return ctl_main(args)
    logging.basicConfig(
        level=getattr(logging, args.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg, specs = build_config(args)
        if cfg.http:
            check_exposure(cfg.http, cfg.token, insecure=args.insecure_http)
    except (ConfigError, ValueError) as exc:
        print(f"sipha dispatcher: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print("sipha dispatcher: no servers (use --server, --dispatcher-list or --config)",
              file=sys.stderr)
        return 2
    from sipha.common.loop import run

    from .service import DispatcherService

    async def _main() -> None:
        import asyncio

        service = DispatcherService(cfg, specs, sources=server_sources(args))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    try:
        run(_main())
    except OSError as exc:
        print(f"sipha dispatcher: {exc}", file=sys.stderr)
        return 1
    return 0


def server_sources(args: argparse.Namespace) -> Any:
    """The `Sources` the flags name: the file, the flag values that win over it, --server."""
    from .config import Sources

    overrides = {
        "listen": args.listen, "advertise": args.advertise, "algorithm": args.algorithm,
        "http": args.http, "token": args.token, "dispatcher_list": args.dispatcher_list,
        "setid": args.setid, "failover_timeout": args.failover_timeout,
        "rate_limit": args.rate_limit, "tls": tls_overrides(args),
        "flow_timer": args.flow_timer,
        "dns_servers": args.dns_server,
    }
    probe = None if args.probe is None else args.probe == "on"
    return Sources(args.config, overrides, probe, tuple(args.server or ()))


def build_config(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Merge the TOML file (if any) with flags; flags win. Raises ConfigError/ValueError."""
    from .schedulers import available

    cfg, specs = server_sources(args).load()
    if cfg.algorithm not in available():
        raise ValueError(f"unknown algorithm {cfg.algorithm!r}; known: {', '.join(available())}")
    return cfg, specs


# --- ctl --------------------------------------------------------------------------------


def _call(base: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{base}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        raise RuntimeError(f"HTTP {exc.code}: {text}") from None


def ctl_main(args: argparse.Namespace) -> int:
    base, token, a = args.ctl_http, args.ctl_token, args.args
    if len(a) != len(CTL_ACTIONS[args.action][0].split()):
        print(
            f"usage: sipha dispatcher ctl --http ADDR {_ctl_usage(args.action)}", file=sys.stderr
        )
        return 2
    q = urllib.parse.quote(a[0], safe="") if a else ""
    try:
        if args.action == "list":
            result = _call(base, token, "GET", "/servers")
            for s in result["servers"]:
                lat = s["probe_latency_ms"]
                print(
                    f"{s['uid']:>3} {s['id']:<28} {s['state']:<9} w={s['weight']:<3} "
                    f"calls={s['active_calls']:<6} latency={'-' if lat is None else lat} ms"
                )
            return 0
        if args.action == "status":
            result = _call(base, token, "GET", "/status")
        elif args.action == "state":
            result = _call(base, token, "POST", f"/servers/{q}/state", {"state": a[1]})
        elif args.action == "weight":
            result = _call(base, token, "POST", f"/servers/{q}/weight", {"weight": int(a[1])})
        elif args.action == "add":
            result = _call(base, token, "POST", "/servers", {"uri": a[0]})
        elif args.action == "remove":
            result = _call(base, token, "DELETE", f"/servers/{q}")
        elif args.action in ("promote", "demote"):  # the HA endpoints (sipha.ha)
            result = _call(base, token, "POST", f"/ha/{args.action}", {})
        elif args.action == "ha":
            result = _call(base, token, "GET", "/ha")
        else:
            result = _call(base, token, "POST", "/reload")
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"sipha dispatcher ctl: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
