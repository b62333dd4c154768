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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration (see docs)")
    parser.add_argument(
        "--listen", action="append", metavar="SPEC",
        help="udp:HOST:PORT or tcp:HOST:PORT; repeat for several (default udp:127.0.0.1:5060)",
    )
    parser.add_argument("--advertise", metavar="HOST:PORT", help="address in our Via/Record-Route")
    parser.add_argument(
        "--server", action="append", metavar="URI",
        help='a SIP server, e.g. "sip:127.0.0.1:5071;weight=2"; repeat for several',
    )
    parser.add_argument("--dispatcher-list", metavar="FILE", help="Kamailio dispatcher.list")
    parser.add_argument("--setid", type=int, help="set id to read from --dispatcher-list")
    parser.add_argument("--algorithm", help="scheduler name (default wlc)")
    parser.add_argument("--probe", choices=["on", "off"], help="OPTIONS probing of servers")
    parser.add_argument("--failover-timeout", type=float, metavar="SECONDS")
    parser.add_argument("--rate-limit", type=int, metavar="N", help="requests/s per source IP")
    parser.add_argument("--http", metavar="HOST:PORT", help="HTTP API address")
    parser.add_argument("--token", help="bearer token for the HTTP API")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="dispatcher_command", metavar="ctl")
    ctl = sub.add_parser("ctl", help="control a running dispatcher over its HTTP API")
    ctl.add_argument("--http", dest="ctl_http", required=True, metavar="HOST:PORT")
    ctl.add_argument("--token", dest="ctl_token")
    ctl.add_argument(
        "action",
        choices=[
            "list", "status", "state", "weight", "add", "remove", "reload",
            "promote", "demote", "ha",
        ],
    )
    ctl.add_argument("args", nargs="*")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "dispatcher_command", None) == "ctl":
        return ctl_main(args)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg, specs = build_config(args)
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

        service = DispatcherService(cfg, specs, config_path=args.config)
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


def build_config(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Merge the TOML file (if any) with flags; flags win. Raises ConfigError/ValueError."""
    import msgspec

    from .config import DispatcherConfig, from_mapping, load_config, resolve_servers
    from .servers import parse_server

    cfg = load_config(args.config) if args.config else DispatcherConfig()
    data: dict[str, Any] = msgspec.to_builtins(cfg)
    flags = {
        "listen": args.listen, "advertise": args.advertise, "algorithm": args.algorithm,
        "http": args.http, "token": args.token, "dispatcher_list": args.dispatcher_list,
        "setid": args.setid, "failover_timeout": args.failover_timeout,
        "rate_limit": args.rate_limit,
    }
    for name, value in flags.items():
        if value is not None:
            data[name] = value
    if args.probe is not None:
        data["probe"]["enabled"] = args.probe == "on"
    cfg = from_mapping(data, source=args.config or "flags")
    specs = resolve_servers(cfg, source=args.config or "flags")
    for text in args.server or []:
        specs.append(parse_server(text, probing=cfg.probe.enabled))
    from .schedulers import available

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
    need = {"state": 2, "weight": 2, "add": 1, "remove": 1}.get(args.action, 0)
    if len(a) != need:
        usage = {
            "state": "state ID active|inactive|disabled|draining", "weight": "weight ID W",
            "add": "add URI", "remove": "remove ID",
        }.get(args.action, args.action)
        print(f"usage: sipha dispatcher ctl --http ADDR {usage}", file=sys.stderr)
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
